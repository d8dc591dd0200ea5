"""Every supported Hugging Face MLLM family, traced through the gate (what `mmtrace trace` does)
and compared with the exact reference: reference/families.json, from which the families tables
of the README and docs/families.md are generated (`make claims-readme`).

    python benchmarks/families.py --out reference/families.json

Each family's tiny random checkpoint (tests/support/families.py, built offline from the
family's own transformers classes) traces the test question at every kind (mlp, attn, hidden),
windows 1 and 3, and every position from before the visual constraint to the last token, with
token replacement and with Gaussian noise. Recorded per family: the path the gate took (engine,
or the reference and why), the largest |gate - reference| and the largest |IE| among those cells
(so the comparison can fail: a wrong engine moves numbers of that size), or the one line a
refused model is refused with. The tests (tests/tracing/test_tracing_families.py) assert the
same on every `make test`; this file records the numbers the docs show.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.families import FAMILIES, loaded, positions, prepared  # noqa: E402

from mmtrace import numerics  # noqa: E402
from mmtrace.models import families  # noqa: E402
from mmtrace.tracing import gate  # noqa: E402
from mmtrace.tracing.reference import trace_reference  # noqa: E402

KINDS = ("mlp", "attn", "hidden")
WINDOWS = (1, 3)
TOLERANCE = 1e-5
CORRUPTIONS = ("replace", "noise")

# family -> (name in the docs, transformers class)
LABELS = {
    "llava": ("LLaVA-1.5", "LlavaForConditionalGeneration"),
    "llava_next": ("LLaVA-NeXT", "LlavaNextForConditionalGeneration"),
    "llava_onevision": ("LLaVA-OneVision", "LlavaOnevisionForConditionalGeneration"),
    "qwen2_vl": ("Qwen2-VL", "Qwen2VLForConditionalGeneration"),
    "qwen2_5_vl": ("Qwen2.5-VL", "Qwen2_5_VLForConditionalGeneration"),
    "idefics3": ("Idefics3", "Idefics3ForConditionalGeneration"),
    "smolvlm": ("SmolVLM", "SmolVLMForConditionalGeneration"),
    "gemma3": ("Gemma-3", "Gemma3ForConditionalGeneration"),
    "paligemma": ("PaliGemma", "PaliGemmaForConditionalGeneration"),
    "paligemma2": ("PaliGemma 2", "PaliGemmaForConditionalGeneration"),
    "mllama": ("Mllama (Llama-3.2-Vision)", "MllamaForConditionalGeneration"),
}


def measure(name: str) -> dict:
    label, cls = LABELS[name]
    out = {"family": name, "label": label, "class": cls}
    lm = loaded(name)
    try:
        families.check(lm.model)
    except families.UnsupportedModel as exc:
        return {**out, "path": "refused", "reason": str(exc)}
    diff = effect = 0.0
    paths, reasons = set(), set()
    for corruption in CORRUPTIONS:
        prep = prepared(lm, corruption)
        cells = positions(prep)
        args = (lm.model, prep.enc.inputs, prep.corrupted, prep.answer_id)
        res, how = gate.trace(*args, KINDS, WINDOWS, cells, noise=prep.noise, passes=prep.passes)
        paths.add(how.path)
        if how.reason:
            reasons.add(how.reason)
        for (kind, window), r in res.items():
            ref = trace_reference(*args, kind, cells, window, noise=prep.noise)
            diff = max(diff, float((r.ie - ref.ie).abs().max()))
            effect = max(effect, float(ref.ie.abs().max()))
    (path,) = paths if len(paths) == 1 else ("mixed",)
    return {
        **out,
        "path": path,
        "reason": "; ".join(sorted(reasons)) or None,
        "max_abs_diff": diff,
        "max_effect": effect,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reference" / "families.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name in FAMILIES:
        rows.append(measure(name))
        print(json.dumps(rows[-1]), file=sys.stderr)
    record = {
        "tolerance": TOLERANCE,
        "kinds": list(KINDS),
        "windows": list(WINDOWS),
        "corruptions": list(CORRUPTIONS),
        "environment": numerics.versions(),
        "families": rows,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
