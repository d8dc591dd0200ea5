"""Speed of the tracing engine against the release's scheme and two peers, on CPU time.

A random LLaVA with LLaVA-1.5's token layout (BOS, 576 visual tokens, then 30 question tokens with
a two-token constraint from the 7th on; 32 decoder layers) at a small hidden size (64, 4 heads of
16), initialised at 10x transformers' default scale so that restorations have real effects (the
largest |IE| is printed against the 1e-5 tolerance). One question is traced as the workflow
traces it: every kind of config.Tracing (mlp, attn, hidden) and its windows (1 and 3, centered),
positions from the last visual token to the last token. In one process, with one torch thread,
on CPU time (time.process_time), medians of --repeats runs:

- engine: `tracing.engine.trace_many` (one clean and one corrupted pass for the question);
- release: the release's scheme, one full forward per cell (`tracing.reference.trace_reference`,
  once per kind and window), timed on a sample of positions and extrapolated per forward pass;
  its IE on the sample is the ground truth of `max_rel_diff` (max |dIE| / max |IE|);
- batched: 64 cells per forward of the whole sequence with plain hooks (benchmarks/peers.py),
  timed on --batched-sample of its batches plus its two passes and extrapolated per batch;
- prefix_cached: the same with the positions before the corruption computed once into
  transformers' DynamicCache and expanded per batch (benchmarks/peers.py), timed in full, its
  runs alternating with the engine's (on a shared or throttled machine the CPU time of one run
  varies by 10-30%; alternating exposes both to the same spells).

The engine's and the prefix-cached peer's lines split their CPU time into user and system
time and count their page faults: the peer copies its expanded cache every batch, and with
glibc's default malloc each copy lands in fresh pages the kernel must zero (on one machine 23-37%
of the peer's CPU time was system time, the engine's under 2%), so a line reports the ratio in
user time too. `--allocator reuse` sets glibc's thresholds so that freed memory is reused, and
every function runs without those faults.

The first line names the CPU (its model name, and the instruction set torch's kernels use): the
ratios depend on it (on one 2-core AVX2 machine the engine's prefix kernel ran 2.4x and torch.mm
2x slower than on another).

FLOPs are counted with torch.utils.flop_counter (the CPU flash-attention kernel counted like
SDPA) and compared with the minimum: each cell recomputes positions t.. through layers lo.. of its
window attending to the full prefix, plus the LM head at the last position
(`tracing.batching.minimal_flops`), plus one clean and one corrupted forward. The torch.mm peak is
measured on 2048 x 2048 float32 matrices. The last line reads (one line)
`engine_vs_prefix_cached: <x>x  engine_vs_batched: <y>x  engine_vs_release: <z>x`
`  flop_overhead: <f>  max_rel_diff: <d>`.

`--scaling` instead prints, for 16/144/576 visual x 15/30/60 text tokens, the engine, the two
peers and the FLOP ratio (`--markdown` as a markdown table); the release is left out there.

    python benchmarks/trace_speed.py [--repeats 3] [--allocator glibc|reuse]
        [--scaling [--markdown]]
"""

from __future__ import annotations

import argparse
import ctypes
import math
import platform
import resource
import statistics
import time

import peers
import torch

from mmtrace.config import Tracing
from mmtrace.models import random
from mmtrace.models.lookup import locate
from mmtrace.tracing import batching
from mmtrace.tracing.batching import counted_flops
from mmtrace.tracing.engine import trace_many
from mmtrace.tracing.reference import trace_reference

IMAGE_TOKEN = 5
TOL = 1e-5
DEFAULTS = Tracing()
KINDS, WINDOWS, STYLE = tuple(DEFAULTS.kinds), tuple(DEFAULTS.windows), DEFAULTS.window_style
PEER_BATCH = 64


def build(layers: int, hidden: int, heads: int, visual: int, init: float):
    side = math.isqrt(visual)
    if side * side != visual:
        raise ValueError("the number of visual tokens must be a square")
    return random.llava(
        "llama",
        text=dict(
            vocab_size=256,
            hidden_size=hidden,
            intermediate_size=hidden * 11 // 4,
            num_layers=layers,
            num_heads=heads,
            max_positions=2048,
            initializer_range=init,
        ),
        vision=dict(hidden_size=32, intermediate_size=64, image_size=14 * side, patch_size=14),
        image_token=IMAGE_TOKEN,
    )


def question(model, visual: int, text: int):
    """Clean and corrupted inputs (a two-token constraint from the 7th question token on), the
    first corrupted position, the traced positions and the clean run's top answer."""
    g = torch.Generator().manual_seed(1)
    words = torch.randint(10, 256, (text,), generator=g)
    ids = torch.cat([torch.tensor([1]), torch.full((visual,), IMAGE_TOKEN), words]).unsqueeze(0)
    corrupted = ids.clone()
    first = 1 + visual + 6
    corrupted[0, first : first + 2] = torch.tensor([200, 201])
    side = model.config.vision_config.image_size
    px = torch.randn(1, 3, side, side, generator=g)
    clean_in, corr_in = (
        {"input_ids": ids, "pixel_values": px},
        {"input_ids": corrupted, "pixel_values": px},
    )
    with torch.no_grad():
        answer = int(model(**clean_in).logits[0, -1].argmax())
    return clean_in, corr_in, first, list(range(visual, ids.shape[1])), answer


def cpu_time(fn, repeats: int):
    """Median CPU seconds of `repeats` calls, and the last call's result."""
    seconds, out, _ = alternating([fn], repeats)[0]
    return seconds, out


def alternating(fns, repeats: int) -> list[tuple[float, object, dict]]:
    """Median CPU seconds, last result and the medians of its parts (`user`, `system` seconds,
    minor page `faults`) of each of `fns`, called in turn `repeats` times (a slow spell of the
    machine then slows every function, not just the one running then). The system part is
    mostly page faults (module docstring)."""
    times: list[list[float]] = [[] for _ in fns]
    parts: list[dict[str, list[float]]] = [{"user": [], "system": [], "faults": []} for _ in fns]
    outs: list[object] = [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
            outs[i] = fn()
            t1, r1 = time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
            times[i].append(t1 - t0)
            parts[i]["user"].append(r1.ru_utime - r0.ru_utime)
            parts[i]["system"].append(r1.ru_stime - r0.ru_stime)
            parts[i]["faults"].append(r1.ru_minflt - r0.ru_minflt)
    return [
        (statistics.median(t), out, {k: statistics.median(v) for k, v in part.items()})
        for t, out, part in zip(times, outs, parts, strict=True)
    ]


def reuse_freed_memory() -> None:
    """glibc's malloc keeps freed memory for reuse instead of returning it to the kernel:
    allocations up to 1 GiB come from the heap (M_MMAP_THRESHOLD) and the heap is never
    trimmed (M_TRIM_THRESHOLD), so a buffer freed and allocated again costs no page faults.
    Called before the models are built; applies to every function timed after it."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(-3, 1 << 30) == 1 and libc.mallopt(-1, -1) == 1  # M_MMAP_, M_TRIM_
    except (OSError, AttributeError) as err:
        raise SystemExit(f"--allocator reuse needs glibc (libc.so.6 with mallopt): {err}") from err
    if not ok:
        raise SystemExit("--allocator reuse: glibc's mallopt refused the thresholds")


def cpu_name() -> str:
    """The CPU's model name (Linux) and the instruction set torch's kernels use."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}"


def mm_peak(repeats: int = 5) -> float:
    """Measured torch.mm GFLOP/s on 2048 x 2048 float32 matrices."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    seconds, _ = cpu_time(lambda: torch.mm(a, b), repeats)
    return 2 * 2048**3 / seconds / 1e9


def measure(args, visual: int, text: int, release: bool) -> dict:
    model = build(args.layers, args.hidden, args.heads, visual, args.init)
    clean, corr, first, positions, answer = question(model, visual, text)
    n, seq = args.layers, clean["input_ids"].shape[1]
    call = (model, clean, corr, answer)
    m: dict = dict(visual=visual, text=text, seq=seq, positions=len(positions), first=first)

    def engine():
        return trace_many(*call, KINDS, WINDOWS, positions, STYLE, batch_size=DEFAULTS.batch_size)

    def cached():
        return peers.trace(*call, KINDS, WINDOWS, positions, first, True, batch=PEER_BATCH)

    # The engine and its strongest peer alternate, so that both see the same machine state.
    timed = alternating([engine, cached], args.repeats)
    (m["engine_s"], eng, m["engine_parts"]), (m["prefix_cached_s"], ie, m["cached_parts"]) = timed
    eng_ie = {key: r.ie for key, r in eng.items()}
    m["max_ie"] = max(ie.abs().max().item() for ie in eng_ie.values())
    m["prefix_cached_diff"] = max((ie[k] - eng_ie[k]).abs().max().item() for k in ie)

    # The batched peer: every batch runs the same shape, so time a few and extrapolate.
    cells = len(KINDS) * len(WINDOWS) * sum(t >= first for t in positions) * n
    n_batches = math.ceil(cells / PEER_BATCH)
    k = min(args.batched_sample, n_batches)

    def batched(limit):
        return lambda: peers.trace(
            *call, KINDS, WINDOWS, positions, first, False, PEER_BATCH, limit
        )

    passes_s, _ = cpu_time(batched(0), args.repeats)
    sample_s, ie = cpu_time(batched(k), args.repeats)
    m["batched_s"] = passes_s + (sample_s - passes_s) * n_batches / k
    m["batched_note"] = f"{k} of {n_batches} batches timed, extrapolated"
    m["batched_diff"] = max((ie[k] - eng_ie[k]).nan_to_num().abs().max().item() for k in ie)

    todo = batching.cells(KINDS, WINDOWS, positions, range(n), first, n, STYLE)
    blocks = locate(model)
    one_pass = counted_flops(lambda: model(**clean, logits_to_keep=1))
    m["minimal_flops"] = batching.minimal_flops(model, blocks.layers, todo, seq) + 2 * one_pass
    m["engine_flops"] = counted_flops(engine)
    m["flop_overhead"] = m["engine_flops"] / m["minimal_flops"]
    if release:
        m.update(release_scheme(args, call, first, positions, eng_ie, seq))
    return m


def release_scheme(args, call, first: int, positions: list[int], eng_ie: dict, seq: int) -> dict:
    """Time `trace_reference` on a sample of positions per kind and window; extrapolate per
    forward pass (2 passes + one per cell, every position and layer, as the release runs)."""
    sample = sorted({first - 1, first, first + 1, seq - 1} & set(positions))
    rows = [positions.index(t) for t in sample]
    per_forward, diff, top = [], 0.0, 0.0
    for kind in KINDS:
        for w in WINDOWS:
            t0 = time.process_time()
            ref = trace_reference(*call, kind, sample, w, STYLE)
            per_forward.append((time.process_time() - t0) / (2 + len(sample) * args.layers))
            diff = max(diff, (ref.ie - eng_ie[(kind, w)][rows]).abs().max().item())
            top = max(top, ref.ie.abs().max().item())
    forwards = len(KINDS) * len(WINDOWS) * (2 + len(positions) * args.layers)
    return dict(
        release_s=statistics.median(per_forward) * forwards,
        release_note=f"{len(sample)} of {len(positions)} positions timed, extrapolated",
        ref_max_ie=top,
        max_abs_diff=diff,
        max_rel_diff=diff / top,
    )


def parts(p: dict) -> str:
    return f"user {p['user']:.2f} s, system {p['system']:.2f} s, {p['faults']:.0f} page faults"


def report(args, m: dict) -> None:
    cells = len(KINDS) * len(WINDOWS) * m["positions"] * args.layers
    peak = mm_peak()
    print(
        f"sequence {m['seq']} tokens ({m['visual']} visual + {m['text']} text), "
        f"{m['positions']} traced positions, {args.layers} layers, {cells} cells "
        f"(kinds {'/'.join(KINDS)}, windows {'/'.join(map(str, WINDOWS))} {STYLE}); "
        f"hidden {args.hidden}, {args.heads} heads, initializer_range {args.init}; "
        f"1 torch thread, CPU time, median of {args.repeats}; allocator {args.allocator}; "
        f"{cpu_name()}"
    )
    print(f"engine:        {m['engine_s']:8.2f} s  ({parts(m['engine_parts'])})")
    diff = f"max |dIE| vs engine {m['prefix_cached_diff']:.1e}"
    print(f"prefix_cached: {m['prefix_cached_s']:8.2f} s  ({parts(m['cached_parts'])}; {diff})")
    diff = f"max |dIE| vs engine {m['batched_diff']:.1e}"
    print(f"batched:       {m['batched_s']:8.2f} s  ({m['batched_note']}; {diff})")
    print(f"release:       {m['release_s']:8.2f} s  ({m['release_note']})")
    print(
        f"exactness: max |IE| {m['max_ie']:.2e} (engine, all cells) = {m['max_ie'] / TOL:.0f}x the "
        f"{TOL:.0e} tolerance; on the release's sample max |IE| {m['ref_max_ie']:.2e}, "
        f"max |dIE| {m['max_abs_diff']:.2e}, diff / max|IE| {m['max_rel_diff']:.2e}"
    )
    print(
        f"FLOPs: engine {m['engine_flops'] / 1e9:.1f} GFLOP counted, minimum "
        f"{m['minimal_flops'] / 1e9:.1f} GFLOP (cells + one clean and one corrupted forward); "
        f"engine {m['engine_flops'] / m['engine_s'] / 1e9:.1f} GFLOP/s vs torch.mm peak "
        f"{peak:.1f} GFLOP/s ({peak * m['engine_s'] * 1e9 / m['engine_flops']:.1f}x from it)"
    )
    user = m["cached_parts"]["user"] / m["engine_parts"]["user"]
    print(f"engine vs prefix_cached in user time only (no page-fault system time): {user:.1f}x")
    print(
        f"engine_vs_prefix_cached: {m['prefix_cached_s'] / m['engine_s']:.1f}x  "
        f"engine_vs_batched: {m['batched_s'] / m['engine_s']:.1f}x  "
        f"engine_vs_release: {m['release_s'] / m['engine_s']:.1f}x  "
        f"flop_overhead: {m['flop_overhead']:.3f}  max_rel_diff: {m['max_rel_diff']:.1e}"
    )


def scaling(args) -> None:
    head = [
        "visual",
        "text",
        "engine s",
        "prefix_cached s",
        "batched s",
        "vs prefix_cached",
        "vs batched",
        "flop_overhead",
        "max |IE|",
    ]
    rows = []
    for visual in (16, 144, 576):
        for text in (15, 30, 60):
            m = measure(args, visual, text, release=False)
            rows.append([
                str(visual), str(text), f"{m['engine_s']:.2f}", f"{m['prefix_cached_s']:.2f}",
                f"{m['batched_s']:.1f}", f"{m['prefix_cached_s'] / m['engine_s']:.1f}x",
                f"{m['batched_s'] / m['engine_s']:.1f}x", f"{m['flop_overhead']:.3f}",
                f"{m['max_ie']:.1e}",
            ])  # fmt: skip
            if not args.markdown:
                print("  ".join(rows[-1]), flush=True)
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--init", type=float, default=0.2, help="initializer_range of the text model")
    ap.add_argument("--visual", type=int, default=576)
    ap.add_argument("--text", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batched-sample", type=int, default=4, help="batched peer: batches timed")
    ap.add_argument("--scaling", action="store_true", help="print the scaling table instead")
    ap.add_argument("--markdown", action="store_true", help="the scaling table in markdown")
    ap.add_argument(
        "--allocator",
        choices=("glibc", "reuse"),
        default="glibc",
        help="glibc: its defaults; reuse: freed memory kept for reuse (no page faults)",
    )
    args = ap.parse_args()
    if args.allocator == "reuse":
        reuse_freed_memory()
    torch.set_num_threads(1)
    if args.scaling:
        scaling(args)
        return
    report(args, measure(args, args.visual, args.text, release=True))


if __name__ == "__main__":
    main()
