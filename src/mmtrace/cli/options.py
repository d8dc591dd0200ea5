"""Parsing the command line: options validated against the config schema's own fields (one
source of bounds), and argparse errors as one line."""

from __future__ import annotations

import argparse
import math
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (`mmtrace <command>: <problem>`) and exit status 2,
    and every sub-command's help formatted as the main one's (defaults shown)."""

    def __init__(self, *args, **kwargs) -> None:
        from mmtrace.cli.parser import Help

        kwargs.setdefault("formatter_class", Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def bounded(model: type[BaseModel], name: str, scalar: type = int) -> Any:
    """An argparse `type` that converts the text to `scalar` and checks it against the bounds of
    `model.name` (for a list field, those of its items), so the command line and the config
    accept exactly the same values."""
    info = model.model_fields[name]
    annotation = info.annotation
    origin = getattr(annotation, "__origin__", None)
    if origin is list:  # a list field: validate one item
        (annotation,) = annotation.__args__
        adapter = TypeAdapter(annotation)
    else:
        from typing import Annotated

        adapter = TypeAdapter(Annotated[(annotation, *info.metadata)])

    def parse(text: str) -> Any:
        try:
            value = scalar(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if scalar is int else 'a number'}"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"].replace("Input should be", "must be")
            raise argparse.ArgumentTypeError(f"{msg}, not {text!r}") from None

    parse.__name__ = name
    return parse


def text(name: str) -> Any:
    """An argparse `type` for text that must not be empty."""

    def parse(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError("must not be empty")
        return value

    parse.__name__ = name
    return parse
