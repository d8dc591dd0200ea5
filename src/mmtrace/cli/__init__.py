"""The `mmtrace` command line: single steps outside the workflow.

Every option is checked when the command line is parsed, against the same bounds as the config
(`mmtrace.config`); a mistake prints one line, `mmtrace <command>: <what> (<culprit>): <how to
fix>`, and exits with status 2 (`--debug` adds the traceback). Unexpected errors keep theirs.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from mmtrace import __version__, logs, numerics
from mmtrace.cli import commands
from mmtrace.cli.errors import CliError, explain
from mmtrace.cli.options import Parser, bounded, text

__all__ = ["CliError", "build_parser", "main"]


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
    p = Parser(prog="mmtrace", description=__doc__)
    p.add_argument(
        "--debug", action="store_true", help="show the full traceback of any error (for reports)"
    )
    p.add_argument("--version", action="version", version=f"mmtrace {__version__}")
    p.add_argument(
        "--pin-numerics",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run torch on the workflow's pinned CPU code path (config numerics.env), so the "
        "numbers match the workflow's bit for bit on any x86-64 CPU with AVX2 "
        "(docs/reproducibility.md; default: on)",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    w = sub.add_parser("toy-world", help="generate a toy world (questions, images) into a folder")
    w.add_argument("--out", required=True, type=Path)
    w.add_argument("--seed", type=int, default=seed)
    for field in ("n_known", "n_movies", "n_okvqa", "n_heldout"):
        w.add_argument(
            "--" + field.replace("_", "-"),
            type=bounded(ToyWorld, field),
            default=getattr(world, field),
        )
    w.set_defaults(func=commands.toy_world)

    e = sub.add_parser("evaluate", help="accuracy of a checkpoint on a toy world's questions")
    e.add_argument("--model", required=True, help="checkpoint folder or hub id")
    e.add_argument("--role", choices=["mllm", "llm"], required=True)
    e.add_argument("--data", required=True, help="toy world folder")
    e.add_argument("--splits", nargs="+", default=["known", "movies", "okvqa"])
    e.add_argument(
        "--batch-size", type=bounded(Evaluation, "batch_size"), default=evaluation.batch_size
    )
    e.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the checkpoint's own Python code (off by default)",
    )
    e.set_defaults(func=commands.evaluate)

    t = sub.add_parser(
        "trace",
        help="causal trace of one question (MultiModalCausalTrace), like the release's script",
    )
    t.add_argument("--model", required=True, help="checkpoint folder or hub id (LLaVA or LM)")
    t.add_argument("--image", type=Path, help="the image (required for a multimodal model)")
    t.add_argument("--question", required=True, type=text("question"))
    t.add_argument(
        "--constraint", required=True, type=text("constraint"), help="the constraint, verbatim"
    )
    t.add_argument(
        "--replacement",
        default="Paris",
        help="incorrect constraint written over the span (default: the release's 'Paris')",
    )
    t.add_argument(
        "--corruption",
        choices=["natural", "replace", "repeat", "noise"],
        default=tracing.corruption,
        help="natural: --replacement if it has the constraint's token length, else fitted",
    )
    t.add_argument(
        "--noise-scale", type=bounded(Tracing, "noise_scale", float), default=tracing.noise_scale
    )
    t.add_argument("--kind", choices=["mlp", "attn", "hidden", "all"], default="all")
    t.add_argument("--window", type=bounded(Tracing, "windows"), default=tracing.windows[0])
    t.add_argument("--window-style", choices=["centered", "radius"], default=tracing.window_style)
    t.add_argument(
        "--prompt",
        help="prompt template with {question} (default: the release's), or chat / "
        "'chat:<text with {question}>' for the model's own chat template",
    )
    t.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=dtype)
    t.add_argument("--batch-size", type=bounded(Tracing, "batch_size"), default=tracing.batch_size)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--exact",
        action="store_true",
        help="trace with the exact reference (one forward per cell; slow), never the engine",
    )
    t.add_argument("--out", required=True, type=Path, help="trace JSON")
    t.add_argument("--plot", type=Path, help="also draw heatmaps (writes .png and .pdf)")
    t.add_argument("--trust-remote-code", action="store_true", help="off by default")
    t.set_defaults(func=commands.trace)

    a = sub.add_parser(
        "attention",
        help="attention contributions of one question (Eq. 1): constraint -> last token per "
        "layer, and visual tokens -> constraint",
    )
    a.add_argument("--model", required=True, help="checkpoint folder or hub id (LLaVA or LM)")
    a.add_argument("--image", type=Path, help="the image (required for a multimodal model)")
    a.add_argument("--question", required=True, type=text("question"))
    a.add_argument(
        "--constraint", required=True, type=text("constraint"), help="the constraint, verbatim"
    )
    a.add_argument(
        "--visual-layer",
        type=bounded(Attention, "visual_layer"),
        default=attention.visual_layer,
        help="layer of visual -> constraint",
    )
    a.add_argument("--reduce", choices=["max", "sum", "mean"], default=attention.reduce)
    a.add_argument(
        "--top-share",
        type=bounded(Attention, "top_share", float),
        default=attention.top_share,
        help="for the concentration",
    )
    a.add_argument(
        "--prompt",
        help="prompt template with {question} (default: the release's), or chat / "
        "'chat:<text with {question}>' for the model's own chat template",
    )
    a.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=dtype)
    a.add_argument("--out", required=True, type=Path, help="contributions JSON")
    a.add_argument("--plot", type=Path, help="also draw them (writes .png and .pdf)")
    a.add_argument("--trust-remote-code", action="store_true", help="off by default")
    a.set_defaults(func=commands.attention)

    d = sub.add_parser("edit", help="MultEdit one fact into a multimodal model (docs/method.md §7)")
    d.add_argument("--model", required=True, help="checkpoint folder or hub id (LLaVA)")
    d.add_argument("--image", required=True, type=Path)
    d.add_argument("--question", required=True, type=text("question"))
    d.add_argument(
        "--constraint", required=True, type=text("constraint"), help="the visual constraint"
    )
    d.add_argument("--target", required=True, type=text("target"), help="the new answer")
    d.add_argument(
        "--layer",
        type=bounded(MultEditSettings, "layer"),
        default=multedit.layer,
        help="edited MLP (release: 2)",
    )
    d.add_argument(
        "--steps",
        type=bounded(MultEditSettings, "steps"),
        default=multedit.steps,
        help="Adam steps for delta (release: 10)",
    )
    d.add_argument(
        "--lr", type=bounded(MultEditSettings, "lr", float), default=multedit.lr, help="(0.1)"
    )
    d.add_argument(
        "--weight-decay",
        type=bounded(MultEditSettings, "weight_decay", float),
        default=multedit.weight_decay,
        help="(release: 1e-3)",
    )
    d.add_argument(
        "--lam",
        type=bounded(MultEditSettings, "lam", float),
        default=multedit.lam,
        help="lambda (release: 0.01)",
    )
    d.add_argument(
        "--clamp",
        type=bounded(MultEditSettings, "clamp", float),
        default=multedit.clamp,
        help="||delta|| <= clamp ||v0|| (ROME: 4; release: 1e-4)",
    )
    d.add_argument(
        "--prompt",
        help="prompt template with {question} (default: the release's), or chat / "
        "'chat:<text with {question}>' for the model's own chat template",
    )
    d.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=dtype)
    d.add_argument("--save", type=Path, help="save the edited model here (safetensors)")
    d.add_argument(
        "--force", action="store_true", help="let --save overwrite the folder the model came from"
    )
    d.add_argument("--trust-remote-code", action="store_true", help="off by default")
    d.set_defaults(func=commands.edit)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure()
    if args.pin_numerics:
        # before any command imports torch: each library reads its variable once, at first use
        from mmtrace.config import Numerics

        if "torch" in sys.modules:  # a caller that computed already (e.g. a notebook)
            print(
                "mmtrace: torch was imported before the numerical pins were set; they hold for "
                "new processes only",
                file=sys.stderr,
            )
        numerics.apply(Numerics().env)
    try:
        return args.func(args)
    except Exception as exc:
        line = explain(exc)
        if line is None:
            raise
        if args.debug:
            traceback.print_exc()
        print(f"mmtrace {args.command}: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
