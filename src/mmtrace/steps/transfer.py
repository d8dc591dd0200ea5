"""rules/transfer.smk: information transfer (Eq. 1 attention contributions, docs/method.md §5)
and the visual-token ablation, per model, split and shard; their summaries and figures."""

from __future__ import annotations

import logging
from pathlib import Path

from mmtrace import config
from mmtrace.dataset import load_questions
from mmtrace.io import read_json, write_json
from mmtrace.steps.common import model_job, read_scores, shard_of, templates_for

log = logging.getLogger(__name__)


def attention_shard(
    *,
    model: str,
    checkpoint: Path,
    spec: dict,
    csvs: list[Path],
    scores: Path,
    prompts: dict,
    attention: dict,
    shard: int,
    threads: int,
    contributions: list[Path],
) -> None:
    """Eq. 1 contributions for one shard of each analysed split (Figs. 5 and 15-17), the model
    loaded once."""
    from mmtrace.transfer import study

    settings = config.Attention(**attention)
    loaded = model_job(model, checkpoint, spec, threads)
    answers = read_scores(scores)
    for csv, out in zip(csvs, contributions, strict=True):
        records = study.eligible(load_questions([csv]), loaded.is_multimodal)
        records = shard_of(records, shard, settings.shards, settings.max_questions)
        result = study.attention_records(
            loaded, records, answers, templates_for(loaded, prompts), csv.parent, settings
        )
        write_json(out, {"model": model, "split": csv.stem, "shard": shard, **result})


def attention_summary(*, shards: list[Path], attention: dict, seed: int, summary: Path) -> None:
    """Concentration, consistency, correct vs incorrect per layer and the AUROCs, per model."""
    from mmtrace.transfer.study import summarise_attention

    result = summarise_attention(
        [read_json(p) for p in shards], config.Attention(**attention), seed
    )
    for model, entry in result.items():
        for split, e in entry["splits"].items():
            f = e["failure_prediction"]
            v = e.get("visual", {}).get("concentration")
            log.info(
                "%s %s: n=%d%s; AUROC %s",
                model,
                split,
                e["n"],
                f"; top-share concentration {v['mean']:.3f} (uniform {v['uniform']:.3f})"
                if v
                else "",
                f["skipped"]
                if "skipped" in f
                else f"contribution {f['contribution']['auroc']:.3f} vs confidence "
                f"{f['confidence']['auroc']:.3f} (DeLong p={f['difference']['delong_p']:.3g})",
            )
    write_json(summary, result)


def ablation_shard(
    *,
    model: str,
    checkpoint: Path,
    spec: dict,
    csvs: list[Path],
    scores: Path,
    prompts: dict,
    attention: dict,
    ablation: dict,
    seed: int,
    shard: int,
    threads: int,
    knockouts: list[Path],
) -> None:
    """Visual-token ablation for one shard of each analysed split: top-k vs random-k vs
    bottom-k (and the object's mask), the model loaded once."""
    from mmtrace.transfer import study

    settings = config.Ablation(**ablation)
    loaded = model_job(model, checkpoint, spec, threads)
    answers = read_scores(scores)
    for csv, out in zip(csvs, knockouts, strict=True):
        everything = load_questions([csv])
        result = study.ablation_records(
            loaded,
            shard_of(everything, shard, settings.shards, settings.max_questions),
            answers,
            templates_for(loaded, prompts),
            csv.parent,
            config.Attention(**attention),
            settings,
            study.mean_image_files(everything, csv.parent, settings.mean_images),
            seed,
        )
        write_json(out, {"model": model, "split": csv.stem, "shard": shard, **result})


def ablation_summary(*, shards: list[Path], summary: Path) -> None:
    """The drop in p(answer) and accuracy per k and ranking, with intervals and tests."""
    from mmtrace.transfer.study import summarise_ablation

    result = summarise_ablation([read_json(p) for p in shards])
    for model, entry in result.items():
        for way in entry["ways"]:
            g = entry["splits"]["all"].get(way)
            if g:
                log.info(
                    "%s %s (all splits, n=%d): drop in p(answer) at k=%s: top %s, random %s, "
                    "bottom %s",
                    model,
                    way,
                    g["n"],
                    g["k"],
                    [round(x, 3) for x in g["top"]["drop_p_answer"]],
                    [round(x, 3) for x in g["random"]["drop_p_answer"]],
                    [round(x, 3) for x in g["bottom"]["drop_p_answer"]],
                )
    write_json(summary, result)


def fig_transfer_mllm(
    *,
    attention: Path,
    ablation: Path,
    examples: list[Path],
    csvs: list[Path],
    model: str,
    alpha: float,
    visual: Path,
    constraint: Path,
    roc: Path,
    knockouts: Path,
) -> None:
    """An MLLM's information-transfer figures in one job: Fig. 5 (visual tokens -> visual
    constraint, with one question per split over its image), Figs. 15-16 and 17 (constraint ->
    last token) and the ablation curves, their stars at the claims' `alpha` (Holm)."""
    from mmtrace.report import transfer

    contributions = read_json(attention)
    shown = fig5_examples(examples, csvs)
    transfer.fig_visual(contributions, model, visual.with_suffix(""), shown)
    transfer.fig_constraint_to_last(contributions, model, constraint.with_suffix(""), alpha)
    transfer.fig_failure(contributions, model, roc.with_suffix(""))
    transfer.fig_ablation(read_json(ablation), model, knockouts.with_suffix(""), alpha)


def fig5_examples(shards: list[Path], csvs: list[Path]) -> dict:
    """Per split, Fig. 5's example: the first question (by qid) of the split's first attention
    shard whose visual tokens contribute to the constraint, with its image: {split: (qid,
    image, contributions)}."""
    from PIL import Image  # not mmtrace.models: a figure job loads no torch

    images = {r.qid: csv.parent / r.image_url for csv in csvs for r in load_questions([csv])}
    out = {}
    for shard in shards:
        found = read_json(shard)
        rows = sorted(
            (r for r in found["records"] if sum(r.get("visual_to_constraint") or [])),
            key=lambda r: r["qid"],
        )
        if rows:
            qid = rows[0]["qid"]
            with Image.open(images[qid]) as im:
                image = im.convert("RGB")
            out[found["split"]] = (qid, image, rows[0]["visual_to_constraint"])
    return out


def fig_transfer_llm(
    *, attention: Path, model: str, alpha: float, constraint: Path, roc: Path
) -> None:
    """An LLM's information-transfer figures (no image): Figs. 15-16 and 17."""
    from mmtrace.report import transfer

    contributions = read_json(attention)
    transfer.fig_constraint_to_last(contributions, model, constraint.with_suffix(""), alpha)
    transfer.fig_failure(contributions, model, roc.with_suffix(""))


def route_diagnostics(
    *,
    model: str,
    checkpoint: Path,
    spec: dict,
    csvs: list[Path],
    world: Path,
    scores: Path,
    prompts: dict,
    routes: dict,
    seed: int,
    threads: int,
    diagnostics: Path,
) -> None:
    """Which route the image takes to the answer: knockouts of the last token's and the
    constraint's attention to the image, and probes of the entity's identity per layer."""
    from mmtrace.logs import progress
    from mmtrace.models.encoding import encode_record
    from mmtrace.models.scoring import first_answer_token
    from mmtrace.transfer import routes as diag

    settings = config.Routes(**routes)
    loaded = model_job(model, checkpoint, spec, threads)
    attrs = {e["id"]: e["attrs"] for e in read_json(world)["entities"]}
    scored = read_scores(scores)
    chosen = []
    for csv in csvs:
        ok = [
            r
            for r in load_questions([csv])
            if r.constraint_type == "single" and scored.get(r.qid, {}).get("correct")
        ]
        chosen += ok[: settings.max_questions]
    rows, features, labels = [], {"constraint_last": [], "last_token": []}, {}
    for rec in progress(chosen, desc=f"routes {model}"):
        enc = encode_record(loaded, rec, templates_for(loaded, prompts), csvs[0].parent)
        gold = sorted({first_answer_token(loaded.tokenizer, enc.prompt, a) for a in rec.answers})
        rows.append({"qid": rec.qid, **diag.knockouts(loaded, enc, gold)})
        for role, h in diag.hidden_at(loaded, enc).items():
            features[role].append(h)
        for a in diag.ATTRIBUTES:
            labels.setdefault(a, []).append(attrs[rec.entity_id][a])
    result = diag.summarise(rows, features, labels, settings.folds, settings.ridge, seed)
    k = result["knockout"]
    log.info(
        "%s routes (n=%d): accuracy clean %s, last token blocked %s, constraint blocked %s",
        model,
        result["n"],
        k["clean"]["accuracy"],
        k["last_token_blocked"]["accuracy"],
        k["constraint_blocked"]["accuracy"],
    )
    write_json(diagnostics, {"model": model, **result, "records": rows})


def fig_routes(*, diagnostics: Path, pdf: Path) -> None:
    """The route diagnostics of one model: knockout accuracies and probe accuracies by layer."""
    from mmtrace.report.transfer import fig_routes as draw

    draw(read_json(diagnostics), pdf.with_suffix(""))
