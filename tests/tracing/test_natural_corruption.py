"""The natural corruption: over the whole default toy world and its tokenizer (as the workflow
trains it), every question's constraint is replaced by another entity's phrase of exactly the
same token length, never by the entity's own name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mmtrace.config import Config, Prompts, TokenizerCfg, ToyWorld
from mmtrace.dataset import QuestionRecord
from mmtrace.models import train
from mmtrace.models.encoding import Span
from mmtrace.toyworld.world import build_world
from mmtrace.tracing.corruption import natural_phrase, replacement_ids
from mmtrace.tracing.study import corruption_pools


@pytest.fixture(scope="module")
def default_world(tmp_path_factory):
    sizes = ToyWorld()
    seed = Config.model_fields["seed"].default
    entities, questions = build_world(
        seed, sizes.n_known, sizes.n_movies, sizes.n_okvqa, sizes.n_heldout
    )
    records = []
    for q in questions:
        d = q.to_dict()
        d.pop("image")
        records.append(QuestionRecord(image_url=f"images/eval/{q.qid}.png", **d))
    ents = [e.__dict__ for e in entities]
    out = tmp_path_factory.mktemp("tok")
    tok = train.train_tokenizer(
        records, [e for e in ents if not e["held_out"]], Prompts(), TokenizerCfg().vocab_size, out
    )
    return records, SimpleNamespace(tokenizer=tok)


@pytest.mark.parametrize("form", ["mllm", "llm"])
def test_every_default_question_gets_an_exact_natural_replacement(default_world, form):
    records, loaded = default_world
    template = getattr(Prompts(), form)
    by_split: dict[str, list[QuestionRecord]] = {}
    for r in records:
        by_split.setdefault(r.split, []).append(r)
    checked = 0
    pools = corruption_pools(records)
    for split, recs in by_split.items():
        for r in recs:
            if form == "llm" and r.constraint_type == "multi":
                continue  # the LLM is traced on single-constraint questions only
            question = r.question if form == "mllm" else r.text_question
            spans = r.constraints if form == "mllm" else r.text_constraints
            for s in spans:
                span = Span(s.start, s.end, s.type, s.replacement)
                itself = Span(s.start, s.end, s.type, question[s.start : s.end])
                own = replacement_ids(loaded, template, question, itself)
                pool = [p for p in pools[s.type] if p != r.subject and p not in r.answers]
                found = natural_phrase(loaded, template, question, span, len(own), pool, seed=1)
                assert found is not None, (split, r.qid, s.text, len(own))
                phrase, ids = found
                assert len(ids) == len(own) and ids != own
                assert phrase not in (s.text, r.subject) and phrase not in r.answers
                checked += 1
    assert checked > 800  # every constraint of every question (1566 MLLM, 854 LLM by default)
