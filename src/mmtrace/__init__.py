"""mmtrace: information storage and transfer in multi-modal LLMs, reproducibly.

The notebook API (docs/api.md) is imported on first use, so `import mmtrace` stays light (no
torch until a model is loaded):

    import mmtrace
    mt = mmtrace.load("checkpoints/toy/toy-llava", device="cpu")  # or mmtrace.wrap(model, proc)
    q = mmtrace.toy_question("known-0000-city")
    mt.trace(q.image, q.question, q.constraint).plot()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

API = (
    "AblationResult",
    "ContributionsResult",
    "EditResult",
    "InputError",
    "Model",
    "ModelDefaults",
    "ToyQuestion",
    "TraceResult",
    "defaults_for",
    "load",
    "toy_question",
    "toy_questions",
    "wrap",
)
__all__ = ["__version__", *API]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time `__getattr__` imports on first use
    from mmtrace.api import (  # noqa: F401
        AblationResult,
        ContributionsResult,
        EditResult,
        InputError,
        Model,
        ModelDefaults,
        ToyQuestion,
        TraceResult,
        defaults_for,
        load,
        toy_question,
        toy_questions,
        wrap,
    )


def __getattr__(name: str) -> Any:
    if name in API:
        import mmtrace.api

        return getattr(mmtrace.api, name)
    raise AttributeError(f"module 'mmtrace' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
