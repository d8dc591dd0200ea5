import json

from mmtrace.cli import main
from mmtrace.dataset import load_split


def test_toy_world_command(tmp_path, capsys):
    assert (
        main(
            [
                "toy-world",
                "--out",
                str(tmp_path),
                "--n-known",
                "10",
                "--n-movies",
                "5",
                "--n-okvqa",
                "10",
                "--n-heldout",
                "2",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    counts = json.loads(capsys.readouterr().out)
    assert counts["known"] == len(load_split(tmp_path / "known.csv")) > 0
    assert (tmp_path / "images" / "eval").is_dir()
