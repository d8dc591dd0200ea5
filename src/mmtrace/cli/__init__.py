"""The `mmtrace` command line: single steps outside the workflow (toy-world, evaluate, trace,
attention, ablate, edit), each the notebook API's analysis (`mmtrace.api`) with its defaults
(the model's own, as the workflow's; see each command's --help).

Every option is checked when the command line is parsed, against the same bounds as the config
(`mmtrace.config`); a mistake prints one line, `mmtrace <command>: <what> (<culprit>): <how to
fix>`, and exits with status 2 (`--debug` adds the traceback). Unexpected errors keep theirs.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from mmtrace import __version__, logs, numerics
from mmtrace.cli import commands, parser
from mmtrace.cli.errors import CliError, explain
from mmtrace.cli.options import Parser
from mmtrace.cli.parser import Help

__all__ = ["CliError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="mmtrace", description=__doc__, formatter_class=Help)
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
    for add, func in (
        (parser.add_toy_world, commands.toy_world),
        (parser.add_evaluate, commands.evaluate),
        (parser.add_trace, commands.trace),
        (parser.add_attention, commands.attention),
        (parser.add_ablate, commands.ablate),
        (parser.add_edit, commands.edit),
    ):
        add(sub).set_defaults(func=func)
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
