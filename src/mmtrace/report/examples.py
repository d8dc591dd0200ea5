"""Figure of toy-world examples: per split, a few questions with their image and answer.

It lets a reader check at a glance what the synthetic stand-in for VQA-Constraints looks like
(which part of the question is grounded in the image, which is a textual constraint).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.text import Text
from PIL import Image

from mmtrace.dataset import QuestionRecord
from mmtrace.report.style import SPLIT_ORDER, apply_style, save_figure, split_label
from mmtrace.seeding import derive

IMAGE_PX = 192  # upscaled size; nearest-neighbour keeps the toy images' hard edges
CELL_IN = 1.45  # width (and image height) of one cell, inches
TEXT_IN = 0.62  # room for the wrapped question and answer under each image
TEXT_PT = 6.0
LINE_PT = 7.5
CHAR_EM = 0.64  # conservative mean glyph width of DejaVu Sans (bold) in em, for wrapping
COLOURS = {None: "black", "visual": "#1f5fbf", "textual": "#c0500a", "answer": "#2a7a2a"}


def pick_examples(
    records: list[QuestionRecord], split: str, k: int, seed: int
) -> list[QuestionRecord]:
    """Choose `k` questions of `split` reproducibly, mixing single- and multi-constraint ones
    when the split has both and preferring distinct entities."""
    rng = random.Random(derive(seed, "examples", split))
    in_split = sorted((r for r in records if r.split == split), key=lambda r: r.qid)
    groups = {ct: [r for r in in_split if r.constraint_type == ct] for ct in ("single", "multi")}
    n_multi = min(len(groups["multi"]), k // 2) if groups["single"] else k
    quota = {"single": k - n_multi, "multi": n_multi}
    chosen: list[QuestionRecord] = []
    for ct in ("single", "multi"):
        pool = list(groups[ct])
        rng.shuffle(pool)
        # One question per entity first, then repeats if the split has too few entities.
        firsts: dict[str, QuestionRecord] = {}
        for r in pool:
            firsts.setdefault(r.entity_id, r)
        ranked = list(firsts.values()) + [r for r in pool if firsts[r.entity_id] is not r]
        chosen += ranked[: quota[ct]]
    if len(chosen) < k:  # a group was short: top up from the rest of the split
        taken = {r.qid for r in chosen}
        rest = [r for r in in_split if r.qid not in taken]
        rng.shuffle(rest)
        chosen += rest[: k - len(chosen)]
    return chosen[:k]


def _kinds(rec: QuestionRecord) -> list[str | None]:
    kinds: list[str | None] = [None] * len(rec.question)
    for span in rec.constraints:
        kinds[span.start : span.end] = [span.type] * (span.end - span.start)
    return kinds


def _wrapped_segments(rec: QuestionRecord, width: int) -> list[list[tuple[str, str | None]]]:
    """Greedy word wrap that keeps track of which characters belong to a constraint span."""
    kinds = _kinds(rec)
    words = list(re.finditer(r"\S+", rec.question))
    lines: list[tuple[int, int]] = []
    for w in words:
        if lines and w.end() - lines[-1][0] <= width:
            lines[-1] = (lines[-1][0], w.end())
        else:
            lines.append((w.start(), w.end()))
    out = []
    for start, end in lines:
        segs: list[tuple[str, str | None]] = []
        for i in range(start, end):
            if segs and segs[-1][1] == kinds[i]:
                segs[-1] = (segs[-1][0] + rec.question[i], kinds[i])
            else:
                segs.append((rec.question[i], kinds[i]))
        out.append(segs)
    return out


def _caption(ax: Axes, rec: QuestionRecord, width: int) -> None:
    """Question below the image, constraint spans coloured, then the answer."""
    lines = _wrapped_segments(rec, width)
    lines.append([("A: ", "answer"), (rec.answer, "answer")])
    for i, segs in enumerate(lines):
        prev: Text | None = None
        for text, kind in segs:
            style = {
                "fontsize": TEXT_PT,
                "color": COLOURS[kind],
                "fontweight": "normal" if kind is None else "bold",
                "annotation_clip": False,
            }
            if prev is None:
                prev = ax.annotate(
                    text,
                    xy=(0, 0),
                    xycoords="axes fraction",
                    xytext=(0, -3 - i * LINE_PT),
                    textcoords="offset points",
                    ha="left",
                    va="top",
                    **style,
                )
            else:
                prev = ax.annotate(text, xy=(1, 0), xycoords=prev, ha="left", va="bottom", **style)


def toy_world_examples(
    data_dir: str | Path,
    records: list[QuestionRecord],
    stem: str | Path,
    per_split: int = 4,
    seed: int = 0,
) -> list[Path]:
    """Grid of example questions (rows: splits present in `records`, paper order; columns:
    `per_split` examples); writes `stem`.pdf/.png and returns their paths."""
    data_dir = Path(data_dir)
    present = {r.split for r in records}
    splits = [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))
    if not splits or per_split < 1:
        raise ValueError("toy_world_examples: no records or per_split < 1")
    apply_style()
    gap, left, top = 0.1, 0.3, 0.3  # inches
    width = left + per_split * CELL_IN + (per_split - 1) * gap
    height = top + len(splits) * (CELL_IN + TEXT_IN)
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=left / width,
        right=1.0,
        top=1 - top / height,
        bottom=TEXT_IN / height,
        wspace=gap / CELL_IN,
        hspace=TEXT_IN / CELL_IN,
    )
    axes = fig.subplots(len(splits), per_split, squeeze=False)
    wrap = int(CELL_IN * 72 / (CHAR_EM * TEXT_PT))
    for row, split in enumerate(splits):
        chosen = pick_examples(records, split, per_split, seed)
        for col in range(per_split):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(chosen):
                ax.set_axis_off()
                continue
            rec = chosen[col]
            with Image.open(data_dir / rec.image_url) as im:
                img = np.asarray(im.convert("RGB").resize((IMAGE_PX, IMAGE_PX), Image.NEAREST))
            ax.imshow(img, interpolation="nearest")
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_linewidth(0.4)
                spine.set_color("0.6")
            _caption(ax, rec, wrap)
        axes[row][0].set_ylabel(split_label(split), fontsize=8, fontweight="bold")
    fig.legend(
        handles=[
            Patch(color=COLOURS["visual"], label="visual constraint (refers to the image)"),
            Patch(color=COLOURS["textual"], label="textual constraint"),
            Patch(color=COLOURS["answer"], label="answer"),
        ],
        loc="lower center",
        bbox_to_anchor=(0.5, 1 - top / height),
        ncol=3,
        fontsize=6,
        handlelength=1.0,
    )
    return save_figure(fig, stem)
