"""Controls read beside every trace (docs/method.md §4): what a per-layer IE must exceed before
it says "stored here".

- The embedding row (layer -1): restoring only the input embedding at a position. A corrupted
  token's own embedding can bring the answer back without any layer having stored anything (in
  Phi's parallel block, the layer-0 MLP at a text position is a function of that token's
  embedding alone), so a per-layer IE no larger than the embedding row's is identity
  restoration, not storage.
- The image swap: the same question traced with another entity's image (the answer token kept).
  An IE that stays when the image names someone else does not depend on what the image shows, so
  it is not visual storage.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmtrace.models.hooks import output_hook
from mmtrace.models.scoring import answer_probs
from mmtrace.tracing.noise import EmbeddingNoise, applying


@torch.no_grad()
def embedding_row(
    model,
    clean: dict,
    corrupted: dict,
    answer_id: int,
    positions: Sequence[int],
    noise: EmbeddingNoise | None = None,
    batch_size: int = 64,
) -> list[float]:
    """IE of restoring the clean input embedding at each position alone: p(answer) with that
    position's embedding restored, minus p(answer) of the corrupted run (`noise` added to the
    embeddings for a noise corruption). Positions run as batches of `batch_size` rows."""
    emb = model.get_input_embeddings()
    clean_emb = emb(clean["input_ids"])[0]
    with applying(model, noise):
        p_corr = float(answer_probs(model(**corrupted).logits[0, -1], answer_id))
    out: list[float] = []
    rows = list(positions)
    for start in range(0, len(rows), batch_size):
        at = torch.as_tensor(rows[start : start + batch_size])
        index = torch.arange(len(at))

        def restore(_m, _i, hidden, index=index, at=at):
            hidden = hidden.clone()
            hidden[index, at] = clean_emb[at].to(hidden.dtype)
            return hidden

        batch = {
            k: v.repeat(len(at), *([1] * (v.dim() - 1))) if torch.is_tensor(v) else v
            for k, v in corrupted.items()
        }
        with applying(model, noise), output_hook(emb, restore):
            logits = model(**batch).logits[:, -1]
        out += (answer_probs(logits, answer_id).double() - p_corr).tolist()
    return out
