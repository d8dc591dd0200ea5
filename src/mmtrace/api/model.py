"""`mmtrace.load` and `mmtrace.wrap`: a model (and its processor) with the four analyses as
methods, each returning a result object (`mmtrace.api.results`).

A question is given as the model sees it in a notebook: its image (a path or a PIL image; None
for a text-only model), its text and its constraint (the phrase, verbatim as it appears in the
question, or its character offsets). The prompt template is the model's own (its workflow
prompt, `mmtrace.api.defaults`) unless `prompt=` says otherwise (`chat` for the model's chat
template). Every setting left at None is the model's own default (`Model.defaults`)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mmtrace.api import interventions
from mmtrace.api.defaults import ModelDefaults, defaults_for
from mmtrace.api.inputs import Constraint, ImageLike, InputError, constraint_span
from mmtrace.api.results import ContributionsResult, TraceResult


def load(
    model: str | Path,
    *,
    device: str = "auto",
    dtype: str | None = None,
    device_map: str | dict | None = None,
    role: str | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    config: str | Path | None = None,
    progress: bool = False,
) -> Model:
    """Load a checkpoint folder or Hugging Face hub id (safetensors only; remote code only with
    `trust_remote_code`) as a `Model`. `device`: "auto" (a GPU if there is one), "cpu",
    "cuda", "cuda:1", ...; `device_map`: passed to `from_pretrained` instead (needs
    accelerate); `dtype`: float32, bfloat16 or float16 (None: the model's own setting,
    float32 for the toy models); `role`: mllm or llm (None: read from the checkpoint's
    config); `config`: the workflow configuration its default settings come from
    (`mmtrace.api.defaults`); `progress`: progress bars on stderr."""
    from mmtrace.models.loading import check_model, role_of
    from mmtrace.models.loading import load as load_checkpoint

    check_model(str(model))
    defaults = defaults_for(model, config)
    role = role or role_of(model, trust_remote_code=trust_remote_code)
    loaded = load_checkpoint(
        model,
        role,
        dtype=dtype or defaults.dtype,
        device=device,
        device_map=device_map,
        trust_remote_code=trust_remote_code,
        revision=revision,
    )
    return Model(loaded, defaults, progress=progress)


def wrap(
    model: Any,
    processor: Any = None,
    *,
    tokenizer: Any = None,
    name: str | None = None,
    config: str | Path | None = None,
    progress: bool = False,
) -> Model:
    """A `Model` around a Hugging Face model already loaded (e.g. in a notebook) and its
    processor (an MLLM) or tokenizer (a text LM). The tokenizer gets a pad token (its EOS) if
    it has none and pads on the right, as the analyses' batches need. `name`: what the model
    is called in records and how its default settings are found (default: the path or id it
    was loaded from, `config._name_or_path`)."""
    from mmtrace.models.loading import LoadedModel

    if processor is not None and hasattr(processor, "tokenizer"):
        tokenizer = processor.tokenizer
    elif tokenizer is None:
        tokenizer, processor = processor, None
    if tokenizer is None:
        raise InputError("no tokenizer", "processor", None, "give the processor or tokenizer")
    multimodal = getattr(model.config, "vision_config", None) is not None
    if multimodal and processor is None:
        raise InputError(
            "a multimodal model needs its processor", "processor", None, "give the processor"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model.eval()
    name = name or getattr(model.config, "_name_or_path", None) or type(model).__name__
    loaded = LoadedModel(name, model, tokenizer, processor, "mllm" if multimodal else "llm")
    return Model(loaded, defaults_for(name, config), progress=progress)


def trace_passes(enc, settings, windows: Sequence[int], n_layers: int) -> int:
    """About how many forward passes (output-head calls) tracing one question takes: the
    clean and corrupted runs, the engine's batches (per position after the corruption, the
    cells below the last layer and those of the last layer apart, `tracing.batching`) and the
    engine's one-off check against the reference (`tracing.gate`); with `exact`, one pass per
    cell."""
    cells = len(settings.kinds) * len(windows)
    positions = enc.positions_to_trace()
    if settings.exact:
        return 3 + cells * len(positions) * n_layers
    after = [p for p in positions if p >= min(enc.span_positions["visual"])]
    per_position = math.ceil(cells * (n_layers - 1) / settings.batch_size) + math.ceil(
        cells / settings.batch_size
    )
    return 3 + len(after) * per_position + 9 * cells


class Model:
    """A model and its processor, with the analyses of the paper as methods. Settings left at
    None are the model's own (`defaults`: the workflow's for the toy and the paper's models,
    `mmtrace.config`'s for others)."""

    def __init__(self, loaded, defaults: ModelDefaults | None = None, progress: bool = False):
        self.loaded = loaded
        self.defaults = defaults or defaults_for(loaded.name)
        self.progress = progress

    model = property(lambda self: self.loaded.model)
    processor = property(lambda self: self.loaded.processor)
    tokenizer = property(lambda self: self.loaded.tokenizer)
    name = property(lambda self: self.loaded.name)
    role = property(lambda self: self.loaded.role)
    device = property(lambda self: self.loaded.device)

    @property
    def n_layers(self) -> int:
        from mmtrace.models.lookup import locate

        return len(locate(self.model))

    def __repr__(self) -> str:
        return (
            f"Model({self.name!r}, {self.role}, {self.n_layers} layers, {self.device}; "
            f"defaults from {self.defaults.source})"
        )

    def template(self, prompt: str | None = None) -> str:
        """The prompt template with {question} this model's questions are asked in: `prompt`,
        else the model's own; `chat` or `chat:<text>` give its chat template."""
        from mmtrace.config import Prompts
        from mmtrace.models.encoding import render_template

        template = prompt or getattr(self.defaults.prompts, self.role)
        Prompts(**{self.role: template})  # the config's placeholder checks
        return render_template(self.loaded, template)

    def image(self, image: ImageLike):
        """`image` as the analyses take it: an RGB PIL image (None for a text-only model)."""
        from mmtrace.models.loading import load_image

        if not self.loaded.is_multimodal:
            if image is not None:
                raise InputError("a text-only model takes no image", "image", "...", "give None")
            return None
        if image is None:
            raise InputError("an image is required", "image", None, "the model is multimodal")
        if isinstance(image, str | Path):
            return load_image(image)
        return image.convert("RGB")

    def encode(
        self,
        image: ImageLike,
        question: str,
        constraint: Constraint,
        prompt: str | None = None,
        replacement: str = "",
    ):
        """The question as the model sees it (`mmtrace.models.encoding.EncodedQuestion`): its
        inputs, tokens, and the constraint's token positions (under "visual")."""
        from mmtrace.models import families
        from mmtrace.models.encoding import Span, encode_question

        start, end = constraint_span(question, constraint)
        template = self.template(prompt)
        families.check(self.model)  # one line naming a feature no analysis supports
        span = Span(start, end, "visual", replacement)
        return encode_question(
            self.loaded, template, "question", question, [span], self.image(image)
        )

    def predict(self, image: ImageLike, question: str, prompt: str | None = None):
        """(first answer token, its probability): the model's own answer."""
        from mmtrace.models.scoring import next_token_probs
        from mmtrace.prompts import build

        img = self.image(image)
        text = build(self.template(prompt), question).text
        probs = next_token_probs(self.loaded, [text], [img] if img is not None else None)[0]
        top = int(probs.argmax())
        return self.tokenizer.decode([top]), float(probs[top])

    @contextlib.contextmanager
    def _progress(self, desc: str, total: int, unit: str = "pass") -> Iterator[None]:
        """A progress bar on stderr (with `progress`) counting the model's output-head calls."""
        if not self.progress:
            yield
            return
        from mmtrace.logs import progress
        from mmtrace.models.hooks import head_calls

        bar = progress(total=total, desc=desc, unit=unit, mininterval=0.5)
        try:
            with head_calls(self.model, lambda: bar.update(1)):
                yield
            bar.total = bar.n  # the total was an estimate: the work is done
            bar.refresh()
        finally:
            bar.close()

    def trace(
        self,
        image: ImageLike,
        question: str,
        constraint: Constraint,
        *,
        replacement: str = "Paris",
        window: int | None = None,
        kinds: str | Sequence[str] | None = None,
        window_style: str | None = None,
        corruption: str | None = None,
        noise_scale: float | None = None,
        seed: int | None = None,
        batch_size: int | None = None,
        exact: bool | None = None,
        prompt: str | None = None,
    ) -> TraceResult:
        """MultiModalCausalTrace of one question (docs/method.md §4): the constraint is
        corrupted (`corruption`: natural, replace, repeat or noise; `replacement` is the
        incorrect phrase, the release's "Paris" by default) and every kind's output (`kinds`
        of mlp, attn, hidden) restored from the clean run, for every position from the last
        visual token and every layer, in a window of `window` layers."""
        from mmtrace.config import Tracing
        from mmtrace.tracing import question as tracing

        t = self.defaults.tracing
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        given = dict(
            kinds=list(kinds or t.kinds),
            window_style=window_style or t.window_style,
            corruption=corruption or t.corruption,
            noise_scale=t.noise_scale if noise_scale is None else noise_scale,
            batch_size=batch_size or t.batch_size,
            exact=t.exact if exact is None else exact,
            windows=[window or t.windows[0]],
        )
        checked = Tracing(**{**t.model_dump(), **given})  # the config's bounds
        settings = tracing.TraceSettings(
            kinds=tuple(checked.kinds),
            window_style=checked.window_style,
            corruption=checked.corruption,
            noise_scale=checked.noise_scale,
            seed=self.defaults.seed if seed is None else seed,
            batch_size=checked.batch_size,
            exact=checked.exact,
        )
        enc = self.encode(image, question, constraint, prompt, replacement)
        template = self.template(prompt)
        passes = trace_passes(enc, settings, checked.windows, self.n_layers)
        with self._progress("trace", passes):
            prep = tracing.prepare(
                self.loaded, enc, template, question, "visual", settings, pool=[replacement]
            )
            (record,) = tracing.run(
                self.loaded, prep, checked.windows, settings, {"model": str(self.name)}
            )
        return TraceResult(record)

    def contributions(
        self,
        image: ImageLike,
        question: str,
        constraint: Constraint,
        *,
        visual_layer: int | None = None,
        reduce: str | None = None,
        top_share: float | None = None,
        prompt: str | None = None,
    ) -> ContributionsResult:
        """Attention contributions (Eq. 1, docs/method.md §5) of one question, from one eager
        forward pass: every token to the last token at every layer, the constraint's (reduced
        by `reduce`), and for an MLLM the visual tokens to the constraint's last token at
        `visual_layer`, with the share the top `top_share` of them hold."""
        from mmtrace.config import Attention
        from mmtrace.models.scoring import next_token_probs
        from mmtrace.transfer import visual
        from mmtrace.transfer.study import contributions_of

        a = self.defaults.attention
        given = {"visual_layer": visual_layer, "reduce": reduce, "top_share": top_share}
        cfg = Attention(**{**a.model_dump(), **{k: v for k, v in given.items() if v is not None}})
        if cfg.visual_layer >= self.n_layers:
            raise InputError(
                "no such layer",
                "visual_layer",
                cfg.visual_layer,
                f"the model has layers 0-{self.n_layers - 1}",
            )
        enc = self.encode(image, question, constraint, prompt)
        found = contributions_of(self.loaded, enc, cfg, full=True)
        images = [enc.image] if enc.image is not None else None
        probs = next_token_probs(self.loaded, [enc.prompt], images)[0]
        top = int(probs.argmax())
        record = {
            "model": str(self.name),
            "question": question,
            "constraint": question[slice(*constraint_span(question, constraint))],
            "tokens": enc.tokens,
            "input_ids": enc.input_ids,
            "constraint_positions": enc.span_positions["visual"],
            "image_positions": enc.image_positions,
            "predicted": self.tokenizer.convert_ids_to_tokens(top),
            "confidence": float(probs[top]),
            "reduce": cfg.reduce,
            **found,
        }
        if "visual_to_constraint" in found:
            record["visual_layer"] = cfg.visual_layer
            record["concentration"] = visual.concentration(
                found["visual_to_constraint"], cfg.top_share
            )
            record["top_share"] = cfg.top_share
        return ContributionsResult(record, image=enc.image)

    ablate = interventions.ablate
    edit = interventions.edit
