"""The notebook API: `mmtrace.load` or `mmtrace.wrap` a model, then trace, attribute, ablate
and edit one question at a time, each returning a result with its numbers, `.plot()` and
`.to_frame()` (docs/api.md).

    import mmtrace
    mt = mmtrace.load("checkpoints/toy/toy-llava", device="cpu")
    q = mmtrace.toy_question("known-0000-city")
    mt.trace(q.image, q.question, q.constraint).plot()
"""

from mmtrace.api.defaults import ModelDefaults, defaults_for
from mmtrace.api.inputs import InputError
from mmtrace.api.model import Model, load, wrap
from mmtrace.api.results import AblationResult, ContributionsResult, EditResult, TraceResult
from mmtrace.api.toy import ToyQuestion, toy_question, toy_questions

__all__ = [
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
]
