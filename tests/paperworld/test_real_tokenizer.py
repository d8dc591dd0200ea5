"""The paper world's annotation under LLaVA-1.5's real tokenizer (LLaMA-2's 32,000 BPE tokens plus
<image>, id 32000) and the real prompts (config.yaml: LLaVA-1.5 has the release's prompt, Vicuna
the text one): every row of the released Known, Movies and OK-VQA CSVs in ../shared/data is
located, annotated and encoded by the real encoding path, and every constraint span either covers
tokens or is counted with its reason. Also counted: how each span was located (the loader's
fallbacks), spans whose tokens reach past the span (a token that starts or ends outside it), and
how many corruption phrases have exactly the constraint's token length (the rest are cut or padded
by the tracing). The counts are in docs/paper-scale.md; `pytest -s` prints them.

Skips when the tokenizer is not fetched (bash .ci/fetch_tokenizer.sh) or shared/data is absent."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml
from support.real_tokenizer import IMAGE_TOKEN_ID, TokenizerOnly, llama2
from support.shared_data import ROWS, SHARED, load_released

from mmtrace import prompts as prompt_lib
from mmtrace.config import validate
from mmtrace.models.encoding import AlignmentError, Span, encode_question
from mmtrace.paperworld.annotate import annotate
from mmtrace.paperworld.report import Report
from mmtrace.paperworld.spans import PUNCT
from mmtrace.tracing.corruption import fit, replacement_ids

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")


# docs/paper-scale.md states these counts (on the copies in ../shared/data, OK-VQA with the
# synthetic annotations); a change in the loaders or the annotation shows up here first: update
# docs/paper-scale.md with this table.
EXPECTED = {
    "known": {
        "llava": {
            "edges": {"exact": 1239},
            "replacement_length": {
                "textual cut": 4,
                "textual exact": 12,
                "textual padded": 2,
                "visual cut": 1018,
                "visual exact": 186,
                "visual padded": 17,
            },
        },
        "located": {"exact": 1203},
        "vicuna": {
            "edges": {"exact": 1239},
            "replacement_length": {
                "textual cut": 4,
                "textual exact": 12,
                "textual padded": 2,
                "visual cut": 440,
                "visual exact": 302,
                "visual padded": 479,
            },
        },
    },
    "movies": {
        "llava": {
            "edges": {"exact": 5914},
            "replacement_length": {"textual exact": 1350, "visual cut": 4109, "visual exact": 455},
        },
        "located": {"exact": 3214},
        "vicuna": {
            "edges": {"exact": 5914},
            "replacement_length": {
                "textual exact": 1350,
                "visual cut": 1412,
                "visual exact": 1253,
                "visual padded": 1899,
            },
        },
    },
    "okvqa": {
        "llava": {
            "edges": {"exact": 5029, "token crosses the end": 2, "token crosses the start": 5},
            "replacement_length": {"visual cut": 1495, "visual exact": 2635, "visual padded": 906},
        },
        "located": {
            "case-insensitive": 20,
            "exact": 4779,
            "first line": 3,
            "recovered from its words": 230,
            "trimmed of punctuation": 4,
        },
        "vicuna": {
            "edges": {"exact": 5029, "token crosses the end": 2, "token crosses the start": 5},
            "replacement_length": {"visual cut": 1495, "visual exact": 2635, "visual padded": 906},
        },
    },
}


@pytest.fixture(scope="module")
def tokenizer():
    return llama2()


@pytest.fixture(scope="module")
def templates(repo_root):
    """The prompts the paper world gives LLaVA-1.5 (an MLLM) and Vicuna-7B (its LLM)."""
    raw = yaml.safe_load((repo_root / "config.yaml").read_text())
    cfg = validate({**raw, "world": "paper"})
    llava, vicuna = cfg["models"]["llava-1.5-7b"], cfg["models"]["vicuna-7b"]
    return {
        "mllm": llava["prompt"] or cfg["prompts"]["mllm"],
        "llm": vicuna["prompt"] or cfg["prompts"]["llm"],
    }


def test_it_is_llama2_with_llava_s_image_token(tokenizer):
    assert len(tokenizer) == 32001 and tokenizer.convert_tokens_to_ids("<image>") == IMAGE_TOKEN_ID
    assert tokenizer.convert_tokens_to_ids(["<unk>", "<s>", "</s>", "▁the"]) == [0, 1, 2, 278]
    assert tokenizer("Hello world")["input_ids"] == [1, 15043, 3186]  # LLaMA-2's, not Mistral's
    ids = tokenizer("<image>\nUSER: This building is located in")["input_ids"]
    assert ids[:2] == [1, IMAGE_TOKEN_ID]  # BOS, then the image token as one token


def located_by(question: str, entity: str) -> str:
    """Which of the loader's rules (`paperworld.spans.find_span`, then `recover_span`) found
    the constraint in the question."""
    if entity and entity in question:
        return "exact"
    if entity and entity.lower() in question.lower():
        return "case-insensitive"
    trimmed = entity.strip(PUNCT)
    if trimmed and trimmed.lower() in question.lower():
        return "trimmed of punctuation"
    first = entity.strip().split("\n", 1)[0].strip(PUNCT)
    if first and first.lower() in question.lower():
        return "first line"
    return "recovered from its words"


def boundary(enc_offsets, hits, start: int, end: int, text: str) -> str:
    """'exact' when the span's tokens start and end at its edges (a token's leading space, the
    SentencePiece word mark, does not count), else which edge a token crosses."""
    first_start, last_end = enc_offsets[hits[0]][0], enc_offsets[hits[-1]][1]
    left = first_start >= start or text[first_start:start].isspace()
    right = last_end == end
    return {
        (True, True): "exact",
        (False, True): "token crosses the start",
        (True, False): "token crosses the end",
        (False, False): "tokens cross both edges",
    }[(left, right)]


def _constraints(rec: dict, mm: bool):
    question = rec["question"] if mm else rec["text_question"]
    spans = rec["constraints"] if mm else rec["text_constraints"]
    return question, [Span(s["start"], s["end"], s["type"], s["replacement"]) for s in spans]


def test_every_released_constraint_aligns_to_real_tokens(tokenizer, templates, tmp_path):
    loaded = {True: TokenizerOnly(tokenizer, True), False: TokenizerOnly(tokenizer, False)}
    summary = {}
    for split, (rows, load_report) in load_released(tmp_path).items():
        assert load_report.total == ROWS[split]
        located = Counter(located_by(r.question, r.main_entity) for r in rows)
        arep = Report(f"annotate {split}")
        records = annotate(split, rows, 1234, report=arep)
        counts = {"rows": ROWS[split], "kept": len(rows), "questions": len(records)}
        counts["dropped"] = dict(load_report.dropped)
        counts["located"] = dict(sorted(located.items()))
        counts["notes"] = dict(arep.notes) | dict(load_report.notes)
        for mm, who in ((True, "llava"), (False, "vicuna")):
            template = templates["mllm" if mm else "llm"]
            aligned, failed, edges, lengths = Counter(), Counter(), Counter(), Counter()
            for rec in records:
                question, spans = _constraints(rec, mm)
                try:
                    enc = encode_question(loaded[mm], template, rec["qid"], question, spans)
                except AlignmentError as exc:  # counted with its reason, never dropped silently
                    failed[str(exc).split(": ", 1)[1]] += len(spans)
                    continue
                prompt = prompt_lib.build(template, question)
                offsets = tokenizer(prompt.text, return_offsets_mapping=True)["offset_mapping"]
                for span in spans:
                    aligned[span.type] += 1
                    pos = enc.span_positions[span.type]
                    start, end = prompt.shift(span.start, span.end)
                    edges[boundary(offsets, pos, start, end, prompt.text)] += 1
                    phrase = replacement_ids(loaded[mm], template, question, span)
                    lengths[f"{span.type} {fit(phrase, len(pos))[1]}"] += 1
            n_spans = sum(len(_constraints(r, mm)[1]) for r in records)
            assert sum(aligned.values()) + sum(failed.values()) == n_spans, (split, who)
            assert sum(lengths.values()) == sum(edges.values()) == sum(aligned.values())
            counts[who] = {
                "spans": n_spans,
                "aligned": dict(sorted(aligned.items())),
                "failed": dict(sorted(failed.items())),
                "edges": dict(sorted(edges.items())),
                "replacement_length": dict(sorted(lengths.items())),
            }
        summary[split] = counts
    print(json.dumps(summary, indent=1, sort_keys=True))
    for split, counts in summary.items():
        for who in ("llava", "vicuna"):
            assert not counts[who]["failed"], (split, who, counts[who]["failed"])
    got = {
        split: {
            "located": c["located"],
            **{
                w: {k: c[w][k] for k in ("edges", "replacement_length")}
                for w in ("llava", "vicuna")
            },
        }
        for split, c in summary.items()
    }
    assert got == EXPECTED
