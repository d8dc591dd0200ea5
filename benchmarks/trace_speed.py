"""Speed of the tracing engine against the release's scheme (one full forward per cell).

A randomly initialised LLaVA with LLaVA-1.5's token layout (BOS, 576 visual tokens, then ~30
question tokens; 32 decoder layers) but small hidden sizes so it runs on a CPU. Both
implementations trace MLP and attention with window 1 over the positions from the last visual
token to the last token, in one process. The last line reads
`speedup: <ratio>x  max_abs_diff: <max |dIE|>`.

    python benchmarks/trace_speed.py [--layers 32] [--hidden 64] [--text-tokens 30]
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

from mmtrace.tracing.engine import trace
from mmtrace.tracing.reference import trace_reference

IMAGE_TOKEN = 5


def build(layers: int, hidden: int) -> LlavaForConditionalGeneration:
    torch.manual_seed(0)
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=336,
        patch_size=14,
    )
    text = LlamaConfig(
        vocab_size=256,
        hidden_size=hidden,
        intermediate_size=hidden * 11 // 4,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=1024,
    )
    cfg = LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=IMAGE_TOKEN, image_seq_length=576
    )
    return LlavaForConditionalGeneration(cfg).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--text-tokens", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
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
    # Projection for LLaVA-1.5-7B: the per-cell work scales with the suffix tokens times the layers
    # above the window; measured here as engine cells/s, not extrapolated to a GPU.
    print(
        f"engine time per question (both kinds) at this size: {timings['engine']:.2f} s; "
        f"for 9.7K questions: {timings['engine'] * 9700 / 3600:.1f} h at this size on this CPU"
    )
    print(f"speedup: {timings['reference'] / timings['engine']:.1f}x  max_abs_diff: {diff:.2e}")


if __name__ == "__main__":
    main()
