"""The tracing tests' fixture: each tiny random model (see tests/tiny_models.py) with a clean
input, a corrupted one (two "constraint" tokens replaced) and the clean run's top answer."""

from __future__ import annotations

import pytest
import torch
from support.tiny_models import MODELS, inputs


@pytest.fixture(params=sorted(MODELS))
def setup(request):
    build, mm = MODELS[request.param]
    model = build()
    clean, corrupted, first = inputs(mm)
    with torch.no_grad():
        answer = int(model(**clean).logits[0, -1].argmax())
    return model, clean, corrupted, first, answer
