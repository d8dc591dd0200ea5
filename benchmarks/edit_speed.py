"""Cost of one MultEdit: the closed form against the release's explicit inverse, and a whole edit.

1. The weight update at LLaVA-7B's MLP shape (d_model 4096, d_ff 11008) or a smaller d_ff:
   `rank_one_update` (Sherman-Morrison, O(d_model d_ff)) against the release's
   `(lambda W + z k^T)(lambda I + k k^T)^-1` with an explicit d_ff x d_ff inverse, in the same
   process, with the largest difference between the two weights.
2. A whole edit (key, delta optimisation, update, undo) on a randomly initialised LLaVA with
   LLaVA-1.5's token layout (576 visual tokens) and small hidden sizes, timed per edit, with the
   process's peak RSS; and each method (MultEdit, FT, FT-L) at the config's settings on a trained
   toy MLLM (--toy), if the workflow has built one.
3. A PROJECTION (not a measurement) for LLaVA-1.5-7B on one GPU: each delta step is a forward
   and backward pass over ~610 tokens, about 3x the forward FLOPs, at --gpu-tflops sustained.

    python benchmarks/edit_speed.py [--d-ff 11008] [--steps 10] [--gpu-tflops 200]

The last line reads `closed-form speedup: <ratio>x  max_abs_diff: <max |dW|>`.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
from trace_speed import IMAGE_TOKEN, build  # the same random LLaVA as the trace benchmark

from mmtrace.editing.multedit import MultEditSettings, multedit
from mmtrace.editing.rank_one import rank_one_update


def explicit_update(w, k, z, lam):
    d_in = k.shape[0]
    eye = torch.eye(d_in, dtype=w.dtype)
    return (lam * w + torch.outer(z, k)) @ torch.linalg.inv(lam * eye + torch.outer(k, k))


def toy_edits(args) -> None:
    """MultEdit at the toy config's settings on held-out questions of a trained toy MLLM."""
    from pathlib import Path

    import yaml

    from mmtrace.config import Editing, Prompts
    from mmtrace.dataset import load_questions
    from mmtrace.editing.study import method_table
    from mmtrace.models.encoding import Span, encode_question
    from mmtrace.models.loading import load, load_image
    from mmtrace.models.scoring import first_answer_token

    if not Path(args.toy).is_dir():
        print(f"toy model {args.toy} not found: run the workflow first (skipped)")
        return
    cfg = Editing(**yaml.safe_load(Path("config.yaml").read_text())["editing"])
    loaded = load(args.toy, "mllm")
    records = load_questions([Path(args.data) / "heldout.csv"])[: args.edits + 1]
    times = {}
    for name, method in method_table(cfg).items():
        times[name] = []
        for rec in records:
            s = rec.visual_span
            image = load_image(Path(args.data) / rec.image_url)
            span = Span(s.start, s.end, "visual", "")
            enc = encode_question(loaded, Prompts().mllm, rec.qid, rec.question, [span], image)
            target = first_answer_token(loaded.tokenizer, enc.prompt, rec.answer)
            t = time.perf_counter()
            edit = method(loaded.model, enc.inputs, enc.span_positions["visual"][-1], target)
            edit.undo()
            times[name].append(time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per = ", ".join(f"{k} {min(v[1:]) * 1e3:.0f} ms" for k, v in times.items())
    print(
        f"per edit on {args.toy} (layer {cfg.layer}, {cfg.steps} steps; best of {args.edits} "
        f"after a warm-up): {per}; peak RSS so far {rss:.0f} MB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d-model", type=int, default=4096)
    ap.add_argument("--d-ff", type=int, default=11008)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--edits", type=int, default=3)
    ap.add_argument("--gpu-tflops", type=float, default=200.0)
    ap.add_argument(
        "--toy",
        default="results/models/toy-llava",
        help="a trained toy MLLM to time edits on (skipped if missing)",
    )
    ap.add_argument("--data", default="data/toy", help="its toy world")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    g = torch.Generator().manual_seed(0)
    w = torch.randn(args.d_model, args.d_ff, generator=g, dtype=torch.float64) * 0.02
    k = torch.randn(args.d_ff, generator=g, dtype=torch.float64)
    z = torch.randn(args.d_model, generator=g, dtype=torch.float64)
    t = time.perf_counter()
    fast = rank_one_update(w, k, z, 0.01)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    slow = explicit_update(w, k, z, 0.01)
    t_slow = time.perf_counter() - t
    diff = float((fast - slow).abs().max())
    print(
        f"update at {args.d_model} x {args.d_ff} (float64): rank-one {t_fast * 1e3:.1f} ms, "
        f"explicit inverse {t_slow:.2f} s (a {args.d_ff} x {args.d_ff} matrix, "
        f"{args.d_ff**2 * 8 / 2**30:.2f} GiB)"
    )

    model = build(args.layers, args.hidden)
    ids = torch.tensor([[1] + [IMAGE_TOKEN] * 576 + list(range(10, 40))])
    inputs = {"input_ids": ids, "pixel_values": torch.randn(1, 3, 336, 336, generator=g)}
    settings = MultEditSettings(layer=2, steps=args.steps)
    times = []
    for i in range(args.edits):
        t = time.perf_counter()
        edit = multedit(model, inputs, 580, 100 + i, settings)
        edit.undo()
        times.append(time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"whole edit, random LLaVA ({args.layers} layers, hidden {args.hidden}, 607 tokens, "
        f"{args.steps} steps): {min(times):.2f} s (best of {args.edits}); peak RSS {rss:.0f} MB"
    )

    toy_edits(args)

    # Projection at LLaVA-1.5-7B shape: ~2 * 6.7e9 FLOPs per token forward; a delta step is a
    # forward and a backward (~3x forward) over 607 tokens; plus the key pass.
    fwd = 2 * 6.7e9 * 607
    flops = fwd * (1 + 3 * args.steps)
    print(
        f"PROJECTION for LLaVA-1.5-7B: {flops / 1e12:.0f} TFLOP per edit -> "
        f"{flops / (args.gpu_tflops * 1e12):.2f} s at {args.gpu_tflops:.0f} TFLOP/s sustained "
        f"(assumed, not measured); the explicit inverse alone needs a {args.d_ff}^2 matrix"
    )
    print(f"closed-form speedup: {t_slow / t_fast:.1f}x  max_abs_diff: {diff:.2e}")


if __name__ == "__main__":
    main()
