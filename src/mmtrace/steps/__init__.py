"""The workflow's steps: one module per `rules/<stage>.smk`, one function per rule, same names.

A rule `trace_shard` in `rules/trace.smk` runs the script `rules/scripts/trace_shard.py`, which is
two lines::

    from mmtrace.steps import run, trace
    run(snakemake, trace.trace_shard)

`run` binds the job onto the step's keyword-only parameters by name: each parameter is looked up
among the rule's named `input`, `output`, `params` and `wildcards` (and `threads`), so a rule and
its step read alike and no path travels by position. Values are converted by the parameter's
annotation (`Path`, `list[Path]`, `dict[str, Path]`, `int`, `float`); a name found in two places,
or a required name found nowhere, is an error that names the rule and the parameter. Every step
can be called directly (the tests do), with the same keywords.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mmtrace import logs, numerics

NAMESPACES = ("input", "output", "params", "wildcards")


class BindError(TypeError):
    """A rule's job does not provide what its step needs (a workflow bug, not a user error)."""


def _named(namespace: Any) -> dict[str, Any]:
    """The named entries of a Snakemake Namedlist (or any mapping)."""
    if namespace is None:
        return {}
    if isinstance(namespace, Mapping):
        return dict(namespace)
    # a Namedlist iterates over its values; its names come from keys()
    return {k: getattr(namespace, k) for k in namespace.keys()}  # noqa: SIM118


def _convert(value: Any, hint: Any) -> Any:
    """`value` as the annotation `hint` asks (only the shapes steps use)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Path:
        return Path(value)
    if hint in (int, float, str):
        return hint(value)
    if origin is list and args and args[0] is Path:
        return [Path(v) for v in value]
    if origin is dict and len(args) == 2 and args[1] is Path:
        return {str(k): Path(v) for k, v in _named(value).items()}
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        real = [a for a in args if a is not type(None)]
        if value is None:
            return None
        if len(real) == 1:
            return _convert(value, real[0])
    if origin is dict and not isinstance(value, dict):
        return dict(value)
    return value


def bind(job: Any, step: Callable[..., Any]) -> dict[str, Any]:
    """The keyword arguments of `step` for one Snakemake job (see the module docstring)."""
    rule = getattr(job, "rule", step.__name__)
    found: dict[str, list[tuple[str, Any]]] = {}
    for space in NAMESPACES:
        for name, value in _named(getattr(job, space, None)).items():
            found.setdefault(name, []).append((space, value))
    found.setdefault("threads", []).append(("threads", getattr(job, "threads", 1)))
    hints = typing.get_type_hints(step)
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(step).parameters.items():
        hits = found.get(name, [])
        if len(hits) > 1:
            places = " and ".join(space for space, _ in hits)
            raise BindError(f"rule {rule}: {name!r} is both in {places}; rename one")
        if not hits:
            if param.default is inspect.Parameter.empty:
                raise BindError(
                    f"rule {rule}: step {step.__module__}.{step.__name__} needs {name!r}, which "
                    f"is none of the rule's named {', '.join(NAMESPACES)}"
                )
            continue
        kwargs[name] = _convert(hits[0][1], hints.get(name, Any))
    return kwargs


def run(job: Any, step: Callable[..., Any]) -> None:
    """Run `step` for a Snakemake job, logging (and tqdm's progress) to the rule's log file,
    with the job's library versions, numerical pins and CPU (`mmtrace.numerics`)."""
    kwargs = bind(job, step)
    log = job.log[0] if getattr(job, "log", None) else None
    with logs.to_file(log), numerics.job_environment():
        step(**kwargs)
