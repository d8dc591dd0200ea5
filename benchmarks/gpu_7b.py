"""Seconds per traced question at a 7B MLLM's shape, on one GPU (random weights, no download).

`--family llava-1.5` (the default) builds LLaVA-1.5-7B's architecture
(`mmtrace.models.random.LLAVA_1_5_7B`: Vicuna-7B text model, CLIP ViT-L/14-336 tower, 576 visual
tokens); `--family qwen2-vl` builds Qwen2-VL-7B's (`random.QWEN2_VL_7B`: a Qwen2 text model with
M-RoPE, 28 layers, grouped-query attention; a 448 px image gives 256 visual tokens after the 2x2
merger). Random weights in bfloat16 on --device; --questions questions laid out like the paper's
(the image's tokens, then --text question tokens with a two-token constraint from the 7th on)
traced as the workflow does: every kind and window of config.Tracing (mlp, attn, hidden; windows
1 and 3, centered), positions from the last visual token to the last token, with the configured
batch size, through `tracing.gate` (the engine, after its check against the exact reference on
the first question's sampled cells).

It prints the check (cells, max |engine - reference|, max effect, in the model's dtype),
seconds per question (wall clock, synchronised; the first question is a warm-up whose FLOPs are
counted with torch.utils.flop_counter and not timed), the peak GPU memory, the achieved TFLOP/s
and the projected hours for 9.7K questions. `--tiny` runs the same code on a small random model
of the family (CPU is fine), which is what the test suite does.

    python benchmarks/gpu_7b.py [--family llava-1.5|qwen2-vl] [--device cuda] [--questions 3]
        [--text 30] [--tiny]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch

from mmtrace.config import Tracing
from mmtrace.models import random
from mmtrace.tracing import gate
from mmtrace.tracing.batching import counted_flops

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


TINY_QWEN = dict(
    text=dict(
        vocab_size=320,
        hidden_size=64,
        intermediate_size=176,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
    ),
    vision=dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2),
    tokens=dict(
        image_token_id=300, video_token_id=301, vision_start_token_id=302, vision_end_token_id=303
    ),
)
FAMILIES = ("llava-1.5", "qwen2-vl")
QWEN_SIDE = 448  # Qwen2-VL's image side here: (448 / 14)^2 patches, 256 tokens after merging


def build(family: str, tiny: bool, device: torch.device, dtype: torch.dtype):
    if family == "qwen2-vl":
        shape = TINY_QWEN if tiny else random.QWEN2_VL_7B
        return random.qwen2_vl(**shape, dtype=dtype, device=device)
    shape = TINY if tiny else random.LLAVA_1_5_7B
    return random.llava(
        "llama",
        text=shape["text"],
        vision=shape["vision"],
        image_token=IMAGE_TOKEN if not tiny else 300,
        dtype=dtype,
        device=device,
    )


def _image(model, tiny: bool, g: torch.Generator) -> tuple[list[int], dict]:
    """The image's token ids and its model inputs (LLaVA: pixels; Qwen2-VL: its flattened
    patches, their grid, and the token types M-RoPE reads)."""
    cfg = model.config
    device, dtype = model.device, model.dtype
    if cfg.model_type == "qwen2_vl":
        v = cfg.vision_config
        grid = (QWEN_SIDE if not tiny else 56) // v.patch_size
        n_visual = grid * grid // v.spatial_merge_size**2
        width = 3 * v.temporal_patch_size * v.patch_size**2
        px = torch.randn(grid * grid, width, generator=g).to(device, dtype)
        ids = [cfg.vision_start_token_id] + [cfg.image_token_id] * n_visual
        ids += [cfg.vision_end_token_id]
        thw = torch.tensor([[1, grid, grid]], device=device)
        return ids, {"pixel_values": px, "image_grid_thw": thw}
    n_visual = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
    side = cfg.vision_config.image_size
    px = torch.randn(1, 3, side, side, generator=g).to(device, dtype)
    return [1] + [cfg.image_token_index] * n_visual, {"pixel_values": px}


def question(model, text: int, seed: int, tiny: bool = False):
    """Clean and corrupted inputs of one random question, and its traced positions."""
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    image, extra = _image(model, tiny, g)
    image_id = getattr(cfg, "image_token_id", None) or cfg.image_token_index
    top = min(cfg.get_text_config().vocab_size, 300) - 2
    words = torch.randint(10, top, (text,), generator=g)
    ids = torch.cat([torch.tensor(image), words])
    corrupted = ids.clone()
    first = len(image) + 6
    corrupted[first : first + 2] = torch.randint(10, top, (2,), generator=g)
    device = model.device
    if cfg.model_type == "qwen2_vl":  # M-RoPE reads which tokens are the image's
        extra["mm_token_type_ids"] = (ids == image_id).long().unsqueeze(0).to(device)
    clean = {"input_ids": ids.unsqueeze(0).to(device), **extra}
    corr = {"input_ids": corrupted.unsqueeze(0).to(device), **extra}
    last_visual = max(i for i, t in enumerate(image) if t == image_id)
    return clean, corr, list(range(last_visual, ids.shape[0]))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = "cuda" if torch.cuda.is_available() else "cpu"
    ap.add_argument("--device", default=default)
    ap.add_argument("--questions", type=int, default=3, help="timed, after one warm-up")
    ap.add_argument("--text", type=int, default=30, help="question tokens after the image")
    ap.add_argument("--family", default="llava-1.5", choices=FAMILIES)
    ap.add_argument("--tiny", action="store_true", help="a small random model (for tests)")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    cfg = Tracing()
    dtype = getattr(torch, args.dtype)
    model = build(args.family, args.tiny, device, dtype)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    checks: list[gate.Exactness] = []

    def run(seed: int):
        clean, corr, positions = question(model, args.text, seed, args.tiny)
        with torch.no_grad():
            answer = int(model(**clean, logits_to_keep=1).logits[0, -1].argmax())
        res, how = gate.trace(
            model, clean, corr, answer, cfg.kinds, cfg.windows, positions, cfg.window_style,
            batch_size=cfg.batch_size,
        )  # fmt: skip
        checks.append(how)
        return res

    run(0)  # the gate's check against the reference, on the first question; not timed
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
    how = checks[0]
    out = dict(
        device=str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        family=args.family,
        shape=("tiny " + args.family)
        if args.tiny
        else {"llava-1.5": "LLaVA-1.5-7B"}.get(args.family, "Qwen2-VL-7B"),
        path=[c.path for c in checks],
        check=how.record()["check"],
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
    check = out["check"]
    if check is not None:
        print(
            f"check: engine vs reference on {check['cells']} cells: max |diff| "
            f"{check['max_abs_diff']:.3g} (tolerance {check['tolerance']:.0e}, max effect "
            f"{check['max_effect']:.3g}); traced by: {', '.join(sorted(set(out['path'])))}"
        )
    else:
        print(f"no check: traced by the {how.path} ({how.reason})")
    memory = f"{peak:.1f} GiB" if peak is not None else "n/a (not a GPU)"
    print(
        f"seconds/question: {seconds:.3f}  peak GPU memory: {memory}  "
        f"achieved: {out['tflops']:.3g} TFLOP/s ({out['tflop_per_question']:.3g} TFLOP/question)  "
        f"projected: {out['hours']:.1f} h for {QUESTIONS} questions"
    )
    return out


if __name__ == "__main__":
    main()
