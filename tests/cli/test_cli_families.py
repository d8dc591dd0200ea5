"""`mmtrace trace` on a tiny checkpoint of every family (tests/support/families.py), written with
save_pretrained and loaded back as a user would: the engine's trace equals `--exact`'s (the
reference) to <= 1e-5 on effects >= 100x that, PaliGemma is traced by the reference with the
reason recorded, Mllama exits 2 with one line naming the feature; the native prompts and the
models' chat templates (`--prompt chat`) are accepted."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.families import CONSTRAINT, FAMILIES, QUESTION, REPLACEMENT, image, write

from mmtrace.cli import main

TOL = 1e-5


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    picture = root / "image.png"
    image(0).save(picture)
    return root, picture


def _trace(checkpoints, name: str, *extra: str, prompt: str | None = None):
    root, picture = checkpoints
    model = root / name
    if not model.exists():
        write(name, model)
    out = root / f"{name}-{len(extra)}-{prompt is not None}.json"
    args = [
        "trace", "--model", str(model), "--image", str(picture), "--question", QUESTION,
        "--constraint", CONSTRAINT, "--replacement", REPLACEMENT, "--corruption", "replace",
        "--kind", "all", "--window", "3", "--prompt", prompt or FAMILIES[name].prompt,
        "--out", str(out), *extra,
    ]  # fmt: skip
    code = main(args)
    return code, (json.loads(out.read_text()) if code == 0 else None)


def _ie(record) -> np.ndarray:
    return np.array([record["ie"][k] for k in ("mlp", "attn", "hidden")])


@pytest.mark.parametrize("name", sorted(n for n, f in FAMILIES.items() if f.status == "engine"))
def test_trace_equals_the_exact_reference(checkpoints, name):
    code, fast = _trace(checkpoints, name)
    assert code == 0
    assert fast["exactness"]["path"] == "engine" and fast["exactness"]["check"]["passed"]
    code, exact = _trace(checkpoints, name, "--exact")
    assert code == 0 and exact["exactness"]["path"] == "reference"
    assert fast["input_ids"] == exact["input_ids"] and fast["positions"] == exact["positions"]
    assert np.abs(_ie(exact)).max() >= 100 * TOL
    assert np.abs(_ie(fast) - _ie(exact)).max() <= TOL
    # the corruption changed the constraint's tokens and nothing else
    ids, corrupted = fast["input_ids"], fast["corrupted_input_ids"]
    changed = {i for i, (a, b) in enumerate(zip(ids, corrupted, strict=True)) if a != b}
    assert changed and changed <= set(fast["constraint_positions"]["visual"])


def test_paligemma_is_traced_by_the_reference_and_says_why(checkpoints):
    code, record = _trace(checkpoints, "paligemma")
    assert code == 0
    how = record["exactness"]
    assert how["path"] == "reference" and "PaliGemma" in how["reason"]
    assert "not causal" in how["reason"]
    assert np.abs(_ie(record)).max() >= 100 * TOL


def test_mllama_exits_2_with_one_line(checkpoints, capsys):
    code, _ = _trace(checkpoints, "mllama")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    lines = [line for line in err if line.startswith("mmtrace ")]
    assert len(lines) == 1 and lines[0].startswith("mmtrace trace: unsupported model")
    assert "cross-attention" in lines[0] and "Mllama" in lines[0]
    assert "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("name", ["llava", "qwen2_vl", "idefics3", "gemma3", "llava_onevision"])
def test_the_models_chat_template(checkpoints, name):
    """`--prompt chat`: the prompt is the model's own chat template (image, then the question),
    and the constraint is found on the processor's tokens of it."""
    code, record = _trace(checkpoints, name, prompt="chat:{question}?")
    assert code == 0
    tokens = [
        record["tokens"][record["positions"].index(p)]
        for p in record["constraint_positions"]["visual"]
    ]
    assert "".join(tokens) == CONSTRAINT
