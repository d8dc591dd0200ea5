"""Editing scenarios on the toy world, the paper's metrics, and their summary (docs/method.md
§7, Fig. 6).

Scenarios, per MLLM:
- `error_correction`: questions of the analysed splits the model answers wrongly (from the
  evaluation's scores); the target is the gold answer;
- `long_tail`: single-constraint questions about the held-out entities, which no model saw in
  training; the target is the fact's answer.
Metrics of one edit (all higher is better):
- efficacy: p(target's first token) on the edited prompt;
- generalisation: mean p(target) over the question's paraphrases, with the same image;
- generalisation_renderings: mean p(target) of the edited question asked of `renderings` other
  renderings of the same entity (the images of its other questions): does the edit hold for the
  entity, or for one image?
- specificity: accuracy on `unrelated` questions about other entities (a fixed, seeded sample);
- specificity_p: mean p(answer) on the same unrelated questions (moves before accuracy does);
- specificity_neighbourhood: accuracy of the edited question's own text (same constraint phrase
  and relation) asked of `neighbours` other entities' images, on their answers: the edit must
  not rewrite the relation for every image;
- specificity_same_image: accuracy on the other questions about the same entity, asked of the
  edited question's image.
Each edit is applied alone and undone (checked bit for bit) before the next; the unedited model's
values on the same questions are recorded beside them.

F5 is decided on fronts, not at one arbitrary setting (`config.Tuning`): a seeded tuning split
of each scenario's cases runs every method at every setting of its own grid, each method's
setting is chosen there by a rule fixed in config, and only the held-out cases, edited at the
chosen settings, enter the comparison.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mmtrace import config, prompts
from mmtrace.config.analyses import VARIANT, variant_method
from mmtrace.dataset import QuestionRecord
from mmtrace.editing.baselines import FinetuneSettings, finetune
from mmtrace.editing.multedit import Edit, MultEditSettings, multedit
from mmtrace.logs import progress
from mmtrace.models.encoding import encode_record
from mmtrace.models.loading import LoadedModel, load_image
from mmtrace.models.scoring import first_answer_token, prepare_prompts, probs_of_prepared
from mmtrace.seeding import derive
from mmtrace.stats import mean_ci, two_sided_paired

log = logging.getLogger(__name__)

SCENARIOS = ("error_correction", "long_tail")
METHODS = ("multedit", "finetune", "finetune_constrained")
METRICS = (
    "efficacy",
    "generalisation",
    "generalisation_renderings",
    "specificity",
    "specificity_p",
    "specificity_neighbourhood",
    "specificity_same_image",
)
# An editing method: (model, prompt inputs, key position, target token id) -> the applied Edit.
Method = Callable[[torch.nn.Module, dict, int, int], Edit]


def cases(
    scenario: str, records: list[QuestionRecord], scores: dict[str, dict]
) -> list[QuestionRecord]:
    """The questions a scenario edits, in file order."""
    if scenario == "error_correction":
        return [r for r in records if r.qid in scores and not scores[r.qid]["correct"]]
    if scenario == "long_tail":
        return [r for r in records if r.held_out and r.constraint_type == "single"]
    raise ValueError(f"unknown editing scenario {scenario!r}; expected one of {SCENARIOS}")


@dataclass
class Probe:
    """Prompts scored after every edit, with their images and answer ids. Their encoding (image
    features included) is made once, on first use, and reused after every edit: the edited
    weights lie in the language model, after the vision tower and projector."""

    prompts: list[str]
    images: list
    ids: list[list[int]]  # acceptable first-token ids per prompt
    prepared: dict | None = field(default=None, repr=False, compare=False)


def _scores(loaded: LoadedModel, probe: Probe) -> tuple[np.ndarray, np.ndarray]:
    """(p of the acceptable ids, top-1 correct) per prompt, from one forward pass."""
    if not probe.prompts:
        return np.zeros(0), np.zeros(0)
    if probe.prepared is None:
        probe.prepared = prepare_prompts(loaded, probe.prompts, probe.images)
    probs = probs_of_prepared(loaded, probe.prepared).cpu()
    top = probs.argmax(-1).tolist()
    p = np.array([float(probs[i, ids].sum()) for i, ids in enumerate(probe.ids)])
    return p, np.array([float(t in ids) for t, ids in zip(top, probe.ids, strict=True)])


def _p(loaded: LoadedModel, probe: Probe) -> np.ndarray:
    return _scores(loaded, probe)[0]


def _accuracy(loaded: LoadedModel, probe: Probe) -> np.ndarray:
    return _scores(loaded, probe)[1]


def _gold(loaded: LoadedModel, prompt: str, answers: list[str]) -> list[int]:
    return sorted({first_answer_token(loaded.tokenizer, prompt, a) for a in answers})


def unrelated_probe(
    loaded: LoadedModel,
    pool: list[QuestionRecord],
    n: int,
    template: str,
    data_dir: Path,
    seed: int,
) -> tuple[Probe, list[str]]:
    """A fixed, seeded sample of n questions and their entities (an edit about entity e is
    scored on the sample minus e's questions, which are not unrelated to it)."""
    rng = np.random.default_rng(seed)
    chosen = [pool[i] for i in sorted(rng.choice(len(pool), min(n, len(pool)), replace=False))]
    texts = [prompts.build(template, r.question).text for r in chosen]
    probe = Probe(
        texts,
        [load_image(data_dir / r.image_url) for r in chosen],
        [_gold(loaded, p, r.answers) for p, r in zip(texts, chosen, strict=True)],
    )
    return probe, [r.entity_id for r in chosen]


def _subset(probe: Probe, keep: list[bool]) -> Probe:
    pick = [i for i, k in enumerate(keep) if k]
    return Probe(
        [probe.prompts[i] for i in pick],
        [probe.images[i] for i in pick],
        [probe.ids[i] for i in pick],
    )


def _probe(loaded: LoadedModel, texts: list[str], images: list, answers: list[list[str]]) -> Probe:
    return Probe(texts, images, [_gold(loaded, t, a) for t, a in zip(texts, answers, strict=True)])


def edit_case(
    loaded: LoadedModel,
    rec: QuestionRecord,
    siblings: list[QuestionRecord],
    unrelated: Probe,
    templates: config.Prompts,
    data_dir: Path,
    methods: dict[str, Method],
    neighbours: list[QuestionRecord] = (),
    renderings: list[QuestionRecord] = (),
) -> dict:
    """Apply each method's edit for one question, score it, undo it; one record.

    `siblings`: the entity's other questions (asked of this image); `neighbours`: other
    entities' questions with this question's text (asked of their own images); `renderings`:
    the entity's other questions, whose images are other renderings of it."""
    enc = encode_record(loaded, rec, templates, data_dir, types=("visual",))
    image, template = enc.image, templates.mllm
    position = enc.span_positions["visual"][-1]
    target_id = first_answer_token(loaded.tokenizer, enc.prompt, rec.answer)
    efficacy = Probe([enc.prompt], [image], [[target_id]])
    para_prompts = [prompts.build(template, q).text for q in rec.paraphrases]
    general = Probe(
        para_prompts,
        [image] * len(para_prompts),
        [[first_answer_token(loaded.tokenizer, p, rec.answer)] for p in para_prompts],
    )
    fresh = Probe(
        [enc.prompt] * len(renderings),
        [load_image(data_dir / r.image_url) for r in renderings],
        [[target_id]] * len(renderings),
    )
    sib_prompts = [prompts.build(template, s.question).text for s in siblings]
    same_image = _probe(
        loaded, sib_prompts, [image] * len(sib_prompts), [s.answers for s in siblings]
    )
    neighbourhood = _probe(
        loaded,
        [enc.prompt] * len(neighbours),
        [load_image(data_dir / r.image_url) for r in neighbours],
        [r.answers for r in neighbours],
    )

    def mean(values: np.ndarray) -> float | None:
        return float(values.mean()) if values.size else None

    def measure() -> dict:
        unrelated_p, unrelated_correct = _scores(loaded, unrelated)  # one pass for both
        return {
            "efficacy": float(_p(loaded, efficacy)[0]),
            "generalisation": mean(_p(loaded, general)),
            "generalisation_renderings": mean(_p(loaded, fresh)),
            "specificity": mean(unrelated_correct),
            "specificity_p": mean(unrelated_p),
            "specificity_neighbourhood": mean(_accuracy(loaded, neighbourhood)),
            "specificity_same_image": mean(_accuracy(loaded, same_image)),
        }

    result = {
        "qid": rec.qid,
        "split": rec.split,
        "entity_id": rec.entity_id,
        "target": rec.answer,
        "target_id": target_id,
        "n_paraphrases": len(para_prompts),
        "n_renderings": len(renderings),
        "n_same_image": len(sib_prompts),
        "n_neighbours": len(neighbours),
        "n_unrelated": len(unrelated.prompts),
        "unedited": measure(),
        "methods": {},
    }
    for name, method in methods.items():
        edit = method(loaded.model, enc.inputs, position, target_id)
        try:
            result["methods"][name] = {**measure(), "info": edit.info}
        finally:
            edit.undo()
        if not edit.undone():
            raise RuntimeError(f"{name}: undoing the edit of {rec.qid} did not restore W")
    return result


def method_table(cfg: config.Editing, layer: int | None = None) -> dict[str, Method]:
    """The three methods, as functions (model, inputs, key position, target id) -> Edit."""
    layer = cfg.layer if layer is None else layer
    me = MultEditSettings(
        **{**cfg.model_dump(include=set(MultEditSettings.model_fields)), "layer": layer}
    )
    ft = FinetuneSettings(layer=layer, steps=cfg.finetune_steps, lr=cfg.finetune_lr)
    ftc = FinetuneSettings(
        layer=layer, steps=cfg.finetune_steps, lr=cfg.finetune_lr, norm=cfg.finetune_norm
    )
    return {
        "multedit": lambda model, inputs, pos, tid: multedit(model, inputs, pos, tid, me),
        "finetune": lambda model, inputs, pos, tid: finetune(model, inputs, tid, ft),
        "finetune_constrained": lambda model, inputs, pos, tid: finetune(model, inputs, tid, ftc),
    }


def tuned_methods(cfg: config.Editing, settings: dict[str, dict[str, float]]) -> dict[str, Method]:
    """The three methods, each at its own overrides in `settings` (a grid entry; {}: config),
    then MultEdit at each of `cfg.variants` (diagnostics, named by `variant_method`)."""
    out = {
        method: method_table(cfg.tuned(method, settings.get(method, {})))[method]
        for method in METHODS
    }
    for name, overrides in cfg.variants.items():
        setting = {**settings.get("multedit", {}), **overrides}
        out[variant_method(name)] = method_table(cfg.tuned("multedit", setting))["multedit"]
    return out


def neighbours_of(
    rec: QuestionRecord, everything: list[QuestionRecord], n: int, seed: int
) -> list[QuestionRecord]:
    """Up to n other entities' questions with exactly this question's text (the same constraint
    phrase and relation), a seeded sample, in file order."""
    same = [r for r in everything if r.question == rec.question and r.entity_id != rec.entity_id]
    if len(same) <= n:
        return same
    rng = np.random.default_rng(derive(seed, "neighbours", rec.qid))
    return [same[i] for i in sorted(rng.choice(len(same), n, replace=False))]


def run_edits(
    loaded: LoadedModel,
    scenario: str,
    targets: list[QuestionRecord],
    everything: list[QuestionRecord],
    templates: config.Prompts,
    data_dir: Path,
    cfg: config.Editing,
    seed: int,
    methods: dict[str, Callable] | None = None,
) -> dict:
    """Edit every target question with every method; {records, n_cases}."""
    if not loaded.is_multimodal:
        raise ValueError(f"{loaded.name}: MultEdit edits a multimodal model")
    methods = methods or method_table(cfg)
    template = templates.mllm
    pool = [r for r in everything if not r.held_out]
    unrelated, entities = unrelated_probe(
        loaded, pool, cfg.unrelated, template, data_dir, derive(seed, "unrelated", loaded.name)
    )
    by_entity: dict[str, list[QuestionRecord]] = defaultdict(list)
    for r in everything:
        by_entity[r.entity_id].append(r)
    rows = []
    torch.manual_seed(derive(seed, "editing", loaded.name, scenario))
    for rec in progress(targets, desc=f"editing {loaded.name} ({scenario})"):
        siblings = [s for s in by_entity[rec.entity_id] if s.qid != rec.qid]
        probe = _subset(unrelated, [e != rec.entity_id for e in entities])
        rows.append(
            edit_case(
                loaded,
                rec,
                siblings,
                probe,
                templates,
                data_dir,
                methods,
                neighbours=neighbours_of(rec, everything, cfg.neighbours, seed),
                renderings=siblings[: cfg.renderings],
            )
        )
    return {"scenario": scenario, "layer": cfg.layer, "records": rows}


def describe(values: list[float]) -> dict:
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    if arr.size == 0:
        return {"n": 0}
    mean, half = mean_ci(arr)
    return {
        "n": int(arr.size),
        "mean": float(mean),
        "ci95": [float(mean - half), float(mean + half)],
    }


def summarise_edits(shards: list[dict], cfg: config.Editing) -> dict:
    """Per model, scenario and method: n and each metric's mean with a 95% t-interval; the
    unedited model's values on the same questions; paired two-sided Wilcoxon tests of MultEdit
    against each baseline; and whether the issue's targets are met."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    layers, settings, variants = {}, {}, {}
    for shard in shards:
        groups[(shard["model"], shard["scenario"])].extend(shard["records"])
        layers[shard["model"]] = shard["layer"]
        settings[(shard["model"], shard["scenario"])] = shard.get("settings", {})
        variants[(shard["model"], shard["scenario"])] = shard.get("variants", {})
    out: dict = {}
    for (model, scenario), rows in sorted(groups.items()):
        rows = sorted(rows, key=lambda r: r["qid"])
        entry = out.setdefault(model, {"layer": layers[model], "scenarios": {}})
        e: dict = {"n": len(rows), "settings": settings[(model, scenario)]}
        if variants[(model, scenario)]:
            e["variants"] = variants[(model, scenario)]
        e["unedited"] = {m: describe([r["unedited"][m] for r in rows]) for m in METRICS}
        extra = sorted({m for r in rows for m in r["methods"] if m.startswith(VARIANT)})
        for method in (*METHODS, *extra):
            got = [r["methods"][method] for r in rows if method in r["methods"]]
            if got:
                e[method] = {"n": len(got), **{m: describe([g[m] for g in got]) for m in METRICS}}
        tests = {}
        for base in METHODS[1:]:
            if base not in e or "multedit" not in e:
                continue
            tests[base] = {}
            for m in METRICS:
                pairs = [
                    (r["methods"]["multedit"][m], r["methods"][base][m])
                    for r in rows
                    if r["methods"]["multedit"][m] is not None
                ]
                tests[base][m] = two_sided_paired([a for a, _ in pairs], [b for _, b in pairs])
        e["multedit_vs"] = tests
        infos = [
            r["methods"]["multedit"]["info"]
            for r in rows
            if "multedit" in r["methods"]
            and r["methods"]["multedit"]["info"].get("delta_norm") is not None
            and r["methods"]["multedit"]["info"].get("v0_norm")
        ]
        if infos:
            # Why efficacy is what it is: did delta reach the clamp, and how far did the
            # optimisation alone (before the closed form) move p(target)?
            e["multedit_diagnostics"] = {
                "share_delta_at_clamp": float(
                    np.mean(
                        [
                            i["delta_norm"] >= i.get("clamp", cfg.clamp) * i["v0_norm"] * (1 - 1e-4)
                            for i in infos
                        ]
                    )
                ),
                "mean_delta_over_v0": float(
                    np.mean([i["delta_norm"] / i["v0_norm"] for i in infos])
                ),
                "p_target_after_delta": describe([i["p_target_by_step"][-1] for i in infos]),
            }
        spec = (
            e.get("unedited", {}).get("specificity", {}).get("mean"),
            e.get("multedit", {}).get("specificity", {}).get("mean"),
        )
        if rows and "multedit" in e and None not in spec:
            me = e["multedit"]
            drop = spec[0] - spec[1]
            e["targets"] = {
                "efficacy>=0.9": me["efficacy"]["mean"] >= 0.9,
                "generalisation>=0.7": me["generalisation"].get("mean", 0) >= 0.7,
                "specificity_drop<=0.02": drop <= 0.02,
                "specificity_drop": drop,
            }
        entry["scenarios"][scenario] = e
    return out
