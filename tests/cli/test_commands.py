"""The `mmtrace` command line, one command at a time, on the tiny toy checkpoints (see
tests/conftest.py) and on a random Hugging Face LLaVA saved with `save_pretrained`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from support.expectations import TRACE_RECORD_KEYS
from transformers import (
    AutoTokenizer,
    LlavaProcessor,
)

from mmtrace.cli import main
from mmtrace.config import Prompts
from mmtrace.dataset import load_questions
from mmtrace.models import random, toy
from mmtrace.models.loading import load, load_image
from mmtrace.models.scoring import first_answer_token, next_token_probs
from mmtrace.prompts import build


@pytest.fixture(scope="module")
def known(tiny_world):
    return load_questions([tiny_world / "known.csv"])


@pytest.fixture(scope="module")
def records(tiny_world):
    return load_questions(
        [tiny_world / f"{s}.csv" for s in ("known", "movies", "okvqa", "heldout")]
    )


def _cli_trace(tmp_path, model_dir, image, question, constraint, extra=()):
    out = tmp_path / "trace.json"
    args = ["trace", "--model", str(model_dir), "--question", question]
    args += ["--constraint", constraint, "--out", str(out), "--plot", str(tmp_path / "t.png")]
    if image is not None:
        args += ["--image", str(image)]
    assert main(args + list(extra)) == 0
    data = json.loads(out.read_text())
    assert set(data) >= TRACE_RECORD_KEYS
    assert (tmp_path / "t.png").stat().st_size > 0 and (tmp_path / "t.pdf").exists()
    return data


def test_cli_trace_on_a_toy_checkpoint(trained, tiny_world, known, tmp_path):
    rec = known[0]
    data = _cli_trace(
        tmp_path,
        trained["mm-llama"],
        tiny_world / rec.image_url,
        rec.question,
        rec.main_entity,
        ["--kind", "mlp", "--window", "2", "--window-style", "radius"],
    )
    assert set(data["ie"]) == {"mlp"}
    assert data["window"] == 2 and data["window_style"] == "radius"
    first = min(data["constraint_positions"]["visual"])
    assert data["input_ids"][:first] == data["corrupted_input_ids"][:first]
    assert data["input_ids"] != data["corrupted_input_ids"]


def test_cli_trace_on_a_text_model_with_noise(trained, known, tmp_path):
    rec = known[0]
    span = rec.text_constraints[0]
    data = _cli_trace(
        tmp_path, trained["llama"], None, rec.text_question, span.text, ["--corruption", "noise"]
    )
    assert data["input_ids"] == data["corrupted_input_ids"]  # noise leaves the tokens alone
    assert set(data["ie"]) == {"mlp", "attn", "hidden"}


def test_cli_trace_on_a_random_hf_llava(trained, tiny_world, known, tmp_path):
    """A checkpoint not made by our trainer: random weights, another image size and patch
    grid, saved and loaded back with save_pretrained / from_pretrained."""
    tok = AutoTokenizer.from_pretrained(trained["mm-llama"])
    image_id = tok.convert_tokens_to_ids(tok.image_token)
    model = random.llava(
        "llama",
        text=dict(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_layers=3,
            num_heads=4,
            num_kv_heads=2,
            max_positions=128,
        ),
        vision=dict(image_size=32, patch_size=8),
        image_token=image_id,
        vision_feature_select_strategy="default",
    )
    processor = LlavaProcessor(
        image_processor=toy.image_processor(32),
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    ckpt = tmp_path / "random-llava"
    model.save_pretrained(ckpt)
    processor.save_pretrained(ckpt)
    rec = known[0]
    data = _cli_trace(tmp_path, ckpt, tiny_world / rec.image_url, rec.question, rec.main_entity)
    assert data["layers"] == [0, 1, 2]
    assert sum(t == image_id for t in data["input_ids"]) == 16
    assert data["positions"][0] == max(i for i, t in enumerate(data["input_ids"]) if t == image_id)


def test_cli_rejects_a_constraint_not_in_the_question(trained, known, tmp_path, capsys):
    rec = known[0]
    assert (
        main(
            [
                "trace",
                "--model",
                str(trained["llama"]),
                "--question",
                rec.text_question,
                "--constraint",
                "no such words",
                "--out",
                str(tmp_path / "x.json"),
            ]
        )
        == 2
    )
    assert "the constraint is not part of the question" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "image"), [("mm-phi", True), ("llama", False)])
def test_cli_attention(trained, tiny_world, known, tmp_path, capsys, name, image):
    rec = next(r for r in known if r.constraint_type == "single")
    mm = image
    question = rec.question if mm else rec.text_question
    span = next(s for s in (rec.constraints if mm else rec.text_constraints) if s.type == "visual")
    argv = [
        "attention",
        "--model",
        str(trained[name]),
        "--question",
        question,
        "--constraint",
        question[span.start : span.end],
        "--out",
        str(tmp_path / "a.json"),
        "--plot",
        str(tmp_path / "a.png"),
    ]
    if mm:
        argv += ["--image", str(tiny_world / rec.image_url)]
    assert main(argv) == 0
    out = json.loads((tmp_path / "a.json").read_text())
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "a.png").stat().st_size > 1000 and (tmp_path / "a.pdf").exists()
    to_last = np.asarray(out["to_last"])
    assert to_last.shape == (len(out["constraint_to_last"]), len(out["tokens"]))
    np.testing.assert_allclose(
        out["constraint_to_last"], to_last[:, out["constraint_positions"]].max(axis=1)
    )
    assert ("concentration" in out) == mm
    if not mm:
        assert main([*argv[:5], "--constraint", "no such words", *argv[7:]]) == 2
        assert "not part of the question" in capsys.readouterr().err


def test_cli_edit_and_save(trained, records, tiny_world, tmp_path, capsys):
    rec = next(r for r in records if r.held_out)
    span = rec.visual_span
    save = tmp_path / "edited"
    argv = [
        "edit",
        "--model",
        str(trained["mm-llama"]),
        "--image",
        str(tiny_world / rec.image_url),
        "--question",
        rec.question,
        "--constraint",
        rec.question[span.start : span.end],
        "--target",
        rec.answer,
        "--layer",
        "0",
        "--steps",
        "30",
        "--lr",
        "1.0",
        "--clamp",
        "50",
        "--save",
        str(save),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    before, after = (float(x) for x in out.split(": ", 1)[1].split(" (")[0].split(" -> "))
    assert (save / "model.safetensors").exists()
    edited = load(save, "mllm")
    original = load(trained["mm-llama"], "mllm")
    # the saved model answers as the edited one did, the original as before the edit
    prompt = build(Prompts().mllm, rec.question).text
    image = load_image(tiny_world / rec.image_url)
    target = first_answer_token(original.tokenizer, prompt, rec.answer)
    for model, want in ((edited, after), (original, before)):
        p = float(next_token_probs(model, [prompt], [image])[0, target])
        assert p == pytest.approx(want, abs=6e-5)
    diff = [
        n
        for (n, p), (_, q) in zip(
            edited.model.named_parameters(), original.model.named_parameters(), strict=True
        )
        if not torch.equal(p, q)
    ]
    assert len(diff) == 1 and diff[0].endswith("layers.0.mlp.down_proj.weight")
    assert main([*argv[:7], "--constraint", "no such words", *argv[9:]]) == 2
    assert "not part of the question" in capsys.readouterr().err


def test_cli_ablate(trained, tiny_world, known, tmp_path, capsys):
    rec = next(r for r in known if r.constraint_type == "single")
    outs = [tmp_path / "ab" / f"a.{ext}" for ext in ("json", "csv", "png")]
    argv = [
        "ablate",
        "--model",
        str(trained["mm-llama"]),
        "--image",
        str(tiny_world / rec.image_url),
    ]
    argv += ["--question", rec.question, "--constraint", rec.main_entity, "--answer", rec.answer]
    argv += ["--fractions", "0.25", "0.5", "--no-per-layer", "--out", *map(str, outs)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "wrote " + ", ".join(map(str, outs)) in out
    assert "ablate" in err  # the progress bar, on stderr
    record = json.loads(outs[0].read_text())
    assert record["ks"] == [4, 8] and record["ways"] == ["block"] and "per_layer" not in record
    assert set(pd.read_csv(outs[1]).ranking) >= {"top", "random", "bottom"}
    assert outs[2].stat().st_size > 1000
    # without --out, the record is the only thing on stdout
    assert main(argv[: argv.index("--out")]) == 0
    assert json.loads(capsys.readouterr().out)["block"] == record["block"]


def test_every_option_shows_its_default_in_help():
    """Every optional setting of every command says its default (or where it comes from)."""
    from mmtrace.cli import build_parser

    parser = build_parser()
    (group,) = [a for a in parser._actions if a.dest == "command"]
    missing = []
    for name, sub in group.choices.items():
        for action in sub._actions:
            if action.required or not action.option_strings or action.dest == "help":
                continue
            if action.nargs == 0 and action.default is False:  # a flag, off unless given
                continue
            text = sub._get_formatter()._expand_help(action) if action.help else ""
            if "default" not in text:
                missing.append(f"{name} {action.option_strings[0]}")
    assert not missing, missing
