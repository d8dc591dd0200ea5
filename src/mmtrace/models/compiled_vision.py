"""The compiled control's vision side: a CLIP tower and a projector, set by hand, that read the
planted world's code tiles (`mmtrace.toyworld.planted`) into the language model's residual.

Patch embedding: for each attribute value, a detector over the three pixels of its bar (all
channels) returns 1 when they are black and 0 when they are white, exactly: with CLIP's
normalisation a pixel of channel c is (v/255 - mean_c) / std_c, so the detector weight is
1 / (3 * 3 * (black_c - white_c)) and the white response is subtracted through the position
embedding. The position embedding also marks the planted patches with a flag pair (+1, -1) and
adds two anchors (+A, -A). The encoder layers are identities (zero output projections) and
LLaVA reads the penultimate hidden state, i.e. `pre_layrnorm`'s output: a LayerNorm, so a planted
token's features are (x - mu) / sigma with mu and sigma the same for every planted token (its
code has exactly three ones), which the projector inverts exactly. The flag is the difference of
its pair, which LayerNorm's centring cannot disturb: exactly 1 on planted tokens and exactly 0
on all others. Tokens outside the planted row carry whatever the detectors answer to natural
pixels in their code dimensions; no head of the language model reads them (the visual head's
keys are the flag), which the ground truth records and the tests check.
"""

from __future__ import annotations

import math

import torch
from transformers import CLIPVisionConfig

from mmtrace.toyworld.planted import BAND_ROWS, BANDS, planted_tokens

CODE_DIMS = sum(len(values) for _row, values in BANDS.values())
FLAG = CODE_DIMS  # the flag pair: FLAG (+1), FLAG + 1 (-1)
ANCHORS = CODE_DIMS + 2  # the anchor pair: +VISION_ANCHOR, -VISION_ANCHOR
HIDDEN = CODE_DIMS + 4
VISION_ANCHOR = 100.0
# CLIP's pixel normalisation (the toy image processor's defaults)
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def code_index(attr: str, value: str) -> int:
    """The code dimension of an attribute value (shape, then colour, then background)."""
    offset = 0
    for name, (_row, values) in BANDS.items():
        if name == attr:
            return offset + values.index(value)
        offset += len(values)
    raise KeyError(attr)


def _planted_stats() -> tuple[float, float]:
    """LayerNorm's mean and standard deviation over a planted token's features: three ones of
    code, the flag pair and the anchor pair."""
    x = torch.zeros(HIDDEN, dtype=torch.float64)
    x[:3] = 1.0
    x[FLAG], x[FLAG + 1] = 1.0, -1.0
    x[ANCHORS], x[ANCHORS + 1] = VISION_ANCHOR, -VISION_ANCHOR
    mu = float(x.mean())
    return mu, math.sqrt(float(((x - mu) ** 2).mean()) + 1e-5)


def tower(image_size: int, patch: int) -> tuple[CLIPVisionConfig, dict[str, torch.Tensor]]:
    """The CLIP configuration and its hand-set weights."""
    cfg = CLIPVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=1,
        image_size=image_size,
        patch_size=patch,
        projection_dim=HIDDEN,
    )
    from transformers import CLIPVisionModel

    model = CLIPVisionModel(cfg)
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    conv = state["embeddings.patch_embedding.weight"]  # [HIDDEN, 3, P, P]
    white = [(1.0 - m) / s for m, s in zip(MEAN, STD, strict=True)]
    black = [(0.0 - m) / s for m, s in zip(MEAN, STD, strict=True)]
    for attr, (row, values) in BANDS.items():
        for i in range(len(values)):
            dim = code_index(attr, values[i])
            for c in range(3):
                w = 1.0 / (3 * BAND_ROWS * (black[c] - white[c]))
                conv[dim, c, row : row + BAND_ROWS, 1 + i] = w
    offset = sum(white[c] / (3 * (black[c] - white[c])) for c in range(3))
    pos = state["embeddings.position_embedding.weight"]  # [1 + n, HIDDEN]
    pos[:, :CODE_DIMS] = -offset  # a white band answers 0
    for p in planted_tokens(image_size, patch):
        pos[1 + p, FLAG], pos[1 + p, FLAG + 1] = 1.0, -1.0
    pos[:, ANCHORS], pos[:, ANCHORS + 1] = VISION_ANCHOR, -VISION_ANCHOR
    for name in list(state):
        if name.endswith("layer_norm1.weight") or name.endswith("layer_norm2.weight"):
            state[name].fill_(1.0)
        if "pre_layrnorm.weight" in name or "post_layernorm.weight" in name:
            state[name].fill_(1.0)
    # the encoder layers' output projections stay zero: each layer is the identity
    return cfg, state


def projector(proj, lay, anchor: float, patch: int) -> None:
    """LLaVA's projector (linear_1, identity activation, linear_2) inverting the planted
    tokens' LayerNorm: code and flag into the residual's `code` and `planted` blocks, the
    language model's anchor as a bias."""
    mu, sigma = _planted_stats()
    d = proj.linear_1.weight.shape[0]
    if d < HIDDEN:
        raise ValueError("the language model's hidden size is smaller than the vision features")
    proj.linear_1.weight.zero_()
    proj.linear_1.bias.zero_()
    for i in range(HIDDEN):
        proj.linear_1.weight[i, i] = 1.0  # features pass through unchanged
    w2, b2 = proj.linear_2.weight, proj.linear_2.bias
    w2.zero_()
    b2.zero_()
    for i in range(CODE_DIMS):
        w2[lay.at("code", i), i] = sigma
        b2[lay.at("code", i)] = mu
    w2[lay.at("planted"), FLAG] = sigma / 2
    w2[lay.at("planted"), FLAG + 1] = -sigma / 2
    b2[lay.at("anchor")] = anchor
