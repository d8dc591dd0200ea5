"""The `mmtrace` command line: single steps outside the workflow."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmtrace import __version__, logs


def _toy_world(args: argparse.Namespace) -> int:
    from mmtrace.config import ToyWorld
    from mmtrace.toyworld.generate import generate

    sizes = ToyWorld(
        n_known=args.n_known, n_movies=args.n_movies, n_okvqa=args.n_okvqa, n_heldout=args.n_heldout
    )
    counts = generate(args.out, seed=args.seed, **sizes.model_dump())
    print(json.dumps(counts, sort_keys=True))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from mmtrace.config import Prompts
    from mmtrace.dataset import load_questions
    from mmtrace.evaluate import score_questions, summarise
    from mmtrace.models.loading import load

    loaded = load(args.model, args.role, trust_remote_code=args.trust_remote_code)
    data = Path(args.data)
    csvs = [data / f"{s}.csv" for s in args.splits]
    rows = score_questions(loaded, load_questions(csvs), Prompts(), data, args.batch_size)
    print(json.dumps(summarise(rows), indent=2, sort_keys=True))
    return 0


def _load_question(args: argparse.Namespace, command: str, replacement: str = "", mllm=False):
    """The model and the question of a one-question command: (loaded, encoded, template, image).

    Checks what users get wrong (a multimodal model without --image, a constraint that is not in
    the question) before the model is loaded."""
    from mmtrace.config import Prompts
    from mmtrace.models.encoding import Span, encode_question
    from mmtrace.models.loading import load, load_image, role_of

    role = role_of(args.model, trust_remote_code=args.trust_remote_code)
    if mllm and role != "mllm":
        raise SystemExit(f"mmtrace {command}: {args.model} is not a multimodal model")
    if role == "mllm" and args.image is None:
        raise SystemExit(f"mmtrace {command}: {args.model} is multimodal: --image is required")
    start = args.question.find(args.constraint)
    if start < 0:
        raise SystemExit(
            f"mmtrace {command}: --constraint {args.constraint!r} is not part of the question"
        )
    loaded = load(args.model, role, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    template = args.prompt or (Prompts().mllm if role == "mllm" else Prompts().llm)
    span = Span(start, start + len(args.constraint), "visual", replacement)
    image = load_image(args.image) if role == "mllm" else None
    enc = encode_question(loaded, template, "cli", args.question, [span], image)
    return loaded, enc, template, image


def _trace(args: argparse.Namespace) -> int:
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
    )
    prep = question.prepare(loaded, enc, template, args.question, "visual", settings)
    (record,) = question.run(loaded, prep, [args.window], settings, {"model": str(args.model)})
    write_json(args.out, record)
    print(
        f"answer {record['answer']!r}: p_clean={record['p_clean']:.4f} "
        f"p_corr={record['p_corr']:.4f}; wrote {args.out}"
    )
    if args.plot is not None:
        from mmtrace.report.traces import plot_trace

        written = plot_trace(record, args.plot.with_suffix(""))
        print("plotted " + ", ".join(str(p) for p in written))
    return 0


def _attention(args: argparse.Namespace) -> int:
    from mmtrace.config import Attention
    from mmtrace.io import write_json
    from mmtrace.models.scoring import next_token_probs
    from mmtrace.transfer import visual
    from mmtrace.transfer.study import contributions_of

    loaded, enc, _, image = _load_question(args, "attention")
    cfg = Attention(visual_layer=args.visual_layer, reduce=args.reduce, top_share=args.top_share)
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
    if args.plot is not None:
        from mmtrace.report.transfer import plot_question

        written = plot_question(record, args.plot.with_suffix(""))
        print("plotted " + ", ".join(str(p) for p in written))
    return 0


def _edit(args: argparse.Namespace) -> int:
    import torch

    from mmtrace.editing.multedit import MultEditSettings, multedit, target_logprob
    from mmtrace.models.scoring import first_answer_token

    loaded, enc, _, _ = _load_question(args, "edit", mllm=True)
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
    if args.save is not None:
        loaded.model.save_pretrained(args.save)  # safetensors
        loaded.processor.save_pretrained(args.save)
        print(f"saved the edited model to {args.save}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mmtrace.config import (
        Attention,
        Config,
        Evaluation,
        ModelSpec,
        MultEditSettings,
        ToyWorld,
        Tracing,
    )

    world, evaluation, tracing = ToyWorld(), Evaluation(), Tracing()
    attention, multedit = Attention(), MultEditSettings()
    seed = Config.model_fields["seed"].default
    dtype = ModelSpec.model_fields["dtype"].default
    p = argparse.ArgumentParser(prog="mmtrace", description=__doc__)
    p.add_argument("--version", action="version", version=f"mmtrace {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    w = sub.add_parser("toy-world", help="generate a toy world (questions, images) into a folder")
    w.add_argument("--out", required=True, type=Path)
    w.add_argument("--seed", type=int, default=seed)
    w.add_argument("--n-known", type=int, default=world.n_known)
    w.add_argument("--n-movies", type=int, default=world.n_movies)
    w.add_argument("--n-okvqa", type=int, default=world.n_okvqa)
    w.add_argument("--n-heldout", type=int, default=world.n_heldout)
    w.set_defaults(func=_toy_world)

    e = sub.add_parser("evaluate", help="accuracy of a checkpoint on a toy world's questions")
    e.add_argument("--model", required=True, help="checkpoint folder or hub id")
    e.add_argument("--role", choices=["mllm", "llm"], required=True)
    e.add_argument("--data", required=True, help="toy world folder")
    e.add_argument("--splits", nargs="+", default=["known", "movies", "okvqa"])
    e.add_argument("--batch-size", type=int, default=evaluation.batch_size)
    e.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the checkpoint's own Python code (off by default)",
    )
    e.set_defaults(func=_evaluate)

    t = sub.add_parser(
        "trace",
        help="causal trace of one question (MultiModalCausalTrace), like the release's script",
    )
    t.add_argument("--model", required=True, help="checkpoint folder or hub id (LLaVA or LM)")
    t.add_argument("--image", type=Path, help="the image (required for a multimodal model)")
    t.add_argument("--question", required=True)
    t.add_argument("--constraint", required=True, help="the constraint span, verbatim")
    t.add_argument(
        "--replacement",
        default="Paris",
        help="incorrect constraint written over the span (default: the release's 'Paris')",
    )
    t.add_argument(
        "--corruption", choices=["replace", "repeat", "noise"], default=tracing.corruption
    )
    t.add_argument("--noise-scale", type=float, default=tracing.noise_scale)
    t.add_argument("--kind", choices=["mlp", "attn", "hidden", "all"], default="all")
    t.add_argument("--window", type=int, default=tracing.windows[0])
    t.add_argument("--window-style", choices=["centered", "radius"], default=tracing.window_style)
    t.add_argument("--prompt", help="prompt template with {question} (default: the release's)")
    t.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=dtype)
    t.add_argument("--batch-size", type=int, default=tracing.batch_size)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, type=Path, help="trace JSON")
    t.add_argument("--plot", type=Path, help="also draw heatmaps (writes .png and .pdf)")
    t.add_argument("--trust-remote-code", action="store_true", help="off by default")
    t.set_defaults(func=_trace)

    a = sub.add_parser(
        "attention",
        help="attention contributions of one question (Eq. 1): constraint -> last token per "
        "layer, and visual tokens -> constraint",
    )
    a.add_argument("--model", required=True, help="checkpoint folder or hub id (LLaVA or LM)")
    a.add_argument("--image", type=Path, help="the image (required for a multimodal model)")
    a.add_argument("--question", required=True)
    a.add_argument("--constraint", required=True, help="the constraint span, verbatim")
    a.add_argument(
        "--visual-layer",
        type=int,
        default=attention.visual_layer,
        help="layer of visual -> constraint",
    )
    a.add_argument("--reduce", choices=["max", "sum", "mean"], default=attention.reduce)
    a.add_argument(
        "--top-share", type=float, default=attention.top_share, help="for the concentration"
    )
    a.add_argument("--prompt", help="prompt template with {question} (default: the release's)")
    a.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=dtype)
    a.add_argument("--out", required=True, type=Path, help="contributions JSON")
    a.add_argument("--plot", type=Path, help="also draw them (writes .png and .pdf)")
    a.add_argument("--trust-remote-code", action="store_true", help="off by default")
    a.set_defaults(func=_attention)

    d = sub.add_parser("edit", help="MultEdit one fact into a multimodal model (docs/method.md §7)")
    d.add_argument("--model", required=True, help="checkpoint folder or hub id (LLaVA)")
    d.add_argument("--image", required=True, type=Path)
    d.add_argument("--question", required=True)
    d.add_argument("--constraint", required=True, help="the visual constraint, verbatim")
    d.add_argument("--target", required=True, help="the new answer")
    d.add_argument("--layer", type=int, default=multedit.layer, help="edited MLP (release: 2)")
    d.add_argument(
        "--steps", type=int, default=multedit.steps, help="Adam steps for delta (release: 10)"
    )
    d.add_argument("--lr", type=float, default=multedit.lr, help="(release: 0.1)")
    d.add_argument(
        "--weight-decay", type=float, default=multedit.weight_decay, help="(release: 1e-3)"
    )
    d.add_argument("--lam", type=float, default=multedit.lam, help="lambda (release: 0.01)")
    d.add_argument(
        "--clamp",
        type=float,
        default=multedit.clamp,
        help="||delta|| <= clamp ||v0|| (ROME: 4; release: 1e-4)",
    )
    d.add_argument("--prompt", help="prompt template with {question} (default: the release's)")
    d.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=dtype)
    d.add_argument("--save", type=Path, help="save the edited model here (safetensors)")
    d.add_argument("--trust-remote-code", action="store_true", help="off by default")
    d.set_defaults(func=_edit)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
