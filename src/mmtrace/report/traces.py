"""Causal-trace figures (Figs. 1, 3, 4/12 and per-question heatmaps), from trace records.

A trace record is what `mmtrace.tracing.question.run` writes: `ie[kind]` is a positions x layers
matrix of indirect effects, `roles` names each traced position's role (see
`mmtrace.tracing.corruption.ROLES`). Averages over questions first average each question's
positions of a role, then take the mean over questions with a 95% t-interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mmtrace.report.style import (
    SPLIT_ORDER,
    apply_style,
    empty_figure,
    save_figure,
    split_label,
)
from mmtrace.stats import mean_ci
from mmtrace.tracing.roles import ROLE_LABELS, ROLES
from mmtrace.tracing.study import constraint_curve, role_means

KIND_LABELS = {"hidden": "hidden state", "mlp": "MLP", "attn": "self-attention"}
KIND_CMAPS = {"hidden": "Purples", "mlp": "Greens", "attn": "Reds"}
KIND_COLOURS = {"hidden": "#6a3d9a", "mlp": "#2a7a2a", "attn": "#c0392b"}


def _kinds(trace: dict) -> list[str]:
    """The trace's kinds in ROME's order (JSON files store them sorted by name)."""
    return [k for k in KIND_LABELS if k in trace["ie"]] + [
        k for k in trace["ie"] if k not in KIND_LABELS
    ]


def _window_label(trace: dict) -> str:
    return f"window {trace['window']} ({trace['window_style']})"


def token_label(token: str, role: str) -> str:
    text = token.replace("Ġ", " ").replace("▁", " ").replace("\n", "\\n").replace("Ċ", "\\n")
    return f"{text}*" if role in ("first", "middle", "last") else text


def draw_heatmap(ax, trace: dict, kind: str, colorbar: bool = True) -> None:
    """One question's IE heatmap, tokens down, layers across; constraint tokens starred."""
    ie = np.asarray(trace["ie"][kind], dtype=float)
    vmax = max(float(np.abs(ie).max()), 1e-6)
    im = ax.imshow(ie, aspect="auto", cmap=KIND_CMAPS.get(kind, "viridis"), vmin=0, vmax=vmax)
    labels = [token_label(t, r) for t, r in zip(trace["tokens"], trace["roles"], strict=True)]
    ax.set_yticks(range(len(labels)), labels)
    layers = trace["layers"]
    step = max(1, len(layers) // 8)
    ax.set_xticks(range(0, len(layers), step), [str(v) for v in layers[::step]])
    ax.set_xlabel("layer")
    ax.set_title(f"{KIND_LABELS.get(kind, kind)}, {_window_label(trace)}")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.05, pad=0.02, label="IE")


def plot_trace(trace: dict, stem: str | Path) -> list[Path]:
    """Heatmaps of one traced question, one panel per kind (the CLI's `--plot`)."""
    apply_style()
    kinds = _kinds(trace)
    n_tok = len(trace["tokens"])
    fig = Figure(figsize=(3.0 * len(kinds), 0.6 + 0.16 * n_tok))
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    for ax, kind in zip(axes, kinds, strict=True):
        draw_heatmap(ax, trace, kind)
    fig.suptitle(
        f"p_clean={trace['p_clean']:.3f}  p_corr={trace['p_corr']:.3f}  answer {trace['answer']!r}"
    )
    return save_figure(fig, stem)


def _select(traces: Sequence[dict], setting: str, window: int | None = None) -> list[dict]:
    return [
        t for t in traces if t["setting"] == setting and (window is None or t["window"] == window)
    ]


def _roles_present(traces: Sequence[dict]) -> list[str]:
    present = {r for t in traces for r in t["roles"]}
    return [r for r in ROLES if r in present]


def role_matrix(traces: Sequence[dict], kind: str) -> tuple[list[str], np.ndarray, list[int]]:
    """(roles, mean IE [roles x layers], questions per role) over the traces."""
    roles = _roles_present(traces)
    means = [role_means(t, kind, roles) for t in traces]
    rows, counts = [], []
    for role in roles:
        vals = [m[role] for m in means if role in m]
        counts.append(len(vals))
        rows.append(np.mean(vals, axis=0))
    return roles, np.asarray(rows), counts


def fig_average(
    traces: Sequence[dict], setting: str, window: int, kinds: Sequence[str], model: str, stem
) -> list[Path]:
    """Per split: mean IE by token role and layer for each kind, and the IE at the corrupted
    constraint's tokens per layer with 95% CIs (Fig. 3 for `single`, Figs. 4/12 for `multi`)."""
    apply_style()
    chosen = _select(traces, setting, window)
    splits = [s for s in SPLIT_ORDER if any(t["split"] == s for t in chosen)]
    if not splits:
        return empty_figure(
            stem, f"{model}: no {setting}-constraint question passed the tracing filter"
        )
    fig = Figure(figsize=(2.6 * (len(kinds) + 1), 0.4 + 2.0 * len(splits)))
    axes = fig.subplots(len(splits), len(kinds) + 1, squeeze=False)
    for row, split in zip(axes, splits, strict=True):
        ts = [t for t in chosen if t["split"] == split]
        for ax, kind in zip(row[:-1], kinds, strict=True):
            roles, mat, counts = role_matrix(ts, kind)
            vmax = max(float(np.abs(mat).max()), 1e-6)
            im = ax.imshow(mat, aspect="auto", cmap=KIND_CMAPS.get(kind), vmin=0, vmax=vmax)
            ax.set_yticks(
                range(len(roles)),
                [f"{ROLE_LABELS[r]} ({c})" for r, c in zip(roles, counts, strict=True)],
            )
            layers = ts[0]["layers"]
            step = max(1, len(layers) // 8)
            ax.set_xticks(range(0, len(layers), step), [str(v) for v in layers[::step]])
            ax.set_xlabel("layer")
            ax.set_title(f"{split_label(split)}: {KIND_LABELS.get(kind, kind)} (n={len(ts)})")
            fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02, label="mean IE")
        ax = row[-1]
        for kind in kinds:
            mean, half = mean_ci(np.stack([constraint_curve(t, kind) for t in ts]))
            layers = np.asarray(ts[0]["layers"])
            ax.plot(layers, mean, color=KIND_COLOURS.get(kind), label=KIND_LABELS.get(kind, kind))
            ax.fill_between(
                layers, mean - half, mean + half, color=KIND_COLOURS.get(kind), alpha=0.2
            )
        ax.set_xlabel("layer")
        ax.set_ylabel("IE at constraint tokens")
        ax.set_title(f"{split_label(split)}: mean with 95% CI")
        ax.legend()
    constraint = "visual" if setting == "single" else "textual"
    fig.suptitle(
        f"{model}: {setting}-constraint questions, corrupted at the {constraint} constraint, "
        f"window {window} ({chosen[0]['window_style']})"
    )
    fig.tight_layout()
    return save_figure(fig, stem)


def fig_examples(
    traces: Sequence[dict],
    setting: str,
    window: int,
    kinds: Sequence[str],
    k: int,
    model: str,
    stem,
) -> list[Path]:
    """Per-question heatmaps: the first `k` traced questions (by qid) of each split."""
    apply_style()
    chosen = _select(traces, setting, window)
    picked: list[dict] = []
    for split in SPLIT_ORDER:
        picked += sorted((t for t in chosen if t["split"] == split), key=lambda t: t["qid"])[:k]
    if not picked:
        return empty_figure(
            stem, f"{model}: no {setting}-constraint question passed the tracing filter"
        )
    n_tok = max((len(t["tokens"]) for t in picked), default=1)
    fig = Figure(figsize=(3.0 * len(kinds), (0.9 + 0.13 * n_tok) * len(picked)))
    axes = fig.subplots(len(picked), len(kinds), squeeze=False)
    for row, t in zip(axes, picked, strict=True):
        for ax, kind in zip(row, kinds, strict=True):
            draw_heatmap(ax, t, kind)
        row[0].set_ylabel(f"{split_label(t['split'])} {t['qid']}\nanswer {t['answer']!r}")
    fig.suptitle(f"{model}: example traces ({setting}-constraint, window {window})")
    fig.tight_layout()
    return save_figure(fig, stem)


def fig_mllm_vs_llm(
    mllm: Sequence[dict], llm: Sequence[dict], mllm_name: str, llm_name: str, stem
) -> list[Path]:
    """Fig. 1: one question traced in the MLLM (image) and in its LLM (the entity named in
    words), side by side, every kind. The question is the first (by split order, then qid)
    that both models traced."""
    apply_style()
    llm_by_qid = {t["qid"]: t for t in llm}
    pairs = sorted(
        ((t, llm_by_qid[t["qid"]]) for t in mllm if t["qid"] in llm_by_qid),
        key=lambda p: (SPLIT_ORDER.index(p[0]["split"]), p[0]["qid"]),
    )
    if not pairs:
        return empty_figure(stem, f"no question was traced in both {mllm_name} and {llm_name}")
    kinds = _kinds(pairs[0][0])
    a, b = pairs[0]
    n_tok = max(len(a["tokens"]), len(b["tokens"]))
    fig = Figure(figsize=(3.0 * len(kinds), 2 * (0.9 + 0.14 * n_tok)))
    axes = fig.subplots(2, len(kinds), squeeze=False)
    for row, t, name in ((axes[0], a, mllm_name), (axes[1], b, llm_name)):
        for ax, kind in zip(row, kinds, strict=True):
            draw_heatmap(ax, t, kind)
        row[0].set_ylabel(
            f"{name}\np_clean={t['p_clean']:.2f} p_corr={t['p_corr']:.2f}\nanswer {t['answer']!r}"
        )
    fig.suptitle(f"{a['qid']}: {mllm_name} (image) vs {llm_name} (text)")
    fig.tight_layout()
    return save_figure(fig, stem)
