"""The tracing tests' fixture: each tiny random model (tests/support/tiny_models.py) with a clean
input, a corrupted one (two "constraint" tokens replaced) and the clean run's top answer."""

from __future__ import annotations

import pytest
import torch
from support.tiny_models import MODELS, inputs


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a loaded machine OpenMP threads
    waiting for each other made single tests up to 100x slower: run the tracing tests on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=sorted(MODELS))
def setup(request):
    build, mm = MODELS[request.param]
    model = build()
    clean, corrupted, first = inputs(mm)
    with torch.no_grad():
        answer = int(model(**clean).logits[0, -1].argmax())
    return model, clean, corrupted, first, answer
