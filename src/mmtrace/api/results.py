"""What the notebook API returns: one result object per analysis, each holding the record the
command line writes as JSON (`.record`), the numbers as arrays, a tidy table (`.to_frame()`, a
pandas DataFrame), a figure (`.plot()`, a matplotlib Figure, shown inline in Jupyter) and
`.save(path)`, which writes by the file's extension: .json (the record), .csv or .tsv (the
table), .png, .pdf or .svg (the figure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
SAVE_SUFFIXES = (".json", *TABLE_SUFFIXES, ".png", ".pdf", ".svg")


def _shown_inline() -> None:
    """In IPython, make sure a returned Figure is displayed (registered once per shell)."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and not getattr(shell, "_mmtrace_figures", False):
        select_figure_formats(shell, {"png"})
        shell._mmtrace_figures = True


@dataclass(repr=False)
class Result:
    """The common part: the record, its figure, its table and `save`."""

    record: dict[str, Any]

    def to_frame(self):  # pragma: no cover - every result defines its table
        raise NotImplementedError

    def _draw(self):  # pragma: no cover - every result defines its figure
        raise NotImplementedError

    def plot(self):
        """The result's figure (a matplotlib Figure; shown inline when returned in Jupyter)."""
        from mmtrace.report.style import style_context

        _shown_inline()
        with style_context():
            return self._draw()

    def save(self, path: str | Path) -> Path:
        """Write the result to `path`, its format by the extension: .json (the record), .csv
        or .tsv (`to_frame()`), .png, .pdf or .svg (`plot()`); the folder is created."""
        from mmtrace.io import write_json

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in SAVE_SUFFIXES:
            raise ValueError(f"{path}: give one of {', '.join(SAVE_SUFFIXES)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".json":
            write_json(path, self.record)
        elif suffix in TABLE_SUFFIXES:
            self.to_frame().to_csv(path, sep=TABLE_SUFFIXES[suffix], index=False)
        else:
            from mmtrace.report.style import save_one

            save_one(self.plot(), path)
        return path


@dataclass(repr=False)
class TraceResult(Result):
    """A causal trace (MultiModalCausalTrace, docs/method.md §4): `ie[kind]` is a positions x
    layers matrix of indirect effects p_restored - p_corr, positions from the last visual token
    (`tokens`, `roles`, `positions`: absolute indices into the model's input)."""

    @property
    def ie(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=float) for k, v in self.record["ie"].items()}

    tokens = property(lambda self: list(self.record["tokens"]))
    roles = property(lambda self: list(self.record["roles"]))
    positions = property(lambda self: list(self.record["positions"]))
    layers = property(lambda self: list(self.record["layers"]))
    answer = property(lambda self: self.record["answer"])
    p_clean = property(lambda self: float(self.record["p_clean"]))
    p_corr = property(lambda self: float(self.record["p_corr"]))
    window = property(lambda self: int(self.record["window"]))

    def peak(self, kind: str) -> tuple[str, int, float]:
        """(token, layer, IE) of the largest indirect effect of `kind`."""
        ie = self.ie[kind]
        i, j = np.unravel_index(int(np.argmax(ie)), ie.shape)
        return self.tokens[i], self.layers[j], float(ie[i, j])

    def to_frame(self):
        """One row per kind, position and layer: kind, window, position, token, role, layer,
        ie."""
        import pandas as pd

        rows = [
            (kind, self.window, pos, tok, role, layer, float(ie[i, j]))
            for kind, ie in self.ie.items()
            for i, (pos, tok, role) in enumerate(
                zip(self.positions, self.tokens, self.roles, strict=True)
            )
            for j, layer in enumerate(self.layers)
        ]
        cols = ["kind", "window", "position", "token", "role", "layer", "ie"]
        return pd.DataFrame(rows, columns=cols)

    def _draw(self):
        from mmtrace.report.questions import draw_trace

        return draw_trace(self.record)

    def __repr__(self) -> str:
        peaks = ", ".join(
            f"{k} {self.peak(k)[2]:.3f} at {self.peak(k)[0]!r} layer {self.peak(k)[1]}"
            for k in self.ie
        )
        return (
            f"TraceResult(answer={self.answer!r}, p_clean={self.p_clean:.3f}, "
            f"p_corr={self.p_corr:.3f}, window={self.window}; peak IE: {peaks})"
        )


@dataclass(repr=False)
class ContributionsResult(Result):
    """Attention contributions (Eq. 1, docs/method.md §5): `to_last` [layers x tokens], every
    token's contribution to the last token; `constraint_to_last` [layers], the constraint's
    (reduced over its tokens); `visual_to_constraint` [visual tokens] at `visual_layer`."""

    image: Any = field(default=None, compare=False)

    to_last = property(lambda self: np.asarray(self.record["to_last"], dtype=float))
    constraint_to_last = property(
        lambda self: np.asarray(self.record["constraint_to_last"], dtype=float)
    )
    predicted = property(lambda self: self.record["predicted"])
    confidence = property(lambda self: float(self.record["confidence"]))
    concentration = property(lambda self: self.record.get("concentration"))

    @property
    def visual_to_constraint(self) -> np.ndarray | None:
        v = self.record.get("visual_to_constraint")
        return None if v is None else np.asarray(v, dtype=float)

    def to_frame(self, which: Literal["to_last", "visual"] = "to_last"):
        """`to_last`: one row per layer and token (layer, position, token, constraint, visual,
        contribution); `visual`: one row per visual token (index, position, contribution)."""
        import pandas as pd

        r = self.record
        if which == "visual":
            v = self.visual_to_constraint
            if v is None:
                raise ValueError("a text-only model has no visual tokens")
            return pd.DataFrame(
                {"index": range(v.size), "position": r["image_positions"], "contribution": v}
            )
        constraint, visual = set(r["constraint_positions"]), set(r["image_positions"])
        rows = [
            (layer, pos, tok, pos in constraint, pos in visual, float(value))
            for layer, row in enumerate(self.to_last)
            for pos, (tok, value) in enumerate(zip(r["tokens"], row, strict=True))
        ]
        cols = ["layer", "position", "token", "constraint", "visual", "contribution"]
        return pd.DataFrame(rows, columns=cols)

    def _draw(self):
        from mmtrace.report.questions import draw_contributions

        return draw_contributions(self.record, self.image)

    def __repr__(self) -> str:
        peak = int(np.argmax(self.constraint_to_last))
        conc = self.concentration
        return (
            f"ContributionsResult(predicted={self.predicted!r}, p={self.confidence:.3f}; "
            f"constraint -> last token peaks at layer {peak}"
            + (f"; top visual tokens hold {conc:.3f}" if conc is not None else "")
            + ")"
        )


@dataclass(repr=False)
class AblationResult(Result):
    """Visual-token knockouts (docs/method.md §6): for each way (`block`, `mean`), ranking
    (`top`, `random`, `bottom`) and k, p(answer) and whether the answer is still the top-1."""

    p_clean = property(lambda self: float(self.record["p_clean"]))
    ks = property(lambda self: list(self.record["ks"]))

    def p(self, way: str, ranking: str) -> np.ndarray:
        """p(answer) per k for one way and ranking (random: averaged over its draws)."""
        return np.asarray(self.record[way][ranking]["p"], dtype=float)

    def to_frame(self):
        """One row per way, ranking and k: way, ranking, k, p_answer, correct and
        drop_p_answer (the clean p(answer) minus p_answer)."""
        import pandas as pd

        rows = [
            (way, ranking, k, p, ok, self.p_clean - p)
            for way in self.record["ways"]
            for ranking, values in self.record[way].items()
            for k, p, ok in zip(self.ks, values["p"], values["correct"], strict=True)
        ]
        cols = ["way", "ranking", "k", "p_answer", "correct", "drop_p_answer"]
        return pd.DataFrame(rows, columns=cols)

    def _draw(self):
        from mmtrace.report.questions import draw_ablation

        return draw_ablation(self.record)

    def __repr__(self) -> str:
        # the largest k below every visual token (at k = all, every ranking is the same)
        below = [j for j, k in enumerate(self.ks) if k < self.record["n_visual"]]
        i = below[-1] if below else len(self.ks) - 1
        parts = [
            f"{way} k={self.ks[i]}: top {self.p(way, 'top')[i]:.3f} / random "
            f"{self.p(way, 'random')[i]:.3f} / bottom {self.p(way, 'bottom')[i]:.3f}"
            for way in self.record["ways"]
        ]
        return f"AblationResult(p_clean={self.p_clean:.3f}; p(answer) " + "; ".join(parts) + ")"


@dataclass(repr=False)
class EditResult(Result):
    """An applied edit (MultEdit or a fine-tuning baseline, docs/method.md §7): `metrics`
    holds p(target) before and after on the edited prompt (efficacy), on paraphrases
    (generalisation) and the accuracy on unrelated questions (specificity), where given. The
    edit stays applied until `undo()` (or the end of a `with` block)."""

    handle: Any = field(default=None, compare=False)

    efficacy = property(lambda self: self.record["metrics"]["efficacy"]["after"])
    metrics = property(lambda self: self.record["metrics"])

    def undo(self) -> None:
        """Restore the edited weight bit for bit."""
        self.handle.undo()

    @property
    def undone(self) -> bool:
        return bool(self.handle.undone())

    def __enter__(self) -> EditResult:
        return self

    def __exit__(self, *exc) -> None:
        self.undo()

    def to_frame(self):
        """One row per metric: metric, before, after, change."""
        import pandas as pd

        rows = [
            (m, v["before"], v["after"], None if v["after"] is None else v["after"] - v["before"])
            for m, v in self.metrics.items()
        ]
        return pd.DataFrame(rows, columns=["metric", "before", "after", "change"])

    def _draw(self):
        from mmtrace.report.questions import draw_edit

        return draw_edit(self.record)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{m} {v['before']:.3f} -> {v['after']:.3f}"
            for m, v in self.metrics.items()
            if v["after"] is not None
        )
        return f"EditResult({self.record['method']} at layer {self.record['layer']}: {shown})"
