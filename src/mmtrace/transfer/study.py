"""Information transfer over a split's questions, and the summaries behind Figs. 5, 15-17 and the
visual-token ablation (docs/method.md §5 and §6).

Per question (`attention_records`), one eager forward pass gives Eq. 1 at every layer for two
targets: the last token (reading the question's constraint, Figs. 15-17) and the visual
constraint's last token (reading the visual tokens at `attention.visual_layer`, Fig. 5). The
constraint is the question's visual constraint (for a text LLM, the entity's name in its place);
its tokens are combined per layer by `attention.reduce`. Correctness and confidence come from the
evaluation's scores, so every analysis agrees with the accuracy table.

Per question (`ablation_records`, MLLMs only), the visual tokens ranked by that Fig. 5
contribution are knocked out (`mmtrace.transfer.ablation`).

F3b and F4 compare correct with incorrect answers, so their power is set by the errors. Where the
hard split exists (the toy world's F3b/F4 evaluation set, `mmtrace.toyworld.generate`), they read
it; elsewhere the analysed splits pooled ("all"). `summarise_attention` records which under
`correctness_split`; the hard split never enters "all", so Fig. 5 and the pooled curves stay the
analysed splits'.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from mmtrace import config, prompts
from mmtrace.dataset import QuestionRecord
from mmtrace.logs import progress
from mmtrace.models.encoding import AlignmentError, EncodedQuestion, encode_record
from mmtrace.models.loading import LoadedModel, load_image
from mmtrace.models.lookup import locate
from mmtrace.models.scoring import first_answer_token
from mmtrace.seeding import derive
from mmtrace.stats import greater_than_zero, holm, mean_ci, paired_greater, two_sample
from mmtrace.toyworld.generate import HARD_SPLIT
from mmtrace.toyworld.images import patch_coverage
from mmtrace.transfer import ablation, failure, visual
from mmtrace.transfer.contributions import attention_contributions

log = logging.getLogger(__name__)

REDUCERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "max": lambda m: m.max(axis=-1),
    "sum": lambda m: m.sum(axis=-1),
    "mean": lambda m: m.mean(axis=-1),
}


def eligible(records: list[QuestionRecord], multimodal: bool) -> list[QuestionRecord]:
    """An MLLM answers every question; a text LLM the textual counterparts of single-constraint
    questions (as in tracing)."""
    return records if multimodal else [r for r in records if r.constraint_type == "single"]


def contributions_of(
    loaded: LoadedModel, enc: EncodedQuestion, cfg: config.Attention, full: bool = False
) -> dict:
    """Constraint -> last token per layer (reduced over the constraint's tokens), and for an
    MLLM the visual tokens -> visual constraint at `cfg.visual_layer`; one forward pass.
    `full` adds `to_last`, every token's contribution to the last token per layer."""
    constraint = enc.span_positions.get("visual")
    if not constraint:
        raise ValueError(f"question {enc.qid}: no visual constraint (entity) span")
    last = len(enc.input_ids) - 1
    targets = [last] + ([visual.target(enc)] if enc.image_positions else [])
    n_layers = len(locate(loaded.model))
    if not 0 <= cfg.visual_layer < n_layers:
        raise ValueError(f"attention.visual_layer {cfg.visual_layer} not in [0, {n_layers})")
    contrib = attention_contributions(loaded.model, enc.inputs, targets=targets)
    contrib = contrib.double().cpu().numpy()  # [layers, targets, seq]
    out = {
        "constraint_to_last": REDUCERS[cfg.reduce](contrib[:, 0, constraint]).tolist(),
        "n_constraint_tokens": len(constraint),
    }
    if enc.image_positions:
        out["visual_to_constraint"] = contrib[cfg.visual_layer, 1, enc.image_positions].tolist()
    if full:
        out["to_last"] = contrib[:, 0, :].tolist()
    return out


def attention_records(
    loaded: LoadedModel,
    records: list[QuestionRecord],
    scores: dict[str, dict],
    templates: config.Prompts,
    data_dir: Path,
    cfg: config.Attention,
) -> dict:
    """Eq. 1 contributions of every eligible question; {records, excluded: {reason: n}}."""
    rows, excluded = [], Counter()
    for rec in progress(records, desc=f"attention {loaded.name}"):
        if rec.qid not in scores:
            raise KeyError(f"question {rec.qid} has no evaluation score (stale scores file?)")
        try:
            enc = encode_record(loaded, rec, templates, data_dir)
        except AlignmentError as exc:
            log.warning("excluded: %s", exc)
            excluded["constraint not aligned to tokens"] += 1
            continue
        s = scores[rec.qid]
        rows.append(
            {
                "qid": rec.qid,
                "split": rec.split,
                "constraint_type": rec.constraint_type,
                "correct": bool(s["correct"]),
                "p_answer": float(s["p_answer"]),
                "confidence": float(s["confidence"]),
                **contributions_of(loaded, enc, cfg),
            }
        )
    log.info("%s: %d questions, excluded %s", loaded.name, len(rows), dict(excluded))
    return {"records": rows, "excluded": dict(sorted(excluded.items()))}


def _ci(values: np.ndarray) -> tuple[list[float], list[list[float]]]:
    mean, half = mean_ci(values)
    mean, half = np.atleast_1d(mean), np.atleast_1d(half)
    return mean.tolist(), [[float(m - h), float(m + h)] for m, h in zip(mean, half, strict=True)]


def _visual_summary(rows: list[dict], cfg: config.Attention, seed: int) -> dict:
    """Concentration, mean share, top-k frequency and consistency of the visual tokens'
    contributions; questions whose visual tokens contribute nothing (the constraint reads no
    image, as in a route-cut control) have no shares and are counted apart."""
    silent = [r for r in rows if not sum(r["visual_to_constraint"])]
    rows = [r for r in rows if sum(r["visual_to_constraint"])]
    if not rows:
        return {"n": 0, "n_zero_contribution": len(silent)}
    matrix = np.array([r["visual_to_constraint"] for r in rows], dtype=np.float64)
    n_visual = matrix.shape[1]
    k = visual.top_count(cfg.top_share, n_visual)
    conc = np.array([visual.concentration(v, cfg.top_share) for v in matrix])
    mean, ci = _ci(conc)
    spread_mean, spread_ci = _ci(np.array([visual.spread(v, cfg.spread_mass) for v in matrix]))
    shares = matrix / matrix.sum(axis=1, keepdims=True)
    out = {
        "n": len(rows),
        "n_zero_contribution": len(silent),
        "n_visual": n_visual,
        "top_share": cfg.top_share,
        "k": k,
        "concentration": {
            "mean": mean[0],
            "ci95": ci[0],
            "uniform": k / n_visual,
            "ratio_to_uniform": mean[0] / (k / n_visual),
        },
        "spread": {"mass": cfg.spread_mass, "mean": spread_mean[0], "ci95": spread_ci[0]},
        "mean_share": shares.mean(axis=0).tolist(),
        "top_frequency": visual.top_share_by_position(matrix, cfg.top_share).tolist(),
    }
    if len(rows) >= 2:
        out["consistency"] = visual.consistency(matrix, k, cfg.n_perm, seed)
    return out


def _constraint_summary(rows: list[dict]) -> dict:
    out: dict = {}
    groups = {
        "correct": [r for r in rows if r["correct"]],
        "incorrect": [r for r in rows if not r["correct"]],
    }
    arrays = {}
    for name, rs in groups.items():
        arr = np.array([r["constraint_to_last"] for r in rs], dtype=np.float64)
        arrays[name] = arr
        if len(rs):
            mean, ci = _ci(arr)
            out[name] = {"n": len(rs), "mean": mean, "ci95": ci}
        else:
            out[name] = {"n": 0}
    n_layers = len(rows[0]["constraint_to_last"])
    out["p_value"] = [
        two_sample(arrays["correct"][:, layer], arrays["incorrect"][:, layer])
        if min(len(a) for a in arrays.values())
        else None
        for layer in range(n_layers)
    ]
    return out


def _failure(rows: list[dict], cfg: config.Attention, seed: int) -> dict:
    return failure.predict_correctness(
        np.array([r["constraint_to_last"] for r in rows], dtype=np.float64),
        np.array([r["confidence"] for r in rows]),
        np.array([r["correct"] for r in rows]),
        cfg.n_boot,
        seed,
        cfg.min_per_class,
    )


def correctness_split(splits: Iterable[str]) -> str:
    """The split F3b and F4 (Figs. 15-17) are judged on: the hard split where it was answered
    (enough errors for power, docs/method.md §5), else the analysed splits pooled ("all")."""
    return HARD_SPLIT if HARD_SPLIT in set(splits) else "all"


def summarise_attention(shards: list[dict], cfg: config.Attention, seed: int) -> dict:
    """Per model: per split and pooled ("all", the analysed splits only), Fig. 5's statistics
    (MLLMs), Figs. 15-16's constraint -> last-token curves with Mann-Whitney p per layer, and
    Fig. 17's analysis; `correctness_split` names the split F3b/F4 read."""
    by_model: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    excluded: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for shard in shards:
        by_model[shard["model"]][shard["split"]].extend(shard["records"])
        excluded[shard["model"]][shard["split"]].update(shard["excluded"])
    out: dict = {}
    for model, splits in sorted(by_model.items()):
        entry: dict = {"reduce": cfg.reduce, "visual_layer": cfg.visual_layer, "splits": {}}
        groups = {s: sorted(rs, key=lambda r: r["qid"]) for s, rs in sorted(splits.items())}
        groups["all"] = [r for s in sorted(splits) if s != HARD_SPLIT for r in groups[s]]
        for split, rows in groups.items():
            if not rows:
                continue
            e: dict = {
                "n": len(rows),
                "n_correct": sum(bool(r["correct"]) for r in rows),
                "n_incorrect": sum(not r["correct"] for r in rows),
                "constraint_to_last": _constraint_summary(rows),
                "failure_prediction": _failure(rows, cfg, derive(seed, "failure", model, split)),
            }
            if split != "all":
                e["excluded"] = dict(sorted(excluded[model][split].items()))
            if "visual_to_constraint" in rows[0] and split not in ("all", HARD_SPLIT):
                e["visual"] = _visual_summary(rows, cfg, derive(seed, "consistency", model, split))
            entry["splits"][split] = e
        entry["correctness_split"] = correctness_split(entry["splits"])
        out[model] = entry
    return out


def ablation_records(
    loaded: LoadedModel,
    records: list[QuestionRecord],
    scores: dict[str, dict],
    templates: config.Prompts,
    data_dir: Path,
    att: config.Attention,
    cfg: config.Ablation,
    mean_images: list[Path],
    seed: int,
) -> dict:
    """Knock out visual tokens of every eligible question (MLLM, single or multi-constraint)."""
    if not loaded.is_multimodal:
        raise ValueError(f"{loaded.name}: visual-token ablation needs a multimodal model")
    n_layers = len(locate(loaded.model))
    layers = list(range(min(cfg.block_layers, n_layers)))
    mean = None
    if "mean" in cfg.ways:
        prompt = prompts.build(templates.mllm, "").text
        mean = ablation.mean_visual_embeddings(
            loaded, prompt, [load_image(p) for p in mean_images], cfg.batch_size
        )
    rows, excluded = [], Counter()
    for rec in progress(records, desc=f"ablation {loaded.name}"):
        if cfg.only_correct and not scores.get(rec.qid, {}).get("correct", False):
            excluded["answered incorrectly"] += 1
            continue
        try:
            enc = encode_record(loaded, rec, templates, data_dir)
        except AlignmentError as exc:
            log.warning("excluded: %s", exc)
            excluded["constraint not aligned to tokens"] += 1
            continue
        contrib = visual.visual_to_constraint(loaded.model, enc, att.visual_layer)
        gold = sorted({first_answer_token(loaded.tokenizer, enc.prompt, a) for a in rec.answers})
        ks = ablation.ks_for(cfg.fractions, contrib.size)
        coverage = patch_coverage(data_dir / rec.image_url, math.isqrt(contrib.size))
        result = ablation.ablate_question(
            loaded,
            enc,
            gold,
            contrib,
            ks,
            cfg.ways,
            layers,
            mean,
            cfg.random_draws,
            ablation.question_seed(seed, rec.qid),
            cfg.batch_size,
            per_layer=cfg.per_layer,
            coverage=coverage,
        )
        rows.append({"qid": rec.qid, "split": rec.split, "n_visual": contrib.size, **result})
    log.info("%s: %d questions ablated, excluded %s", loaded.name, len(rows), dict(excluded))
    return {
        "ways": list(cfg.ways),
        "block_layers": layers,
        "mean_images": len(mean_images) if mean is not None else 0,
        "records": rows,
        "excluded": dict(sorted(excluded.items())),
    }


def _ablation_group(rows: list[dict], way: str) -> dict:
    ks = rows[0]["ks"]
    if any(r["ks"] != ks for r in rows):
        raise ValueError("questions were ablated with different k (different visual-token counts)")
    p0 = np.array([r["p_clean"] for r in rows])
    a0 = np.array([float(r["correct_clean"]) for r in rows])
    out: dict = {
        "k": ks,
        "n_visual": int(rows[0]["n_visual"]),
        "n": len(rows),
        "clean": {"p_answer": float(p0.mean()), "accuracy": float(a0.mean())},
    }
    drops = {}
    masked = all(ablation.MASK in r[way] for r in rows)
    for ranking in (*ablation.RANKINGS, ablation.MASK) if masked else ablation.RANKINGS:
        p = np.array([r[way][ranking]["p"] for r in rows])  # [questions, ks]
        acc = np.array([r[way][ranking]["correct"] for r in rows])
        drops[ranking] = p0[:, None] - p
        dp, dp_ci = _ci(drops[ranking])
        da, da_ci = _ci(a0[:, None] - acc)
        out[ranking] = {
            "p_answer": p.mean(axis=0).tolist(),
            "accuracy": acc.mean(axis=0).tolist(),
            "drop_p_answer": dp,
            "drop_p_answer_ci95": dp_ci,
            "drop_accuracy": da,
            "drop_accuracy_ci95": da_ci,
        }
    out["p_value_top_vs_random"] = [
        paired_greater(drops["top"][:, i], drops["random"][:, i]) for i in range(len(ks))
    ]
    out["p_value_top_vs_bottom"] = [
        paired_greater(drops["top"][:, i], drops["bottom"][:, i]) for i in range(len(ks))
    ]
    if masked:  # Eq. 1's ranking against the image's content (F3's baseline)
        out["p_value_top_vs_mask"] = [
            paired_greater(drops["top"][:, i], drops[ablation.MASK][:, i]) for i in range(len(ks))
        ]
        out["p_value_mask_vs_top"] = [
            paired_greater(drops[ablation.MASK][:, i], drops["top"][:, i]) for i in range(len(ks))
        ]
        out["mask_overlap"] = np.mean([r["mask_overlap"] for r in rows], axis=0).tolist()
    return out


def _per_layer_group(rows: list[dict], key: str = "per_layer") -> dict | None:
    """Every visual token blocked in one layer at a time (`per_layer`: from the visual
    constraint; `per_layer_all`: from every later token): the mean drop in p(answer) and
    accuracy per layer with 95% t-intervals, and Holm-adjusted one-sided Wilcoxon p-values of
    the drop in p(answer) being > 0."""
    rows = [r for r in rows if key in r]
    if not rows:
        return None
    p0 = np.array([r["p_clean"] for r in rows])
    a0 = np.array([float(r["correct_clean"]) for r in rows])
    dp = p0[:, None] - np.array([r[key]["p"] for r in rows])
    da = a0[:, None] - np.array([r[key]["correct"] for r in rows], dtype=float)
    mean_dp, ci_dp = _ci(dp)
    mean_da, ci_da = _ci(da)
    return {
        "n": len(rows),
        "drop_p_answer": mean_dp,
        "drop_p_answer_ci95": ci_dp,
        "drop_accuracy": mean_da,
        "drop_accuracy_ci95": ci_da,
        "p_holm_drop_positive": holm([greater_than_zero(dp[:, j]) for j in range(dp.shape[1])]),
    }


def summarise_ablation(shards: list[dict]) -> dict:
    """Per model, split (and "all" pooled) and way: clean p(answer) and accuracy, per k and
    ranking the mean drop in p(answer) and accuracy with 95% t-intervals, and one-sided
    Wilcoxon signed-rank p-values for top-k dropping more than random-k (and bottom-k)."""
    by_model: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    meta: dict[str, dict] = {}
    excluded: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for shard in shards:
        by_model[shard["model"]][shard["split"]].extend(shard["records"])
        excluded[shard["model"]][shard["split"]].update(shard["excluded"])
        meta[shard["model"]] = {
            "block_layers": shard["block_layers"],
            "mean_images": shard["mean_images"],
            "ways": shard["ways"],
        }
    out: dict = {}
    for model, splits in sorted(by_model.items()):
        groups = {s: sorted(rs, key=lambda r: r["qid"]) for s, rs in sorted(splits.items())}
        groups["all"] = [r for s in sorted(splits) for r in groups[s]]
        entry = {**meta[model], "splits": {}}
        for split, rows in groups.items():
            e: dict = {"n": len(rows)}
            if split != "all":
                e["excluded"] = dict(sorted(excluded[model][split].items()))
            if rows:
                for way in meta[model]["ways"]:
                    e[way] = _ablation_group(rows, way)
                for key in ("per_layer", "per_layer_all"):
                    curve = _per_layer_group(rows, key)
                    if curve:
                        e[key] = curve
            entry["splits"][split] = e
        out[model] = entry
    return out


def mean_image_files(records: Iterable[QuestionRecord], data_dir: Path, n: int) -> list[Path]:
    """The first n distinct images of the split in sorted order: the mean-ablation reference."""
    return [data_dir / u for u in sorted({r.image_url for r in records})[:n]]
