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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmtrace", description=__doc__)
    p.add_argument("--version", action="version", version=f"mmtrace {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    w = sub.add_parser("toy-world", help="generate a toy world (questions, images) into a folder")
    w.add_argument("--out", required=True, type=Path)
    w.add_argument("--seed", type=int, default=1234)
    w.add_argument("--n-known", type=int, default=140)
    w.add_argument("--n-movies", type=int, default=100)
    w.add_argument("--n-okvqa", type=int, default=100)
    w.add_argument("--n-heldout", type=int, default=30)
    w.set_defaults(func=_toy_world)

    e = sub.add_parser("evaluate", help="accuracy of a checkpoint on a toy world's questions")
    e.add_argument("--model", required=True, help="checkpoint folder or hub id")
    e.add_argument("--role", choices=["mllm", "llm"], required=True)
    e.add_argument("--data", required=True, help="toy world folder")
    e.add_argument("--splits", nargs="+", default=["known", "movies", "okvqa"])
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the checkpoint's own Python code (off by default)",
    )
    e.set_defaults(func=_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
