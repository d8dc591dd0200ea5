"""Token roles of traced positions (ROME's grouping for average plots)."""

from __future__ import annotations

import pytest

from mmtrace.config import Prompts
from mmtrace.dataset import load_questions
from mmtrace.models.encoding import encode_record
from mmtrace.models.loading import load
from mmtrace.tracing.roles import ROLES, roles

SPLITS = ("known", "movies", "okvqa")


@pytest.fixture(scope="module")
def records(tiny_world):
    return load_questions([tiny_world / f"{s}.csv" for s in SPLITS])


@pytest.fixture(scope="module", params=["mm-llama", "llama"])
def model(request, trained):
    role = "mllm" if request.param.startswith("mm-") else "llm"
    return load(trained[request.param], role)


def test_roles_follow_the_sequence(model, records, tiny_world):
    multi = next(r for r in records if r.constraint_type == "multi")
    enc = encode_record(model, multi, Prompts(), tiny_world)
    positions = enc.positions_to_trace()
    for constraint in enc.span_positions:
        rs = roles(enc, positions, constraint)
        assert rs[-1] == "last_token"
        assert rs.count("last") == 1 and set(rs) <= set(ROLES)
        span = enc.span_positions[constraint]
        assert rs[positions.index(span[-1])] == "last"
        other = next(c for c in enc.span_positions if c != constraint)
        for p in enc.span_positions[other]:
            assert rs[positions.index(p)] == "other_constraint"
        # roles appear in sequence order, never going back (apart from the other constraint)
        order = [ROLES.index(r) for r in rs if r != "other_constraint"]
        assert order == sorted(order)
