"""The commands of `mmtrace`: one function per sub-command, each checking what users get wrong
before the model is loaded (see `mmtrace.cli.errors` for how failures are reported)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmtrace.cli.errors import CliError


def toy_world(args: argparse.Namespace) -> int:
    from mmtrace.config import ToyWorld
    from mmtrace.toyworld.generate import generate

    sizes = ToyWorld(
        n_known=args.n_known, n_movies=args.n_movies, n_okvqa=args.n_okvqa, n_heldout=args.n_heldout
    )
    counts = generate(args.out, seed=args.seed, **sizes.model_dump())
    print(json.dumps(counts, sort_keys=True))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from mmtrace.config import Prompts
    from mmtrace.dataset import load_questions
    from mmtrace.evaluate import score_questions, summarise
    from mmtrace.models.loading import load

    data = Path(args.data)
    csvs = [data / f"{s}.csv" for s in args.splits]
    for csv in csvs:
        if not csv.is_file():
            raise CliError("no such split file", str(csv), "check --data and --splits")
    loaded = load(args.model, args.role, trust_remote_code=args.trust_remote_code)
    rows = score_questions(loaded, load_questions(csvs), Prompts(), data, args.batch_size)
    print(json.dumps(summarise(rows), indent=2, sort_keys=True))
    return 0


def _load_question(args: argparse.Namespace, command: str, replacement: str = "", mllm=False):
    """The model and the question of a one-question command: (loaded, encoded, template, image).

    Checks what users get wrong (a multimodal model without --image, a constraint that is not in
    the question) before the model is loaded."""
    from mmtrace.config import Prompts
    from mmtrace.models import families
    from mmtrace.models.encoding import Span, encode_question, render_template
    from mmtrace.models.loading import check_model, load, load_image, role_of

    check_model(str(args.model))
    role = role_of(args.model, trust_remote_code=args.trust_remote_code)
    if mllm and role != "mllm":
        raise CliError("not a multimodal model", str(args.model), "give a LLaVA checkpoint")
    if role == "mllm" and args.image is None:
        raise CliError("--image is required", str(args.model), "the model is multimodal")
    start = args.question.find(args.constraint)
    if start < 0:
        raise CliError(
            "the constraint is not part of the question",
            f"--constraint {args.constraint!r}",
            "give the constraint verbatim, as it appears in --question",
        )
    template = args.prompt or (Prompts().mllm if role == "mllm" else Prompts().llm)
    Prompts(**{role: template})  # the same placeholder checks as the config's prompts
    image = load_image(args.image) if role == "mllm" else None
    for name in ("out", "plot", "save"):
        target = vars(args).get(name)  # the parsed options only, never a class attribute
        if target is not None and Path(target).is_dir():
            raise CliError(f"--{name} is a directory", str(target), "give a file name")
    loaded = load(args.model, role, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    families.check(loaded.model)  # one line naming the feature no analysis supports
    template = render_template(loaded, template)  # `chat`: the model's own chat template
    span = Span(start, start + len(args.constraint), "visual", replacement)
    enc = encode_question(loaded, template, "cli", args.question, [span], image)
    return loaded, enc, template, image


def trace(args: argparse.Namespace) -> int:
    from mmtrace.io import write_json
    from mmtrace.tracing import question

    loaded, enc, template, _ = _load_question(args, "trace", args.replacement)
    kinds = ("mlp", "attn", "hidden") if args.kind == "all" else (args.kind,)
    settings = question.TraceSettings(
        kinds=kinds,
        window_style=args.window_style,
        corruption=args.corruption,
        noise_scale=args.noise_scale,
        seed=args.seed,
        batch_size=args.batch_size,
        exact=args.exact,
    )
    prep = question.prepare(
        loaded, enc, template, args.question, "visual", settings, pool=[args.replacement]
    )
    (record,) = question.run(loaded, prep, [args.window], settings, {"model": str(args.model)})
    write_json(args.out, record)
    how = record["exactness"]
    check = how["check"]
    print(
        f"answer {record['answer']!r}: p_clean={record['p_clean']:.4f} "
        f"p_corr={record['p_corr']:.4f}; traced by the {how['path']}"
        + (f" ({how['reason']})" if how["reason"] else "")
        + (
            f"; engine vs reference on {check['cells']} cells: max |diff| "
            f"{check['max_abs_diff']:.2g}"
            if check
            else ""
        )
        + f"; wrote {args.out}"
    )
    if vars(args).get("plot") is not None:
        from mmtrace.report.traces import plot_trace

        written = plot_trace(record, plot_path(vars(args)["plot"]))
        print("plotted " + ", ".join(str(p) for p in written))
    return 0


def attention(args: argparse.Namespace) -> int:
    from mmtrace.config import Attention
    from mmtrace.io import write_json
    from mmtrace.models.scoring import next_token_probs
    from mmtrace.transfer import visual
    from mmtrace.transfer.study import contributions_of

    loaded, enc, _, image = _load_question(args, "attention")
    cfg = Attention(visual_layer=args.visual_layer, reduce=args.reduce, top_share=args.top_share)
    n_layers = loaded.model.config.get_text_config().num_hidden_layers
    if cfg.visual_layer >= n_layers:
        raise CliError(
            "no such layer",
            f"--visual-layer {cfg.visual_layer}",
            f"the model has layers 0-{n_layers - 1}",
        )
    found = contributions_of(loaded, enc, cfg, full=True)
    probs = next_token_probs(loaded, [enc.prompt], [image] if image is not None else None)[0]
    top = int(probs.argmax())
    record = {
        "model": str(args.model),
        "question": args.question,
        "constraint": args.constraint,
        "tokens": enc.tokens,
        "input_ids": enc.input_ids,
        "constraint_positions": enc.span_positions["visual"],
        "image_positions": enc.image_positions,
        "predicted": loaded.tokenizer.convert_ids_to_tokens(top),
        "confidence": float(probs[top]),
        "reduce": cfg.reduce,
        **found,
    }
    if "visual_to_constraint" in found:
        vec = found["visual_to_constraint"]
        record["visual_layer"] = cfg.visual_layer
        record["concentration"] = visual.concentration(vec, cfg.top_share)
        record["top_share"] = cfg.top_share
    write_json(args.out, record)
    peak = max(range(len(found["constraint_to_last"])), key=found["constraint_to_last"].__getitem__)
    print(
        f"predicted {record['predicted']!r} (p={record['confidence']:.4f}); constraint -> last "
        f"token peaks at layer {peak}"
        + (
            f"; top {cfg.top_share:.0%} of visual tokens hold {record['concentration']:.3f} "
            f"of layer {cfg.visual_layer}'s contribution"
            if "concentration" in record
            else ""
        )
        + f"; wrote {args.out}"
    )
    if vars(args).get("plot") is not None:
        from mmtrace.report.transfer import plot_question

        written = plot_question(record, plot_path(vars(args)["plot"]))
        print("plotted " + ", ".join(str(p) for p in written))
    return 0


def edit(args: argparse.Namespace) -> int:
    import torch

    from mmtrace.editing.multedit import MultEditSettings, multedit, target_logprob
    from mmtrace.models.scoring import first_answer_token

    save = vars(args).get("save")  # (nnsight, a test dependency, gives every object .save)
    if save is not None and not args.force and _same_folder(save, args.model):
        raise CliError(
            "--save would overwrite the model it edits",
            str(save),
            "save elsewhere, or add --force",
        )
    loaded, enc, _, _ = _load_question(args, "edit", mllm=True)
    n_layers = loaded.model.config.get_text_config().num_hidden_layers
    if args.layer >= n_layers:
        raise CliError(
            "no such layer", f"--layer {args.layer}", f"the model has layers 0-{n_layers - 1}"
        )
    target_id = first_answer_token(loaded.tokenizer, enc.prompt, args.target)
    settings = MultEditSettings(
        layer=args.layer,
        steps=args.steps,
        lr=args.lr,
        weight_decay=args.weight_decay,
        lam=args.lam,
        clamp=args.clamp,
    )
    with torch.no_grad():
        before = float(target_logprob(loaded.model, enc.inputs, target_id).exp())
    edit = multedit(loaded.model, enc.inputs, enc.span_positions["visual"][-1], target_id, settings)
    with torch.no_grad():
        after = float(target_logprob(loaded.model, enc.inputs, target_id).exp())
    token = loaded.tokenizer.convert_ids_to_tokens(target_id)
    print(
        f"p(target {args.target!r}, first token {token!r}): {before:.4f} -> {after:.4f} "
        f"(MultEdit at layer {args.layer}, ||delta|| = {edit.info['delta_norm']:.3g}, "
        f"||v0|| = {edit.info['v0_norm']:.3g})"
    )
    if save is not None:
        loaded.model.save_pretrained(save)  # safetensors
        loaded.processor.save_pretrained(save)
        print(f"saved the edited model to {save}")
    return 0


def _same_folder(a: Path, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).expanduser().resolve()
    except OSError:
        return False


def plot_path(target: Path) -> Path:
    """Where a --plot goes: its folder is created, like --out's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_suffix("")
