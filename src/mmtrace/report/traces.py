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
from mmtrace.tracing.roles import ROLE_LABELS, ROLES, constraint_curve

KIND_LABELS = {"hidden": "hidden state", "mlp": "MLP", "attn": "self-attention"}
KIND_COLOURS = {"hidden": "#6a3d9a", "mlp": "#2a7a2a", "attn": "#c0392b"}
# IE can be negative (a restoration that lowers p(answer)): a diverging map centred on 0, with
# one symmetric scale shared by every panel of a figure row, so colours compare across kinds.
CMAP = "RdBu_r"


def colour_limit(*matrices: np.ndarray) -> float:
    """The symmetric colour limit of a figure row: the largest |IE| of its panels."""
    return max([float(np.abs(m).max()) for m in matrices if m.size] + [1e-6])


def kinds_of(trace: dict) -> list[str]:
    """The trace's kinds in ROME's order (JSON files store them sorted by name)."""
    return [k for k in KIND_LABELS if k in trace["ie"]] + [
        k for k in trace["ie"] if k not in KIND_LABELS
    ]


def _window_label(trace: dict) -> str:
    return f"window {trace['window']} ({trace['window_style']})"


def token_label(token: str, role: str) -> str:
    text = token.replace("Ġ", " ").replace("▁", " ").replace("\n", "\\n").replace("Ċ", "\\n")
    return f"{text}*" if role in ("first", "middle", "last") else text


def draw_heatmap(
    ax,
    trace: dict,
    kind: str,
    colorbar: bool = True,
    vmax: float | None = None,
    tokens: bool = True,
) -> None:
    """One question's IE heatmap, tokens down, layers across; constraint tokens starred; a
    diverging scale symmetric about 0 (the figure's shared `vmax`, else this panel's). Token
    labels only where `tokens` (a row's first panel: the others show the same tokens, and
    laying out their text was most of a figure job's time)."""
    ie = np.asarray(trace["ie"][kind], dtype=float)
    vmax = colour_limit(ie) if vmax is None else vmax
    im = ax.imshow(ie, aspect="auto", cmap=CMAP, vmin=-vmax, vmax=vmax)
    labels = [token_label(t, r) for t, r in zip(trace["tokens"], trace["roles"], strict=True)]
    ax.set_yticks(range(len(labels)), labels if tokens else [])
    layers = trace["layers"]
    step = max(1, len(layers) // 8)
    ax.set_xticks(range(0, len(layers), step), [str(v) for v in layers[::step]])
    ax.set_xlabel("layer")
    ax.set_title(f"{KIND_LABELS.get(kind, kind)}, {_window_label(trace)}")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.05, pad=0.02, label="IE")


def _select(traces: Sequence[dict], setting: str, window: int | None = None) -> list[dict]:
    return [
        t for t in traces if t["setting"] == setting and (window is None or t["window"] == window)
    ]


def common_suffix(traces: Sequence[dict]) -> list[str]:
    """The prompt's fixed suffix: the longest run of tokens every trace ends with, stopping
    before any constraint token (e.g. "?", " Answer", ..., "ASSISTANT", ":")."""
    out: list[str] = []
    for i in range(1, min(len(t["tokens"]) for t in traces) + 1):
        tokens = {t["tokens"][-i] for t in traces}
        roles = {t["roles"][-i] for t in traces}
        if len(tokens) > 1 or roles & {"first", "middle", "last", "other_constraint"}:
            break
        out.insert(0, tokens.pop())
    return out


def row_keys(trace: dict, suffix: Sequence[str]) -> list[str]:
    """Each position's row in an average: its role, except the fixed suffix's tokens, which
    keep their own row each (aligned token by token, not pooled into "further tokens")."""
    keys = list(trace["roles"])
    for i in range(1, len(suffix) + 1):
        if keys[-i] != "last_token":
            keys[-i] = f"suffix:{len(suffix) - i}"
    return keys


def role_matrix(traces: Sequence[dict], kind: str) -> tuple[list[str], np.ndarray, list[int]]:
    """(row labels, mean IE [rows x layers], questions per row) over the traces: rows by role
    (ROME's average plots) and one row per token of the prompt's fixed suffix. When every trace
    has its embedding row, column 0 is layer -1 (the input embedding restored alone)."""
    suffix = common_suffix(traces)
    keyed = [(t, row_keys(t, suffix)) for t in traces]
    present = {k for _t, keys in keyed for k in keys}
    order = [r for r in ROLES if r != "last_token" and r in present]
    order += [f"suffix:{i}" for i in range(len(suffix)) if f"suffix:{i}" in present]
    order += ["last_token"] if "last_token" in present else []
    rows, counts = [], []
    with_embedding = all("ie_embedding" in t for t in traces)
    for key in order:
        vals = []
        for t, keys in keyed:
            idx = [i for i, k in enumerate(keys) if k == key]
            if idx:
                ie = np.asarray(t["ie"][kind], dtype=float)
                if with_embedding:  # layer -1: the input embedding restored alone
                    ie = np.hstack([np.asarray(t["ie_embedding"], dtype=float)[:, None], ie])
                vals.append(ie[idx].mean(axis=0))
        counts.append(len(vals))
        rows.append(np.mean(vals, axis=0))
    labels = [
        ROLE_LABELS[k] if k in ROLE_LABELS else f"suffix {token_label(suffix[int(k[7:])], '')!r}"
        for k in order
    ]
    return labels, np.asarray(rows), counts


def fig_average(
    traces: Sequence[dict], setting: str, window: int, kinds: Sequence[str], model: str, stem
) -> list[Path]:
    """Per split: mean IE by token role and layer for each kind, and the IE at the corrupted
    constraint's tokens per layer with 95% CIs (Fig. 3 for `single`, Figs. 4/12 for `multi`);
    one colour scale for every heatmap and one y range for every curve panel."""
    apply_style()
    chosen = _select(traces, setting, window)
    splits = [s for s in SPLIT_ORDER if any(t["split"] == s for t in chosen)]
    if not splits:
        return empty_figure(
            stem, f"{model}: no {setting}-constraint question passed the tracing filter"
        )
    fig = Figure(figsize=(2.6 * (len(kinds) + 1), 0.4 + 2.0 * len(splits)))
    axes = fig.subplots(len(splits), len(kinds) + 1, squeeze=False)
    for ax in axes[1:, -1]:  # one y range for every split's curves
        ax.sharey(axes[0, -1])
    by_split = {s: [t for t in chosen if t["split"] == s] for s in splits}
    matrices = {(s, kind): role_matrix(by_split[s], kind) for s in splits for kind in kinds}
    # one colour scale for the whole figure, so kinds and splits compare by colour
    vmax = colour_limit(*(m for _labels, m, _counts in matrices.values()))
    for row, split in zip(axes, splits, strict=True):
        ts = by_split[split]
        for ax, kind in zip(row[:-1], kinds, strict=True):
            labels, mat, counts = matrices[(split, kind)]
            im = ax.imshow(mat, aspect="auto", cmap=CMAP, vmin=-vmax, vmax=vmax)
            ax.set_yticks(
                range(len(labels)),
                [f"{label} ({c})" for label, c in zip(labels, counts, strict=True)],
            )
            layers = ts[0]["layers"]
            columns = (["emb"] if mat.shape[1] > len(layers) else []) + [str(v) for v in layers]
            step = max(1, len(columns) // 8)
            ax.set_xticks(range(0, len(columns), step), columns[::step])
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
            swapped = [
                t["image_swap"] for t in ts if t.get("image_swap", {}).get("window") == window
            ]
            if swapped:
                curves = [
                    constraint_curve({**t, "ie": t["image_swap"]["ie"]}, kind)
                    for t in ts
                    if t.get("image_swap", {}).get("window") == window
                ]
                ax.plot(
                    layers,
                    np.mean(curves, axis=0),
                    ls=":",
                    color=KIND_COLOURS.get(kind),
                    label=f"{KIND_LABELS.get(kind, kind)}, other image (n={len(curves)})",
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
    # one colour scale for the whole figure, so questions and splits compare by colour
    vmax = colour_limit(*(np.asarray(t["ie"][k], dtype=float) for t in picked for k in kinds))
    for row, t in zip(axes, picked, strict=True):
        for i, (ax, kind) in enumerate(zip(row, kinds, strict=True)):
            draw_heatmap(ax, t, kind, vmax=vmax, colorbar=i == len(kinds) - 1, tokens=i == 0)
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
    kinds = kinds_of(pairs[0][0])
    a, b = pairs[0]
    n_tok = max(len(a["tokens"]), len(b["tokens"]))
    fig = Figure(figsize=(3.0 * len(kinds), 2 * (0.9 + 0.14 * n_tok)))
    axes = fig.subplots(2, len(kinds), squeeze=False)
    # one scale for both models, so the MLLM's and the LLM's effects compare by colour
    vmax = colour_limit(
        *(np.asarray(t["ie"][k], dtype=float) for t in (a, b) for k in kinds if k in t["ie"])
    )
    for row, t, name in ((axes[0], a, mllm_name), (axes[1], b, llm_name)):
        for i, (ax, kind) in enumerate(zip(row, kinds, strict=True)):
            draw_heatmap(ax, t, kind, vmax=vmax, colorbar=i == len(kinds) - 1, tokens=i == 0)
        row[0].set_ylabel(
            f"{name}\np_clean={t['p_clean']:.2f} p_corr={t['p_corr']:.2f}\nanswer {t['answer']!r}"
        )
    fig.suptitle(f"{a['qid']}: {mllm_name} (image) vs {llm_name} (text)")
    fig.tight_layout()
    return save_figure(fig, stem)
