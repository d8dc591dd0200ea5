"""The commands of `mmtrace`: one function per sub-command, each checking what users get wrong
before the model is loaded (see `mmtrace.cli.errors` for how failures are reported), then
calling the notebook API (`mmtrace.api`), so the command line and a notebook share one path.

Output: with `--out`, the command writes those files, then prints its one-line summary and the
names of what it wrote on stdout; without it, the JSON record goes to stdout and the summary to
stderr. Progress bars go to stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmtrace.cli.errors import CliError

OUT_SUFFIXES = (".json", ".csv", ".tsv", ".png", ".pdf", ".svg")
STDOUT_ONLY = "wrote the JSON record to stdout (--out FILE... writes files)"


def toy_world(args: argparse.Namespace) -> int:
    from mmtrace.api.defaults import config_file, worlds
    from mmtrace.config import ToyWorld
    from mmtrace.toyworld.generate import generate

    toy = worlds(config_file())[0]
    seed = args.seed if args.seed is not None else (toy["seed"] if toy else 1234)
    sizes = ToyWorld(
        n_known=args.n_known, n_movies=args.n_movies, n_okvqa=args.n_okvqa, n_heldout=args.n_heldout
    )
    counts = generate(args.out, seed=seed, **sizes.model_dump())
    print(json.dumps(counts, sort_keys=True))
    print(f"wrote the toy world (seed {seed}) to {args.out}", file=sys.stderr)
    return 0


def _check_outputs(args: argparse.Namespace, suffixes=OUT_SUFFIXES) -> None:
    """Every --out has a known extension and no output is a directory (before any work)."""
    for out in args.out or []:
        if out.is_dir():
            raise CliError("--out is a directory", str(out), "give a file name")
        if out.suffix.lower() not in suffixes:
            raise CliError(
                "unknown output format", f"--out {out}", f"give a file ending in {suffixes}"
            )
    for name in ("plot", "save"):
        target = vars(args).get(name)  # the parsed options only, never a class attribute
        if target is not None and name == "plot" and Path(target).is_dir():
            raise CliError(f"--{name} is a directory", str(target), "give a file name")


def _seeded(args: argparse.Namespace) -> None:
    if args.seed is not None:
        from mmtrace.seeding import seed_everything

        seed_everything(args.seed)


def evaluate(args: argparse.Namespace) -> int:
    from mmtrace.api import load
    from mmtrace.dataset import load_questions
    from mmtrace.evaluate import score_questions, summarise
    from mmtrace.io import write_json

    _check_outputs(args, (".json", ".csv", ".tsv"))
    data = Path(args.data)
    csvs = [data / f"{s}.csv" for s in args.splits]
    for csv in csvs:
        if not csv.is_file():
            raise CliError("no such split file", str(csv), "check --data and --splits")
    _seeded(args)
    mt = load(
        args.model,
        role=args.role,
        device=args.device,
        dtype=args.dtype,
        trust_remote_code=args.trust_remote_code,
        progress=True,
    )
    rows = score_questions(
        mt.loaded, load_questions(csvs), mt.defaults.prompts, data, args.batch_size
    )
    summary = summarise(rows)
    if not args.out:
        print(json.dumps(summary, indent=2, sort_keys=True))
        print(STDOUT_ONLY, file=sys.stderr)
        return 0
    import pandas as pd

    for out in args.out:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".json":
            write_json(out, summary)
        else:
            sep = "\t" if out.suffix.lower() == ".tsv" else ","
            pd.DataFrame(rows).to_csv(out, sep=sep, index=False)
    line = ", ".join(f"{s} {v['accuracy']:.3f}" for s, v in sorted(summary.items()))
    print(f"accuracy: {line}")
    print("wrote " + ", ".join(str(o) for o in args.out))
    return 0


def _load(args: argparse.Namespace, mllm: bool = False):
    """The model of a one-question command, after checking what users get wrong (a
    multimodal model without --image, a constraint that is not in the question, a prompt
    without its placeholders, an output that is a directory) before it is loaded."""
    from mmtrace.api import load
    from mmtrace.api.defaults import defaults_for
    from mmtrace.api.inputs import constraint_span
    from mmtrace.config import Prompts
    from mmtrace.models.loading import check_model, load_image, role_of

    check_model(str(args.model))
    role = role_of(args.model, trust_remote_code=args.trust_remote_code)
    if mllm and role != "mllm":
        raise CliError("not a multimodal model", str(args.model), "give a LLaVA checkpoint")
    if role == "mllm" and args.image is None:
        raise CliError("--image is required", str(args.model), "the model is multimodal")
    constraint_span(args.question, args.constraint)
    template = args.prompt or getattr(defaults_for(args.model).prompts, role)
    Prompts(**{role: template})  # the same placeholder checks as the config's prompts
    if role == "mllm":
        load_image(args.image)  # a missing or broken image, before the model is loaded
    _check_outputs(args)
    _seeded(args)
    return load(
        args.model,
        role=role,
        device=args.device,
        dtype=args.dtype,
        trust_remote_code=args.trust_remote_code,
        progress=True,
    )


def _finish(args: argparse.Namespace, result, summary: str) -> int:
    """Write the result (--out, --plot), then the summary and what was written."""
    if not args.out and vars(args).get("plot") is None:
        print(_json(result.record))
        print(summary, file=sys.stderr)
        print(STDOUT_ONLY, file=sys.stderr)
        return 0
    written = [result.save(out) for out in args.out or []]
    if vars(args).get("plot") is not None:
        from mmtrace.report.style import save_figure

        stem = plot_path(vars(args)["plot"])
        written += save_figure(result.plot(), stem)
    if not args.out:
        print(_json(result.record))
    print(summary, file=sys.stdout if args.out else sys.stderr)
    print(
        "wrote " + ", ".join(str(p) for p in written),
        file=sys.stdout if args.out else sys.stderr,
    )
    return 0


def trace(args: argparse.Namespace) -> int:
    mt = _load(args)
    kinds = None if args.kind in (None, "all") else [args.kind]
    if args.kind == "all":
        kinds = ["mlp", "attn", "hidden"]
    result = mt.trace(
        args.image,
        args.question,
        args.constraint,
        replacement=args.replacement,
        window=args.window,
        kinds=kinds,
        window_style=args.window_style,
        corruption=args.corruption,
        noise_scale=args.noise_scale,
        seed=args.seed,
        batch_size=args.batch_size,
        exact=args.exact or None,
        prompt=args.prompt,
    )
    record = result.record
    how = record["exactness"]
    check = how["check"]
    summary = (
        f"answer {record['answer']!r}: p_clean={record['p_clean']:.4f} "
        f"p_corr={record['p_corr']:.4f}; traced by the {how['path']}"
        + (f" ({how['reason']})" if how["reason"] else "")
        + (
            f"; engine vs reference on {check['cells']} cells: max |diff| "
            f"{check['max_abs_diff']:.2g}"
            if check
            else ""
        )
    )
    return _finish(args, result, summary)


def attention(args: argparse.Namespace) -> int:
    mt = _load(args)
    result = mt.contributions(
        args.image,
        args.question,
        args.constraint,
        visual_layer=args.visual_layer,
        reduce=args.reduce,
        top_share=args.top_share,
        prompt=args.prompt,
    )
    record = result.record
    peak = int(result.constraint_to_last.argmax())
    summary = (
        f"predicted {record['predicted']!r} (p={record['confidence']:.4f}); constraint -> last "
        f"token peaks at layer {peak}"
        + (
            f"; top {record['top_share']:.0%} of visual tokens hold {record['concentration']:.3f} "
            f"of layer {record['visual_layer']}'s contribution"
            if "concentration" in record
            else ""
        )
    )
    return _finish(args, result, summary)


def ablate(args: argparse.Namespace) -> int:
    mt = _load(args, mllm=True)
    result = mt.ablate(
        args.image,
        args.question,
        args.constraint,
        answer=args.answer,
        ways=args.ways,
        fractions=args.fractions,
        block_layers=args.block_layers,
        random_draws=args.random_draws,
        mean_images=args.mean_images,
        visual_layer=args.visual_layer,
        per_layer=args.per_layer,
        seed=args.seed,
        batch_size=args.batch_size,
        prompt=args.prompt,
    )
    return _finish(args, result, f"{result!r}".removeprefix("AblationResult(").rstrip(")"))


def edit(args: argparse.Namespace) -> int:
    save = vars(args).get("save")  # (nnsight, a test dependency, gives every object .save)
    if save is not None and not args.force and _same_folder(save, args.model):
        raise CliError(
            "--save would overwrite the model it edits",
            str(save),
            "save elsewhere, or add --force",
        )
    mt = _load(args, mllm=True)
    result = mt.edit(
        args.image,
        args.question,
        args.constraint,
        args.target,
        method=args.method,
        layer=args.layer,
        steps=args.steps,
        lr=args.lr,
        clamp=args.clamp,
        weight_decay=args.weight_decay,
        lam=args.lam,
        norm=args.norm,
        paraphrases=args.paraphrase,
        prompt=args.prompt,
    )
    r = result.record
    eff = r["metrics"]["efficacy"]
    how = (
        f"||delta|| = {r['delta_norm']:.3g}, ||v0|| = {r['v0_norm']:.3g}"
        if "delta_norm" in r
        else f"max |change| {r['max_abs_change']:.3g}"
    )
    name = {"multedit": "MultEdit"}.get(r["method"], r["method"])
    summary = (
        f"p(target {args.target!r}, first token {r['target_token']!r}): {eff['before']:.4f} -> "
        f"{eff['after']:.4f} ({name} at layer {r['layer']}, {how}; settings: "
        + ", ".join(f"{k} {v:g}" for k, v in r["settings"].items())
        + f"; from {mt.defaults.source} where not given)"
    )
    print(summary)
    if save is not None:
        mt.model.save_pretrained(save)  # safetensors
        (mt.processor or mt.tokenizer).save_pretrained(save)
        print(f"saved the edited model to {save}")
    if args.out or vars(args).get("plot") is not None:
        written = [result.save(out) for out in args.out or []]
        if vars(args).get("plot") is not None:
            from mmtrace.report.style import save_figure

            written += save_figure(result.plot(), plot_path(vars(args)["plot"]))
        print("wrote " + ", ".join(str(p) for p in written))
    elif save is None:
        print("wrote nothing: the edit lived in this process only (give --save or --out)")
    return 0


def _json(record: dict) -> str:
    """A record as `--out x.json` writes it (mmtrace.io's rounding), for stdout."""
    from mmtrace.io import FLOAT_DIGITS, dumps_json

    return dumps_json(record, FLOAT_DIGITS, name="stdout")


def _same_folder(a: Path, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).expanduser().resolve()
    except OSError:
        return False


def plot_path(target: Path) -> Path:
    """Where a --plot goes: its folder is created, like --out's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_suffix("")
