"""Seconds per traced question at LLaVA-1.5-7B's shape, on one GPU (random weights, no download).

Builds LLaVA-1.5-7B's architecture (`mmtrace.models.random.LLAVA_1_5_7B`: Vicuna-7B text model,
CLIP ViT-L/14-336 tower, 576 visual tokens) with random weights in bfloat16 on --device, and
traces --questions questions laid out like the paper's (BOS, 576 visual tokens, --text question
tokens with a two-token constraint from the 7th on) as the workflow does: every kind and window
of config.Tracing (mlp, attn, hidden; windows 1 and 3, centered), positions from the last visual
token to the last token, `tracing.engine.trace_many` with the configured batch size.

It prints seconds per question (wall clock, synchronised; the first question is a warm-up whose
FLOPs are counted with torch.utils.flop_counter and not timed), the peak GPU memory, the achieved
TFLOP/s and the projected hours for 9.7K questions. `--tiny` runs the same code on a small
random LLaVA (CPU is fine), which is what the test suite does.

    python benchmarks/gpu_7b.py [--device cuda] [--questions 3] [--text 30] [--tiny]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch

from mmtrace.config import Tracing
from mmtrace.models import random
from mmtrace.tracing.batching import counted_flops
from mmtrace.tracing.engine import trace_many

QUESTIONS = 9700
IMAGE_TOKEN = 32000  # LLaVA-1.5's <image> token id
TINY = dict(
    text=dict(
        vocab_size=320,
        hidden_size=64,
        intermediate_size=176,
        num_layers=4,
        num_heads=4,
        max_positions=256,
    ),
    vision=dict(
        hidden_size=32,
        intermediate_size=64,
        num_layers=2,
        num_heads=2,
        image_size=56,
        patch_size=14,
    ),
)


def build(tiny: bool, device: torch.device, dtype: torch.dtype):
    shape = TINY if tiny else random.LLAVA_1_5_7B
    return random.llava(
        "llama",
        text=shape["text"],
        vision=shape["vision"],
        image_token=IMAGE_TOKEN if not tiny else 300,
        dtype=dtype,
        device=device,
    )


def question(model, text: int, seed: int):
    """Clean and corrupted inputs of one random question, and its traced positions."""
    cfg = model.config
    n_visual = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
    vocab = cfg.text_config.vocab_size
    g = torch.Generator().manual_seed(seed)
    words = torch.randint(10, min(vocab, cfg.image_token_index) - 2, (text,), generator=g)
    ids = torch.cat([torch.tensor([1]), torch.full((n_visual,), cfg.image_token_index), words])
    corrupted = ids.clone()
    first = 1 + n_visual + 6
    corrupted[first : first + 2] = torch.randint(10, 200, (2,), generator=g)
    side = cfg.vision_config.image_size
    device, dtype = model.device, model.dtype
    px = torch.randn(1, 3, side, side, generator=g).to(device, dtype)
    clean = {"input_ids": ids.unsqueeze(0).to(device), "pixel_values": px}
    corr = {"input_ids": corrupted.unsqueeze(0).to(device), "pixel_values": px}
    return clean, corr, list(range(n_visual, ids.shape[0]))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = "cuda" if torch.cuda.is_available() else "cpu"
    ap.add_argument("--device", default=default)
    ap.add_argument("--questions", type=int, default=3, help="timed, after one warm-up")
    ap.add_argument("--text", type=int, default=30, help="question tokens after the image")
    ap.add_argument("--tiny", action="store_true", help="a small random LLaVA (for tests)")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    cfg = Tracing()
    dtype = getattr(torch, args.dtype)
    model = build(args.tiny, device, dtype)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def run(seed: int):
        clean, corr, positions = question(model, args.text, seed)
        with torch.no_grad():
            answer = int(model(**clean, logits_to_keep=1).logits[0, -1].argmax())
        return trace_many(
            model, clean, corr, answer, cfg.kinds, cfg.windows, positions, cfg.window_style,
            batch_size=cfg.batch_size,
        )  # fmt: skip

    flops = counted_flops(lambda: run(0))  # warm-up: FLOPs counted, not timed
    times = []
    for seed in range(1, args.questions + 1):
        _sync(device)
        t0 = time.perf_counter()
        run(seed)
        _sync(device)
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    out = dict(
        device=str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        shape="tiny" if args.tiny else "LLaVA-1.5-7B",
        seconds_per_question=seconds,
        peak_gib=peak,
        tflops=flops / seconds / 1e12,
        tflop_per_question=flops / 1e12,
        hours=seconds * QUESTIONS / 3600,
    )
    print(
        f"{out['shape']} (random weights, {args.dtype}) on {out['device']}: "
        f"kinds {'/'.join(cfg.kinds)}, windows {'/'.join(map(str, cfg.windows))} "
        f"{cfg.window_style}, {args.text} question tokens, batch size {cfg.batch_size}, "
        f"median of {args.questions} questions"
    )
    memory = f"{peak:.1f} GiB" if peak is not None else "n/a (not a GPU)"
    print(
        f"seconds/question: {seconds:.3f}  peak GPU memory: {memory}  "
        f"achieved: {out['tflops']:.3g} TFLOP/s ({out['tflop_per_question']:.3g} TFLOP/question)  "
        f"projected: {out['hours']:.1f} h for {QUESTIONS} questions"
    )
    return out


if __name__ == "__main__":
    main()
