"""One error path for the command line: an expected failure becomes one line,
`mmtrace <command>: <what> (<file/field/value>): <how to fix>`, and exit status 2; a bug keeps
its traceback. `--debug` shows the traceback of expected failures too."""

from __future__ import annotations

from pydantic import ValidationError


class CliError(Exception):
    """A mistake the user can fix: what went wrong, the culprit, and how to fix it."""

    def __init__(self, what: str, culprit: str, fix: str) -> None:
        super().__init__(f"{what} ({culprit}): {fix}")


def _validation(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or exc.title
    return f"invalid value ({field}={err.get('input')!r}): {err['msg']}"


def explain(exc: BaseException) -> str | None:
    """The one line for an expected failure, or None for an unexpected one (a bug)."""
    from mmtrace.api.inputs import InputError
    from mmtrace.config import ConfigError
    from mmtrace.dataset import DataError
    from mmtrace.models.encoding import AlignmentError
    from mmtrace.models.families import UnsupportedModel
    from mmtrace.models.formats import RefusedWeights
    from mmtrace.models.loading import ImageError, ModelLoadError

    if isinstance(exc, InputError):  # the API's parameter, as its command-line option
        option = "--" + exc.parameter.replace("_", "-")
        return f"{exc.what} ({option} {exc.value}): {exc.fix}"
    if isinstance(exc, CliError | ModelLoadError | ImageError | DataError | RefusedWeights):
        return str(exc)
    if isinstance(exc, UnsupportedModel):
        return f"unsupported model ({exc}): see docs/families.md for the supported families"
    if isinstance(exc, AlignmentError | ConfigError):
        return f"{exc}: check --question and --constraint"
    if isinstance(exc, ValidationError):
        return _validation(exc)
    if isinstance(exc, IsADirectoryError | NotADirectoryError | FileNotFoundError):
        return f"{exc.strerror or 'no such file'} ({exc.filename}): check the path"
    if isinstance(exc, PermissionError):
        return f"permission denied ({exc.filename}): choose a path you can write"
    try:  # a corrupt or truncated .safetensors file
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - older safetensors
        return None
    if isinstance(exc, SafetensorError):
        return f"cannot read the weights ({exc}): the .safetensors file is corrupt or truncated"
    return None
