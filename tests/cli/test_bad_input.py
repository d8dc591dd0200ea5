"""Every way a user can get the command line wrong (as tried by a new user): exit status 2, one
line naming the culprit, no traceback, and no output file created or changed. Cases run in
process on the tiny toy checkpoints of tests/conftest.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmtrace.cli import main
from mmtrace.dataset import load_questions


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory, trained, tiny_world):
    """Inputs for every case: good and broken images and checkpoints, an existing result."""
    root = tmp_path_factory.mktemp("bad_input")
    rec = load_questions([tiny_world / "known.csv"])[0]
    shutil.copy(tiny_world / rec.image_url, root / "good.png")
    (root / "empty.png").write_bytes(b"")
    data = (tiny_world / rec.image_url).read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    (root / "a_directory").mkdir()
    Image.new("L", (64, 64)).save(root / "large.png")
    for name, source in (("mllm", "mm-llama"), ("llm", "llama")):
        shutil.copytree(trained[source], root / name)
    broken = {
        "corrupt": lambda w: w.write_bytes(w.read_bytes()[: w.stat().st_size // 2]),
        "garbage": lambda w: w.write_bytes(b"\x00" * 64),
        "no_weights": lambda w: w.unlink(),
        "pickle_only": lambda w: (w.unlink(), (w.parent / "pytorch_model.bin").write_bytes(b"x")),
    }
    for name, damage in broken.items():
        shutil.copytree(trained["mm-llama"], root / name)
        damage(next((root / name).glob("*.safetensors")))
    (root / "world").mkdir()
    for split in ("known", "movies", "okvqa"):
        shutil.copy(tiny_world / f"{split}.csv", root / "world")
    (root / "existing.json").write_text("{}")
    return root, rec


def _trace(root, rec, *extra, model="mllm", image="good.png"):
    argv = ["trace", "--model", str(root / model), "--question", rec.question]
    argv += ["--constraint", rec.main_entity, "--out", str(root / "out" / "trace.json")]
    return argv + (["--image", str(root / image)] if image else []) + list(extra)


def _attention(root, rec, *extra):
    argv = ["attention", "--model", str(root / "mllm"), "--image", str(root / "good.png")]
    argv += ["--question", rec.question, "--constraint", rec.main_entity]
    return argv + ["--out", str(root / "out" / "att.json"), *extra]


def _edit(root, rec, *extra, target="Paris"):
    argv = ["edit", "--model", str(root / "mllm"), "--image", str(root / "good.png")]
    argv += ["--question", rec.question, "--constraint", rec.main_entity, "--target", target]
    return argv + list(extra)


# (id, argv builder, culprit the message must name)
CASES = [
    ("truncated image", lambda r, q: _trace(r, q, image="truncated.png"), "truncated.png"),
    ("empty image", lambda r, q: _trace(r, q, image="empty.png"), "empty.png"),
    ("directory as image", lambda r, q: _trace(r, q, image="a_directory"), "a_directory"),
    ("missing image", lambda r, q: _trace(r, q, image="nope.png"), "nope.png"),
    ("image over the pixel limit", lambda r, q: _trace(r, q, image="large.png"), "large.png"),
    ("empty question", lambda r, q: [*_trace(r, q), "--question", " "], "--question"),
    ("empty constraint", lambda r, q: [*_trace(r, q), "--constraint", ""], "--constraint"),
    ("window 0", lambda r, q: _trace(r, q, "--window", "0"), "--window"),
    ("negative window", lambda r, q: _trace(r, q, "--window", "-2"), "--window"),
    ("batch size 0", lambda r, q: _trace(r, q, "--batch-size", "0"), "--batch-size"),
    ("negative batch size", lambda r, q: _trace(r, q, "--batch-size", "-3"), "--batch-size"),
    ("NaN noise scale", lambda r, q: _trace(r, q, "--noise-scale", "nan"), "--noise-scale"),
    ("negative noise scale", lambda r, q: _trace(r, q, "--noise-scale", "-1"), "--noise-scale"),
    ("prompt without {question}", lambda r, q: _trace(r, q, "--prompt", "<image> hi"), "question"),
    ("prompt without <image>", lambda r, q: _trace(r, q, "--prompt", "{question}"), "<image>"),
    (
        "--out is a directory",
        lambda r, q: [*_trace(r, q), "--out", str(r / "a_directory")],
        "--out",
    ),
    ("constraint not in question", lambda r, q: [*_trace(r, q), "--constraint", "zzz"], "zzz"),
    ("mistyped model path", lambda r, q: _trace(r, q, model="mlm"), "mlm"),
    ("corrupt safetensors", lambda r, q: _trace(r, q, model="corrupt"), "safetensors"),
    ("garbage safetensors", lambda r, q: _trace(r, q, model="garbage"), "safetensors"),
    ("model folder without weights", lambda r, q: _trace(r, q, model="no_weights"), "no_weights"),
    ("pickle-only checkpoint", lambda r, q: _trace(r, q, model="pickle_only"), "pickle"),
    ("multimodal model without image", lambda r, q: _trace(r, q, image=None), "--image"),
    ("visual layer out of range", lambda r, q: _attention(r, q, "--visual-layer", "9"), "9"),
    ("top share above 1", lambda r, q: _attention(r, q, "--top-share", "2"), "--top-share"),
    ("edit an LLM", lambda r, q: [*_edit(r, q), "--model", str(r / "llm")], "llm"),
    ("empty edit target", lambda r, q: _edit(r, q, target=""), "--target"),
    ("negative clamp", lambda r, q: _edit(r, q, "--clamp=-4"), "--clamp"),
    ("edit layer out of range", lambda r, q: _edit(r, q, "--layer", "7"), "--layer 7"),
    ("save onto the source", lambda r, q: _edit(r, q, "--save", str(r / "mllm")), "mllm"),
    (
        "evaluate with the wrong role",
        lambda r, q: [
            "evaluate",
            "--model",
            str(r / "llm"),
            "--role",
            "mllm",
            "--data",
            str(r / "world"),
        ],
        "a text-only checkpoint (llm)",
    ),
    (
        "evaluate a missing split",
        lambda r, q: ["evaluate", "--model", str(r / "llm"), "--role", "llm", "--data", str(r)],
        "known.csv",
    ),
    (
        "toy world of 0 entities",
        lambda r, q: ["toy-world", "--out", str(r / "w"), "--n-known", "0"],
        "--n-known",
    ),
]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("case", "argv", "culprit"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_with_one_line(case_dir, capsys, monkeypatch, case, argv, culprit):
    root, rec = case_dir
    # PIL refuses images of more than twice this many pixels: large.png (64x64) is over it,
    # the toy renderings (48x48) are not
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1500)
    before = _snapshot(root)
    try:
        code = main(argv(root, rec))
    except SystemExit as exc:  # argparse's errors
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    lines = [line for line in err if line.startswith("mmtrace ")]
    assert len(lines) == 1 and "Traceback" not in "\n".join(err), err
    assert culprit in lines[0], lines[0]
    assert _snapshot(root) == before  # nothing written, nothing changed


def test_debug_shows_the_traceback(case_dir, capsys):
    root, rec = case_dir
    assert main(["--debug", *_trace(root, rec, image="nope.png")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("mmtrace trace: ")


def test_plot_into_a_missing_folder_is_created(case_dir, capsys):
    root, rec = case_dir
    plot = root / "plots" / "deep" / "t.png"
    assert main(_trace(root, rec, "--kind", "mlp", "--plot", str(plot))) == 0
    assert plot.exists() and plot.with_suffix(".pdf").exists()
    shutil.rmtree(root / "plots")
    shutil.rmtree(root / "out")
