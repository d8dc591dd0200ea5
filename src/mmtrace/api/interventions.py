"""The two analyses that change what the model computes, as `Model` methods: visual-token
ablation (docs/method.md §6) and editing (MultEdit and its baselines, §7)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mmtrace.api.inputs import Constraint, ImageLike, InputError, constraint_span
from mmtrace.api.results import AblationResult, EditResult

if TYPE_CHECKING:
    from mmtrace.api.model import Model

METHODS = ("multedit", "finetune", "finetune_constrained")


def _answer_ids(mt: Model, prompt: str, answers: str | Sequence[str] | None, image) -> list[int]:
    """The answer's first-token ids: of each acceptable answer given, else the model's own
    top-1 token after the prompt."""
    from mmtrace.models.scoring import first_answer_token, next_token_probs

    if answers is None:
        probs = next_token_probs(mt.loaded, [prompt], [image] if image is not None else None)
        return [int(probs[0].argmax())]
    answers = [answers] if isinstance(answers, str) else list(answers)
    return sorted({first_answer_token(mt.tokenizer, prompt, a) for a in answers})


def ablate(
    self: Model,
    image: ImageLike,
    question: str,
    constraint: Constraint,
    answer: str | Sequence[str] | None = None,
    *,
    ways: Sequence[str] | None = None,
    fractions: Sequence[float] | None = None,
    block_layers: int | None = None,
    random_draws: int | None = None,
    mean_images: Sequence[ImageLike] = (),
    visual_layer: int | None = None,
    per_layer: bool | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    prompt: str | None = None,
) -> AblationResult:
    """Visual-token ablation of one question (docs/method.md §6): the visual tokens are ranked
    by their Eq. 1 contribution to the constraint's last token (at `visual_layer`) and the top
    k, `random_draws` random k and the bottom k are knocked out, for k = `fractions` of the
    visual tokens; p(answer) is scored for each. `answer`: the gold answer (or acceptable
    answers; None: the model's own top-1 token). `ways`: `block` (later tokens' attention to
    them cut in layers < `block_layers`) and `mean` (their embeddings replaced by their mean
    over `mean_images`, per patch; without images, `mean` is left out unless asked for).
    Where `image` is a path with the toy renderer's object mask beside it, the k patches the
    object covers most are knocked out too (ranking `mask`). `per_layer`: also every visual
    token blocked in one layer at a time."""
    from mmtrace.config import Ablation, Attention
    from mmtrace.prompts import build
    from mmtrace.toyworld.images import patch_coverage
    from mmtrace.transfer import ablation, visual

    if not self.loaded.is_multimodal:
        raise InputError("visual-token ablation needs an MLLM", "model", self.name, "give one")
    d = self.defaults.ablation
    if ways is None:  # the model's ways, those that can run: `mean` needs images
        ways = [w for w in d.ways if w != "mean" or mean_images] or ["block"]
    given = dict(
        ways=list(ways),
        fractions=list(fractions or d.fractions),
        block_layers=block_layers or d.block_layers,
        random_draws=random_draws or d.random_draws,
        batch_size=batch_size or d.batch_size,
        per_layer=d.per_layer if per_layer is None else per_layer,
    )
    cfg = Ablation(**{**d.model_dump(), **given})
    att = Attention(
        **{
            **self.defaults.attention.model_dump(),
            "visual_layer": self.defaults.attention.visual_layer
            if visual_layer is None
            else visual_layer,
        }
    )
    if "mean" in cfg.ways and not mean_images:
        raise InputError(
            "mean ablation needs images to average", "mean_images", [], "give some, or ways=block"
        )
    n_layers = self.n_layers
    if att.visual_layer >= n_layers:
        raise InputError(
            "no such layer", "visual_layer", att.visual_layer, f"the model has 0-{n_layers - 1}"
        )
    enc = self.encode(image, question, constraint, prompt)
    gold = _answer_ids(self, enc.prompt, answer, enc.image)
    contrib = visual.visual_to_constraint(self.model, enc, att.visual_layer)
    ks = ablation.ks_for(cfg.fractions, contrib.size)
    layers = list(range(min(cfg.block_layers, n_layers)))
    mean = None
    if "mean" in cfg.ways:
        empty = build(self.template(prompt), "").text
        mean = ablation.mean_visual_embeddings(
            self.loaded, empty, [self.image(i) for i in mean_images], cfg.batch_size
        )
    coverage = None
    if isinstance(image, str | Path):
        coverage = patch_coverage(Path(image), math.isqrt(contrib.size))
    seed = self.defaults.seed if seed is None else seed
    variants = len(ks) * (cfg.random_draws + 2 + (coverage is not None))
    batches = len(cfg.ways) * math.ceil(variants / cfg.batch_size) + 1
    with self._progress("ablate", batches + (n_layers if cfg.per_layer else 0)):
        result = ablation.ablate_question(
            self.loaded,
            enc,
            gold,
            contrib,
            ks,
            cfg.ways,
            layers,
            mean,
            cfg.random_draws,
            seed,
            cfg.batch_size,
            per_layer=cfg.per_layer,
            coverage=coverage,
        )
    record = {
        "model": str(self.name),
        "question": question,
        "constraint": question[slice(*constraint_span(question, constraint))],
        "answer": self.tokenizer.decode(gold[:1]),
        "answer_ids": gold,
        "visual_layer": att.visual_layer,
        "n_visual": int(contrib.size),
        "contribution": contrib.tolist(),
        "ways": list(cfg.ways),
        "block_layers": layers,
        "mean_images": len(mean_images) if mean is not None else 0,
        "random_draws": cfg.random_draws,
        "seed": seed,
        **result,
    }
    return AblationResult(record)


def _probe(mt: Model, texts: list[str], images: list, ids: list[list[int]]):
    """(p of the acceptable ids, top-1 among them) per prompt."""
    from mmtrace.models.scoring import next_token_probs

    if not texts:
        return [], []
    probs = next_token_probs(mt.loaded, texts, images if mt.loaded.is_multimodal else None)
    p = [float(probs[i, want].sum()) for i, want in enumerate(ids)]
    ok = [float(int(probs[i].argmax()) in want) for i, want in enumerate(ids)]
    return p, ok


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def edit(
    self: Model,
    image: ImageLike,
    question: str,
    constraint: Constraint,
    target: str,
    *,
    method: str = "multedit",
    layer: int | None = None,
    steps: int | None = None,
    lr: float | None = None,
    clamp: float | None = None,
    weight_decay: float | None = None,
    lam: float | None = None,
    norm: float | None = None,
    paraphrases: Sequence[str] = (),
    unrelated: Sequence[tuple[ImageLike, str, str]] = (),
    prompt: str | None = None,
) -> EditResult:
    """Edit the model so that the question answers `target` (docs/method.md §7), in place;
    the result's `undo()` restores the weight bit for bit. `method`: `multedit` (a rank-one
    update of the MLP output projection at `layer`, keyed at the constraint's last token;
    `steps` Adam steps of `lr` on its value, `clamp`, `weight_decay`, `lam`), `finetune`
    (`steps` Adam steps of `lr` on the same weight) or `finetune_constrained` (the same, each
    weight's change bounded by `norm`). Defaults: the model's own (`Model.defaults.editing`;
    a baseline's steps and lr are `finetune_steps`, `finetune_lr`). Scored before and after:
    efficacy (p(target) on the question), generalisation (on `paraphrases`, same image) and
    specificity (accuracy on `unrelated` (image, question, answer) triples)."""
    import torch

    from mmtrace.config import Editing
    from mmtrace.editing.baselines import FinetuneSettings, finetune
    from mmtrace.editing.multedit import MultEditSettings, multedit
    from mmtrace.models.scoring import first_answer_token
    from mmtrace.prompts import build

    if method not in METHODS:
        raise InputError("no such editing method", "method", method, f"give one of {METHODS}")
    if not target.strip():
        raise InputError("the target is empty", "target", target, "give the new answer")
    e = self.defaults.editing
    mult = method == "multedit"
    given = {
        "layer": layer,
        ("steps" if mult else "finetune_steps"): steps,
        ("lr" if mult else "finetune_lr"): lr,
        "clamp": clamp,
        "weight_decay": weight_decay,
        "lam": lam,
        "finetune_norm": norm,
    }
    s = Editing(**{**e.model_dump(), **{k: v for k, v in given.items() if v is not None}})
    if s.layer >= self.n_layers:
        raise InputError("no such layer", "layer", s.layer, f"the model has 0-{self.n_layers - 1}")
    enc = self.encode(image, question, constraint, prompt)
    template = self.template(prompt)
    target_id = first_answer_token(self.tokenizer, enc.prompt, target)
    probes = {"efficacy": ([enc.prompt], [enc.image], [[target_id]])}
    if paraphrases:  # p(target) on the paraphrases, same image
        para = [build(template, q).text for q in paraphrases]
        ids = [[first_answer_token(self.tokenizer, t, target)] for t in para]
        probes["generalisation"] = (para, [enc.image] * len(para), ids)
    if unrelated:  # accuracy on other questions
        texts = [build(template, q).text for _i, q, _a in unrelated]
        ids = [
            [first_answer_token(self.tokenizer, t, a)]
            for t, (_i, _q, a) in zip(texts, unrelated, strict=True)
        ]
        probes["specificity"] = (texts, [self.image(i) for i, _q, _a in unrelated], ids)

    def measure() -> dict[str, float | None]:
        with torch.no_grad():
            out = {}
            for name, (t, i, ids) in probes.items():
                p, ok = _probe(self, t, i, ids)
                out[name] = _mean(ok if name == "specificity" else p)
            return out

    before = measure()
    n_steps = s.steps if mult else s.finetune_steps
    with self._progress(f"edit ({method})", n_steps + 1, unit="step"):
        if mult:
            settings = MultEditSettings(**{k: getattr(s, k) for k in MultEditSettings.model_fields})
            handle = multedit(
                self.model, enc.inputs, enc.span_positions["visual"][-1], target_id, settings
            )
        else:
            bound = s.finetune_norm if method == "finetune_constrained" else None
            ft = FinetuneSettings(s.layer, s.finetune_steps, s.finetune_lr, bound)
            handle = finetune(self.model, enc.inputs, target_id, ft)
    after = measure()
    info = dict(handle.info)
    record = {
        "model": str(self.name),
        "method": method,
        "layer": s.layer,
        "question": question,
        "constraint": question[slice(*constraint_span(question, constraint))],
        "target": target,
        "target_token": self.tokenizer.convert_ids_to_tokens(target_id),
        "settings": {
            k: getattr(s, k)
            for k in (
                ("steps", "lr", "weight_decay", "lam", "clamp")
                if mult
                else ("finetune_steps", "finetune_lr")
                + (("finetune_norm",) if method == "finetune_constrained" else ())
            )
        },
        "metrics": {m: {"before": before[m], "after": after[m]} for m in before},
        "n": {m: len(v[0]) for m, v in probes.items()},
        **{k: v for k, v in info.items() if k not in ("layer",)},
    }
    return EditResult(record, handle=handle)
