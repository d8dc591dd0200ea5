"""Tracing questions of a split, the per-question record, the summary, and `mmtrace trace` on a
toy checkpoint and on a tiny random Hugging Face LLaVA saved with `save_pretrained`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import (
    AutoTokenizer,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from mmtrace.cli import main
from mmtrace.config import Prompts, Tracing
from mmtrace.dataset import load_questions
from mmtrace.models import toy
from mmtrace.models.loading import load
from mmtrace.tracing import study

CLI_KEYS = {
    "input_ids",
    "corrupted_input_ids",
    "tokens",
    "roles",
    "positions",
    "layers",
    "answer_token_id",
    "answer",
    "p_clean",
    "p_corr",
    "ie",
}


@pytest.fixture(scope="module")
def known(tiny_world):
    return load_questions([tiny_world / "known.csv"])


@pytest.mark.parametrize("name", ["mm-llama", "mm-phi", "llama"])
def test_trace_records_and_summary(trained, tiny_world, known, name):
    loaded = load(trained[name], "llm" if name == "llama" else "mllm", name=name)
    cfg = Tracing(windows=[1, 2], multi_window=2, llm_window=2, min_drop=None)
    records = known[:6]
    correct = {r.qid: i != 0 for i, r in enumerate(records)}  # the first counts as wrong
    out = study.trace_records(loaded, records, correct, Prompts(), tiny_world, cfg, seed=0)
    assert out["excluded"].get("answered incorrectly") == 1
    traced = out["traces"]
    assert len({t["qid"] for t in traced}) == len(records) - 1
    n_layers = len(traced[0]["layers"])
    for t in traced:
        assert set(t) >= CLI_KEYS
        assert len(t["input_ids"]) == len(t["corrupted_input_ids"])
        assert len(t["tokens"]) == len(t["roles"]) == len(t["positions"])
        for kind in cfg.kinds:
            ie = np.asarray(t["ie"][kind])
            assert ie.shape == (len(t["positions"]), n_layers)
            # positions before the corrupted constraint cannot be affected by restoring them
            before = [i for i, r in enumerate(t["roles"]) if r in ("last_image", "before")]
            assert np.abs(ie[before]).max(initial=0.0) <= 1e-6
        expected = {"single": [1, 2], "multi": [2], "llm": [2]}[t["setting"]]
        assert t["window"] in expected
    summary = study.summarise([{"model": name, "split": "known", **out}])
    entry = summary[name]["known"]
    assert entry["n_candidates"] == out["n_candidates"]
    for setting, kinds in entry["traces"].items():
        for windows in kinds.values():
            for w in windows.values():
                assert w["n_traced"] == sum(
                    t["setting"] == setting and t["window"] == w["window"] for t in traced
                )
                assert 0 <= w["peak_layer_at_constraint"] < n_layers


def test_min_drop_excludes_and_counts(trained, tiny_world, known):
    loaded = load(trained["mm-llama"], "mllm")
    cfg = Tracing(windows=[1], min_drop=1.0)  # no corruption can lower p by more than 1
    records = known[:3]
    out = study.trace_records(
        loaded, records, {r.qid: True for r in records}, Prompts(), tiny_world, cfg, seed=0
    )
    assert out["traces"] == []
    assert out["excluded"] == {"corruption drop below min_drop": 3}


def _cli_trace(tmp_path, model_dir, image, question, constraint, extra=()):
    out = tmp_path / "trace.json"
    args = ["trace", "--model", str(model_dir), "--question", question]
    args += ["--constraint", constraint, "--out", str(out), "--plot", str(tmp_path / "t.png")]
    if image is not None:
        args += ["--image", str(image)]
    assert main(args + list(extra)) == 0
    data = json.loads(out.read_text())
    assert set(data) >= CLI_KEYS
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
    vision = CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_id,
        image_seq_length=16,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(cfg).eval()
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


def test_cli_rejects_a_constraint_not_in_the_question(trained, known, tmp_path):
    rec = known[0]
    with pytest.raises(SystemExit, match="not part of the question"):
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
