"""The layers the paper reports for each claim about depth, and the bands they fix.

The claims say "early", "middle" and "mid" layers; the paper's numbers say which layers it calls
so, all on 32-layer models (LLaVA-1.5-7B, its Vicuna-7B backbone):

- F1 (§4, Fig. 3): in the MLLM, early MLP and attention layers, about 1-4, carry the IE at the
  visual constraint;
- F1-LLM (§4, Fig. 1): in the LLM, mid-layer MLPs, about 4-7 (window 5);
- F2 (§4, Figs. 4/12): multi-constraint questions use early *and* middle layers;
- F3b (§5, Figs. 15-16): constraint -> last-token contributions separate correct from incorrect
  answers most at mid layers, 16-17.

The paper's own words overlap at layer 4 (the end of "early" for F1, the start of "middle" for
F1-LLM). The bands are placed so that the paper's numbers pass its own claims: `early` ends
between layers 4 and 5 of 32 (relative depth 4.5 / 31), so F1's range is early and F1-LLM's is
middle from layer 5 on; `middle` ends at two thirds of the depth, past 16-17. A layer's band is
read from its relative depth l / (L - 1), so the same bands apply to the 6-layer toy models
(early: l0; middle: l1-l3; late: l4-l5). `tests/verdicts/test_paper_layers.py` feeds these
layers to the rules and expects `supported`.
"""

from __future__ import annotations

N_LAYERS = 32
EARLY_UNTIL = 4.5 / (N_LAYERS - 1)
MIDDLE_UNTIL = 2 / 3

# claim -> what the paper reports: the model, its layers (0-based as in the release's traces),
# where, and the band the claim names
REPORTED = {
    "F1": {
        "model": "LLaVA-1.5-7B",
        "layers": [1, 2, 3, 4],
        "where": "§4, Fig. 3 (MLP and attention at the visual constraint)",
        "band": "early",
    },
    "F1-LLM": {
        "model": "Vicuna-7B",
        "layers": [4, 5, 6, 7],
        "where": "§4, Fig. 1 (MLP, window 5)",
        "band": "middle",
    },
    "F2": {
        "model": "LLaVA-1.5-7B",
        "layers": [2, 10],
        "where": "§4, Figs. 4 and 12 (early and middle layers, window 6)",
        "band": "early and middle",
    },
    "F3b": {
        "model": "LLaVA-1.5-7B",
        "layers": [16, 17],
        "where": "§5, Figs. 15-16 (constraint -> last token, correct vs incorrect)",
        "band": "middle",
    },
}
