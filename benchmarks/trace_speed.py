"""Speed of the tracing engine against the release's scheme (one full forward per cell).

A randomly initialised LLaVA with LLaVA-1.5's token layout (BOS, 576 visual tokens, then ~30
question tokens; 32 decoder layers) but small hidden sizes so it runs on a CPU. Both
implementations trace MLP and attention with window 1 over the positions from the last visual
token to the last token, in one process. The last line reads
`speedup: <ratio>x  max_abs_diff: <max |dIE|>`.

Before it, a PROJECTION (not a measurement) of the engine's time per question and for all 9.7K
questions with LLaVA-1.5-7B on one GPU. Assumption: at 7B shape the work is compute-bound, so time
= FLOPs / sustained throughput. FLOPs are counted from the batches the engine actually runs for
this token layout (rows x layers x positions per batch, from `engine.batch_plan`) at LLaVA-1.5-7B
shape (d=4096, d_ff=11008, 32 layers, 32 heads, vocab 32000, CLIP ViT-L/14-336 tower), plus the
clean and corrupted full runs. --gpu-tflops is the assumed sustained bf16 throughput; its default,
200 TFLOP/s, is about 40-65% of an A100's or 20-25% of an H100's dense bf16 peak. The throughput
measured here (FLOP/s of the same count at this model's shape) is printed for comparison.

    python benchmarks/trace_speed.py [--layers 32] [--hidden 64] [--text-tokens 30]
        [--gpu-tflops 200]
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import LlavaForConditionalGeneration

from mmtrace.models import random
from mmtrace.tracing.engine import batch_plan, trace
from mmtrace.tracing.reference import trace_reference

IMAGE_TOKEN = 5
QUESTIONS = 9700
# LLaVA-1.5-7B: Vicuna-7B text model; CLIP ViT-L/14-336 tower (577 tokens) and an MLP projector.
LLAVA_7B = dict(d=4096, d_ff=11008, layers=32, vocab=32000)
CLIP_L_336 = dict(d=1024, d_ff=4096, layers=24, tokens=577, proj_out=4096)


def token_layer_flops(d: int, d_ff: int, keys: float) -> float:
    """Forward FLOPs of one token through one Llama layer: q/k/v/o projections (full multi-head),
    the gated MLP, and attention scores and mixing over `keys` keys."""
    return 2 * (4 * d * d + 3 * d * d_ff) + 4 * d * keys


def full_run_flops(seq: int, d: int, d_ff: int, layers: int, vocab: int, vision: bool) -> float:
    """One ordinary forward: every token through every layer, logits at every position (as
    transformers computes them), and the vision tower plus projector when `vision`."""
    text = sum(token_layer_flops(d, d_ff, p + 1) for p in range(seq)) * layers
    text += 2 * d * vocab * seq
    if not vision:
        return text
    v = CLIP_L_336
    # CLIP's MLP has two matrices, not three: pass 2/3 of d_ff to the gated-MLP count.
    tower = v["tokens"] * v["layers"] * token_layer_flops(v["d"], v["d_ff"] * 2 / 3, v["tokens"])
    proj = 2 * v["tokens"] * (v["d"] * v["proj_out"] + v["proj_out"] * d)
    return text + tower + proj


def engine_flops(plan, seq: int, d: int, d_ff: int, layers: int, vocab: int) -> float:
    """FLOPs of the restored batches `trace` runs: each row runs its batch's layers over its
    batch's positions (attending to every earlier key), then the LM head at the last position."""
    total = 0.0
    for chunk in plan:
        start, low = chunk[0][2], min(c[3][0] for c in chunk)
        per_row = sum(token_layer_flops(d, d_ff, p + 1) for p in range(start, seq))
        total += len(chunk) * ((layers - low) * per_row + 2 * d * vocab)
    return total


def engine_question_flops(plan, seq, kinds, d, d_ff, layers, vocab, vision) -> float:
    """Per question: for each kind, the clean and corrupted full runs plus the batches."""
    full = full_run_flops(seq, d, d_ff, layers, vocab, vision)
    return kinds * (2 * full + engine_flops(plan, seq, d, d_ff, layers, vocab))


def build(layers: int, hidden: int) -> LlavaForConditionalGeneration:
    return random.llava(
        "llama",
        text=dict(
            vocab_size=256,
            hidden_size=hidden,
            intermediate_size=hidden * 11 // 4,
            num_layers=layers,
            num_heads=4,
            max_positions=1024,
        ),
        vision=dict(hidden_size=32, intermediate_size=64, image_size=336, patch_size=14),
        image_token=IMAGE_TOKEN,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--text-tokens", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--gpu-tflops",
        type=float,
        default=200.0,
        help="assumed sustained bf16 TFLOP/s of one GPU for the 7B projection",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = build(args.layers, args.hidden)
    g = torch.Generator().manual_seed(1)
    text = torch.randint(10, 256, (args.text_tokens,), generator=g)
    ids = torch.cat([torch.tensor([1]), torch.full((576,), IMAGE_TOKEN), text]).unsqueeze(0)
    corrupted = ids.clone()
    first = 1 + 576 + 6  # a two-token constraint early in the question, as in the release
    corrupted[0, first : first + 2] = torch.tensor([200, 201])
    px = torch.randn(1, 3, 336, 336, generator=g)
    clean_in = {"input_ids": ids, "pixel_values": px}
    corr_in = {"input_ids": corrupted, "pixel_values": px}
    with torch.no_grad():
        answer = int(model(**clean_in).logits[0, -1].argmax())
    positions = list(range(576, ids.shape[1]))  # last visual token .. last token
    n_cells = 2 * len(positions) * args.layers
    print(
        f"sequence {ids.shape[1]} tokens, {len(positions)} traced positions, "
        f"{args.layers} layers, {n_cells} cells (mlp + attn, window 1)"
    )

    timings, results = {}, {}
    for name, fn in (("engine", trace), ("reference", trace_reference)):
        t0 = time.perf_counter()
        results[name] = [
            fn(model, clean_in, corr_in, answer, kind, positions, 1, "centered")
            for kind in ("mlp", "attn")
        ]
        timings[name] = time.perf_counter() - t0
        print(f"{name}: {timings[name]:.2f} s ({n_cells / timings[name]:.1f} cells/s)")
    diff = max(
        (a.ie - b.ie).abs().max().item()
        for a, b in zip(results["engine"], results["reference"], strict=True)
    )
    # The engine's batches for this layout; the 7B text model also has 32 layers.
    seq, kinds = ids.shape[1], 2
    plan = batch_plan(positions, range(args.layers), first, args.layers, seq, 1, "centered", 64)
    plan_7b = batch_plan(positions, range(32), first, 32, seq, 1, "centered", 64)
    here = dict(d=args.hidden, d_ff=args.hidden * 11 // 4, layers=args.layers, vocab=256)
    here_flops = engine_question_flops(plan, seq, kinds, **here, vision=False)
    print(
        f"engine here: {timings['engine']:.2f} s per question, "
        f"{here_flops / timings['engine'] / 1e9:.1f} GFLOP/s on this CPU (text model only)"
    )
    flops_7b = engine_question_flops(plan_7b, seq, kinds, **LLAVA_7B, vision=True)
    ref_7b = kinds * (len(positions) * 32 + 2) * full_run_flops(seq, **LLAVA_7B, vision=True)
    rate = args.gpu_tflops * 1e12
    print(
        f"PROJECTION, LLaVA-1.5-7B on one GPU at an assumed {args.gpu_tflops:.0f} TFLOP/s "
        f"sustained (compute-bound; FLOPs of this trace at 7B shape): engine "
        f"{flops_7b / 1e12:.1f} TFLOP = {flops_7b / rate:.2f} s per question, "
        f"{flops_7b / rate * QUESTIONS / 3600:.1f} h for {QUESTIONS} questions; reference "
        f"{ref_7b / rate:.1f} s per question, {ref_7b / rate * QUESTIONS / 3600:.0f} h"
    )
    print(f"speedup: {timings['reference'] / timings['engine']:.1f}x  max_abs_diff: {diff:.2e}")


if __name__ == "__main__":
    main()
