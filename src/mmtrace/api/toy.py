"""Questions of the toy world the shipped toy models were trained on, for notebooks and
examples: the same questions, answers and evaluation renderings as the workflow's `data/toy`
(built from the workflow configuration's seed and sizes), without writing the world to disk."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from mmtrace.api.defaults import config_file


@dataclass(frozen=True)
class ToyQuestion:
    """One toy-world question: its image (rendered on first use), text, visual constraint (the
    phrase, verbatim in the question) and answer, with its paraphrases and its text-only form
    (the entity named in words, for a text LM)."""

    qid: str
    split: str
    question: str
    constraint: str
    answer: str
    answers: list[str]
    paraphrases: list[str]
    text_question: str
    text_constraint: str
    held_out: bool
    attrs: dict[str, str] = field(repr=False)
    seed: int = field(repr=False)
    size: int = field(repr=False)

    @functools.cached_property
    def image(self):
        """The question's evaluation rendering (a PIL image), as in data/toy/images/eval/."""
        from mmtrace.toyworld.images import render

        return render(self.attrs, self.seed, self.size)


@functools.lru_cache(maxsize=4)
def _world(path: Path | None) -> dict[str, ToyQuestion]:
    from mmtrace.api.defaults import worlds
    from mmtrace.config import Config, ToyWorld
    from mmtrace.seeding import derive
    from mmtrace.toyworld.world import build_world

    toy = worlds(path)[0]
    seed = toy["seed"] if toy else Config.model_fields["seed"].default
    w = ToyWorld(**toy["toy_world"]) if toy else ToyWorld()
    entities, questions = build_world(seed, w.n_known, w.n_movies, w.n_okvqa, w.n_heldout)
    attrs = {e.id: e.attrs for e in entities}
    out = {}
    for q in questions:
        visual = next(s for s in q.constraints if s.type == "visual")
        text = next(s for s in q.text_constraints if s.type == "visual")
        out[q.qid] = ToyQuestion(
            q.qid,
            q.split,
            q.question,
            visual.text,
            q.answer,
            list(q.answers),
            list(q.paraphrases),
            q.text_question,
            text.text,
            q.held_out,
            attrs[q.entity_id],
            derive(seed, "eval", q.qid),
            w.image_size,
        )
    return out


def toy_questions(split: str | None = None, config: str | Path | None = None) -> list[ToyQuestion]:
    """Every question of the toy world (of one `split`: known, movies, okvqa or heldout)."""
    path = config_file(config)
    world = _world(path.resolve() if path else None)
    return [q for q in world.values() if split is None or q.split == split]


def toy_question(qid: str = "known-0000-city", config: str | Path | None = None) -> ToyQuestion:
    """One toy-world question by id (e.g. known-0000-city, heldout-0000-country)."""
    path = config_file(config)
    world = _world(path.resolve() if path else None)
    if qid not in world:
        near = ", ".join(sorted(world)[:3])
        raise KeyError(f"no toy question {qid!r} (ids look like {near}, ...)")
    return world[qid]
