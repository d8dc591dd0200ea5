"""One place for figure styling and deterministic figure output.

Figures are compared byte-for-byte across reruns, so everything that could vary between runs
(timestamps in PDF metadata, the matplotlib version string, the PNG `Software` chunk, the SVG id
salt, the dpi) is pinned here rather than in each plotting function.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

# headless and identical on laptops and cluster nodes; in a Jupyter kernel the notebook's own
# (inline) backend is kept, so `mmtrace`'s figures and the user's show inline
if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from mmtrace.io import atomic_save  # noqa: E402

DPI = 200
FORMATS = ("pdf", "png")
PDF_METADATA: dict[str, Any] = {
    "Creator": "mmtrace",
    "Producer": "mmtrace",
    "CreationDate": None,
    "ModDate": None,
}
PNG_METADATA: dict[str, Any] = {"Software": None}

SPLIT_ORDER = ("known", "movies", "okvqa", "heldout")
SPLIT_LABELS = {"known": "Known", "movies": "Movies", "okvqa": "OK-VQA", "heldout": "Held-out"}

# rcParams that affect the bytes written at save time; applied around every save so output does
# not depend on whether the caller called apply_style().
SAVE_RC: dict[str, Any] = {
    "svg.hashsalt": "mmtrace",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "pdf.compression": 6,
    "savefig.dpi": DPI,
    "savefig.format": "pdf",
    "savefig.transparent": False,
    "savefig.facecolor": "white",
}

STYLE: dict[str, Any] = {
    **SAVE_RC,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "mathtext.fontset": "dejavusans",
    "text.usetex": False,
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 9,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "image.interpolation": "nearest",
}


def apply_style() -> None:
    """Set the Agg backend and the paper's rcParams globally (call before building a figure:
    font sizes are read when artists are created)."""
    matplotlib.use("Agg")
    matplotlib.rcParams.update(STYLE)


@contextmanager
def style_context() -> Iterator[None]:
    """The paper style, restored afterwards (for callers that must not touch global state)."""
    with matplotlib.rc_context(STYLE):
        yield


def split_label(split: str) -> str:
    """Display name of a split as used in the paper's tables and figures."""
    return SPLIT_LABELS.get(split, split)


def save_figure(fig: Figure, stem: str | Path, *, tight: bool = True) -> list[Path]:
    """Write `stem`.pdf and `stem`.png atomically and byte-identically across reruns.

    Returns the written paths (pdf first). The figure is left open; callers that built it with
    pyplot should close it.
    """
    stem = Path(stem)
    extra: dict[str, Any] = {"bbox_inches": "tight", "pad_inches": 0.02} if tight else {}
    written: list[Path] = []
    with matplotlib.rc_context(SAVE_RC):
        for fmt in FORMATS:
            path = stem.with_name(f"{stem.name}.{fmt}")
            metadata = PDF_METADATA if fmt == "pdf" else PNG_METADATA
            atomic_save(
                path,
                lambda tmp, f=fmt, m=metadata: fig.savefig(
                    tmp, format=f, dpi=DPI, metadata=m, **extra
                ),
            )
            written.append(path)
    return written


def empty_figure(stem: str | Path, message: str) -> list[Path]:
    """A figure that says why there is nothing to draw (an honest placeholder, never blank)."""
    fig = Figure(figsize=(5, 1))
    fig.text(0.5, 0.5, message, ha="center", va="center")
    return save_figure(fig, stem)


def format_p(p: float | None) -> str:
    """'p=0.012', 'p=3.1e-05' or 'p<1e-16' (below double precision's resolution)."""
    if p is None:
        return "p n/a"
    if p < 1e-16:
        return "p<1e-16"
    return f"p={p:.1e}" if p < 1e-3 else f"p={p:.3f}"


FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def save_one(fig: Figure, path: str | Path) -> Path:
    """Write `fig` to one file, its format by the suffix (.png, .pdf or .svg), with the pinned
    metadata of `save_figure`; the folder is created."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise ValueError(f"{path}: a figure is written as {', '.join(FIGURE_SUFFIXES)}")
    metadata = {"pdf": PDF_METADATA, "png": PNG_METADATA}.get(fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(SAVE_RC):
        atomic_save(
            path,
            lambda tmp: fig.savefig(
                tmp, format=fmt, dpi=DPI, metadata=metadata, bbox_inches="tight", pad_inches=0.02
            ),
        )
    return path
