"""The `mmtrace` command line's options: every command takes the same options the same way, with
its defaults shown in --help and taken from where the workflow's come from.

- `--out FILE...`: what to write, each file's format by its extension (.json: the record;
  .csv/.tsv: the tidy table; .png/.pdf/.svg: the figure); without it the JSON record goes to
  stdout. `toy-world --out` is the world's folder.
- `--model`, `--device`, `--dtype`, `--seed`, `--prompt`, `--trust-remote-code` on every
  command that loads a model.
- Settings a model has its own values for (windows, layers, MultEdit's steps, ...) default to
  the model's own (`mmtrace.api.defaults`: config.yaml's for the toy models, its
  paper.settings for the paper's, the schema's otherwise); --help says which value each gets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmtrace.cli.options import bounded, text

DTYPES = ("float32", "bfloat16", "float16")
OUT_HELP = (
    "files to write, each in the format of its extension: .json (the record), .csv or .tsv "
    "(the tidy table), .png, .pdf or .svg (the figure) (default: the JSON record on stdout)"
)


class Help(argparse.HelpFormatter):
    """Every option's default in its help, where the help does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        if (
            "default" in help
            or action.default in (None, argparse.SUPPRESS, False)
            or not action.option_strings
        ):
            return help
        return help + " (default: %(default)s)"


def _where(section: str, field: str, first: bool = False) -> str:
    """The help text naming a model-dependent default (`mmtrace.api.defaults.describe`)."""
    from mmtrace.api.defaults import describe

    try:
        return describe(section, field, first=first)
    except Exception:  # a broken config.yaml must not break --help
        return "default: the model's own setting"


def _seed_help() -> str:
    from mmtrace.api.defaults import config_file, worlds

    try:
        toy, _ = worlds(config_file())
    except Exception:
        toy = None
    seed = toy["seed"] if toy else 1234
    return f"seeds torch and every random draw (default: the workflow's seed, {seed})"


def model_options(p: argparse.ArgumentParser, what: str = "checkpoint folder or hub id") -> None:
    p.add_argument("--model", required=True, help=what)
    p.add_argument("--device", default="auto", help="auto (a GPU if any), cpu, cuda, cuda:1, ...")
    p.add_argument(
        "--dtype",
        choices=DTYPES,
        help="default: the model's own: float32 for the toy models, float16 for the paper's "
        "checkpoints (config.yaml paper.models), else float32",
    )
    p.add_argument("--seed", type=int, help=_seed_help())
    p.add_argument(
        "--trust-remote-code", action="store_true", help="allow the checkpoint's own Python code"
    )


def question_options(p: argparse.ArgumentParser, image_required: bool = False) -> None:
    p.add_argument(
        "--image",
        type=Path,
        required=image_required,
        help="the image (required for a multimodal model; default: none, for a text LM)",
    )
    p.add_argument("--question", required=True, type=text("question"))
    p.add_argument(
        "--constraint", required=True, type=text("constraint"), help="the constraint, verbatim"
    )
    p.add_argument(
        "--prompt",
        help="prompt template with {question}, or chat / 'chat:<text with {question}>' for the "
        "model's own chat template (default: the model's own: config.yaml's prompts for the "
        "toy and the paper's models, the release's LLaVA prompt otherwise)",
    )


def output_options(p: argparse.ArgumentParser, plot: bool = True) -> None:
    p.add_argument("--out", nargs="+", type=Path, metavar="FILE", help=OUT_HELP)
    if plot:
        p.add_argument(
            "--plot",
            type=Path,
            help="also draw the figure as <stem>.png and <stem>.pdf (default: no drawing)",
        )


def add_toy_world(sub) -> argparse.ArgumentParser:
    from mmtrace.config import ToyWorld

    w = sub.add_parser("toy-world", help="generate a toy world (questions, images) into a folder")
    w.add_argument("--out", required=True, type=Path, help="the world's folder")
    w.add_argument("--seed", type=int, help=_seed_help())
    world = ToyWorld()
    for field, what in (
        ("n_known", "Known-style entities"),
        ("n_movies", "directors"),
        ("n_okvqa", "everyday objects"),
        ("n_heldout", "held-out landmarks (long-tail insertion)"),
    ):
        w.add_argument(
            "--" + field.replace("_", "-"),
            type=bounded(ToyWorld, field),
            default=getattr(world, field),
            help=f"{what}; the schema's toy_world.{field}",
        )
    return w


def add_evaluate(sub) -> argparse.ArgumentParser:
    from mmtrace.config import Evaluation

    e = sub.add_parser("evaluate", help="accuracy of a checkpoint on a toy world's questions")
    model_options(e)
    e.add_argument(
        "--role", choices=["mllm", "llm"], help="default: read from the checkpoint's config"
    )
    e.add_argument("--data", required=True, help="toy world folder")
    e.add_argument(
        "--splits", nargs="+", default=["known", "movies", "okvqa"], help="the splits scored"
    )
    e.add_argument(
        "--batch-size",
        type=bounded(Evaluation, "batch_size"),
        default=Evaluation().batch_size,
        help="questions per forward pass (the schema's evaluation.batch_size)",
    )
    e.add_argument(
        "--out",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="files to write: .json (the accuracy summary), .csv or .tsv (one row per "
        "question) (default: the summary on stdout)",
    )
    return e


def add_trace(sub) -> argparse.ArgumentParser:
    from mmtrace.config import Tracing

    t = sub.add_parser(
        "trace",
        help="causal trace of one question (MultiModalCausalTrace), like the release's script",
    )
    model_options(t, "checkpoint folder or hub id (an MLLM or a text LM)")
    question_options(t)
    t.add_argument(
        "--replacement",
        default="Paris",
        help="incorrect constraint written over the span (the release's)",
    )
    t.add_argument(
        "--corruption",
        choices=["natural", "replace", "repeat", "noise"],
        help="natural: --replacement if it has the constraint's token length, else fitted; "
        + _where("tracing", "corruption"),
    )
    t.add_argument(
        "--noise-scale",
        type=bounded(Tracing, "noise_scale", float),
        help=_where("tracing", "noise_scale"),
    )
    t.add_argument(
        "--kind",
        choices=["mlp", "attn", "hidden", "all"],
        help="default: all (the model's tracing.kinds)",
    )
    t.add_argument(
        "--window",
        type=bounded(Tracing, "windows"),
        help=_where("tracing", "windows", first=True),
    )
    t.add_argument(
        "--window-style",
        choices=["centered", "radius"],
        help=_where("tracing", "window_style"),
    )
    t.add_argument(
        "--batch-size",
        type=bounded(Tracing, "batch_size"),
        help="restorations per forward pass; " + _where("tracing", "batch_size"),
    )
    t.add_argument(
        "--exact",
        action="store_true",
        help="trace with the exact reference (one forward per cell; slow), never the engine",
    )
    output_options(t)
    return t


def add_attention(sub) -> argparse.ArgumentParser:
    from mmtrace.config import Attention

    a = sub.add_parser(
        "attention",
        help="attention contributions of one question (Eq. 1): constraint -> last token per "
        "layer, and visual tokens -> constraint",
    )
    model_options(a, "checkpoint folder or hub id (an MLLM or a text LM)")
    question_options(a)
    a.add_argument(
        "--visual-layer",
        type=bounded(Attention, "visual_layer"),
        help="layer of visual -> constraint; " + _where("attention", "visual_layer"),
    )
    a.add_argument("--reduce", choices=["max", "sum", "mean"], help=_where("attention", "reduce"))
    a.add_argument(
        "--top-share",
        type=bounded(Attention, "top_share", float),
        help="for the concentration; " + _where("attention", "top_share"),
    )
    output_options(a)
    return a


def add_ablate(sub) -> argparse.ArgumentParser:
    from mmtrace.config import Ablation, Attention

    b = sub.add_parser(
        "ablate",
        help="visual-token ablation of one question: knock out the top / random / bottom k "
        "visual tokens by Eq. 1 (docs/method.md §6)",
    )
    model_options(b, "checkpoint folder or hub id (an MLLM)")
    question_options(b, image_required=True)
    b.add_argument(
        "--answer",
        nargs="+",
        type=text("answer"),
        help="the gold answer(s) whose p is scored (default: the model's own top-1 token)",
    )
    b.add_argument(
        "--ways",
        nargs="+",
        choices=["block", "mean"],
        help="block: attention to the tokens cut early; mean: their embeddings mean-ablated "
        "over --mean-images; " + _where("ablation", "ways") + " (mean only with --mean-images)",
    )
    b.add_argument(
        "--fractions",
        nargs="+",
        type=float,
        help="k as fractions of the visual tokens; " + _where("ablation", "fractions"),
    )
    b.add_argument(
        "--block-layers",
        type=bounded(Ablation, "block_layers"),
        help="block in layers < this; " + _where("ablation", "block_layers"),
    )
    b.add_argument(
        "--random-draws",
        type=bounded(Ablation, "random_draws"),
        help=_where("ablation", "random_draws"),
    )
    b.add_argument(
        "--mean-images", nargs="+", type=Path, default=[], help="images averaged per patch"
    )
    b.add_argument(
        "--visual-layer",
        type=bounded(Attention, "visual_layer"),
        help="the layer Eq. 1 ranks the tokens at; " + _where("attention", "visual_layer"),
    )
    b.add_argument(
        "--per-layer",
        action=argparse.BooleanOptionalAction,
        help="also block every visual token in one layer at a time; "
        + _where("ablation", "per_layer"),
    )
    b.add_argument(
        "--batch-size",
        type=bounded(Ablation, "batch_size"),
        help="knockouts per forward pass; " + _where("ablation", "batch_size"),
    )
    output_options(b)
    return b


def add_edit(sub) -> argparse.ArgumentParser:
    from mmtrace.config import Editing

    d = sub.add_parser(
        "edit", help="edit one fact into a multimodal model: MultEdit or a baseline (§7)"
    )
    model_options(d, "checkpoint folder or hub id (an MLLM)")
    question_options(d, image_required=True)
    d.add_argument("--target", required=True, type=text("target"), help="the new answer")
    d.add_argument(
        "--method",
        choices=["multedit", "finetune", "finetune_constrained"],
        default="multedit",
        help="MultEdit, or a baseline: fine-tuning the same weight (FT), with an L-inf bound "
        "(FT-L)",
    )
    d.add_argument(
        "--layer", type=bounded(Editing, "layer"), help="edited MLP; " + _where("editing", "layer")
    )
    d.add_argument(
        "--steps",
        type=bounded(Editing, "steps"),
        help="Adam steps (MultEdit's delta; a baseline's weight: its editing.finetune_steps); "
        + _where("editing", "steps"),
    )
    d.add_argument(
        "--lr",
        type=bounded(Editing, "lr", float),
        help="(a baseline's: editing.finetune_lr); " + _where("editing", "lr"),
    )
    for name, what in (
        ("weight_decay", "MultEdit's penalty on ||delta|| / ||v0||^2"),
        ("lam", "lambda of the closed form"),
        ("clamp", "||delta|| <= clamp ||v0|| (the release: 1e-4; ROME: 4)"),
    ):
        d.add_argument(
            "--" + name.replace("_", "-"),
            type=bounded(Editing, name, float),
            help=f"{what}; " + _where("editing", name),
        )
    d.add_argument(
        "--norm",
        type=bounded(Editing, "finetune_norm", float),
        help="finetune_constrained's L-inf bound; " + _where("editing", "finetune_norm"),
    )
    d.add_argument(
        "--paraphrase",
        nargs="+",
        default=[],
        help="paraphrases of the question, scored for generalisation",
    )
    d.add_argument(
        "--save", type=Path, help="save the edited model here (safetensors; default: not saved)"
    )
    d.add_argument(
        "--force", action="store_true", help="let --save overwrite the folder the model came from"
    )
    output_options(d)
    return d
