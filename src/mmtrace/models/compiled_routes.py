"""The compiled controls' routes, and the causal-trace cells each route makes restore or stay
quiet, derived from the route (never listed by hand).

A variant's route is a chain of steps, each a site (attention or MLP output, a layer) at a
position role, in the order the entity's information passes through them:

- `positive`: the visual constraint reads the planted tokens (layer-0 attention), its layer-1
  MLP stores the facts, the last token reads them (layer-2 attention) and answers (layer-2 MLP);
- `elsewhere`: the visual constraint reads the planted tokens (layer-0 attention), the last token
  copies the entity's code from it (layer-1 attention), stores (layer-1 MLP) and answers
  (layer-2 MLP) there: a transfer to the constraint, no storage at it;
- `decoy`: the last token reads the planted tokens itself (layer-0 attention), stores (layer-1
  MLP) and answers (layer-2 MLP); the visual constraint carries nothing;
- `cut`: the positive's wiring with the visual constraint blind to the image: nothing carries the
  entity and nothing is answered (no route).

Position roles (those of `mmtrace.validation.routes`, plus `other`): `constraint_last`, the
visual constraint's last token (and any later repetition of that token); `last_token`; `other`,
every other traced position (`EncodedQuestion.positions_to_trace`). A later repetition of the
constraint's last token ("This mountain is part of the mountain range") is a `constraint_last`
row too: it reads the image as well, and a restoration there restores the answer.

Every step of a route is a cut of the chain: restoring that one site's clean output in the
corrupted run hands every later step its clean input. So, when the visual constraint's
corruption reaches the route (the route passes through `constraint_last`), a trace cell restores
the answer if and only if its restored window (`mmtrace.tracing.windows.window_layers`) holds a
layer of the route at its position, for its site kind; when it does not (the decoy, the cut),
no cell restores anything. The hidden state (a block's output) carries the entity at a role from
the layer of the role's first step to the layer before the next role's first step reads it
(an attention step at layer r reads layer r - 1's output), or to the last layer at the last
role.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmtrace.tracing.windows import window_layers

KINDS = ("mlp", "attn", "hidden")
ROLES = ("constraint_last", "last_token", "other")
VARIANTS = ("positive", "cut", "decoy", "elsewhere")
# The traces the cells are declared for: single-constraint questions, the visual constraint
# corrupted by config `tracing.corruption`'s `natural` (another entity's name written over it;
# the corruption they were checked under). Every such question is in scope: the name vetoes the
# reader even where it ends in a reader's noun ("Senbix fruit" over "this fruit") or the noun
# recurs later ("This mountain is part of the mountain range"), see `compiled`.
SCOPE = {"setting": "single", "corrupted": "visual", "corruption": "natural"}
RESTORE_SHARE = 0.9  # a `restore` cell: IE >= this share of p_clean - p_corr
QUIET_SHARE = 0.05  # a `quiet` cell: |IE| <= this share of p_clean


@dataclass(frozen=True)
class Step:
    name: str  # transfer | read | storage | answer
    kind: str  # attn | mlp: the site whose output carries the entity after this step
    layer: int
    role: str  # the position it writes at

    def as_dict(self) -> dict:
        return {"kind": self.kind, "layer": self.layer, "position": self.role}


CHAINS: dict[str, tuple[Step, ...]] = {
    "positive": (
        Step("transfer", "attn", 0, "constraint_last"),
        Step("storage", "mlp", 1, "constraint_last"),
        Step("read", "attn", 2, "last_token"),
        Step("answer", "mlp", 2, "last_token"),
    ),
    "cut": (),
    "decoy": (
        Step("transfer", "attn", 0, "last_token"),
        Step("storage", "mlp", 1, "last_token"),
        Step("answer", "mlp", 2, "last_token"),
    ),
    "elsewhere": (
        Step("transfer", "attn", 0, "constraint_last"),
        Step("read", "attn", 1, "last_token"),
        Step("storage", "mlp", 1, "last_token"),
        Step("answer", "mlp", 2, "last_token"),
    ),
}


def _order(step: Step) -> tuple[int, int]:
    return step.layer, 0 if step.kind == "attn" else 1


def routes(chain: tuple[Step, ...], n_layers: int) -> dict[str, dict[str, list[int]]]:
    """kind -> role -> layers on the route (`ground_truth.json`'s `routes`)."""
    if [_order(s) for s in chain] != sorted(_order(s) for s in chain):
        raise ValueError("a route's steps must run forward through the layers")
    out: dict[str, dict[str, list[int]]] = {kind: {} for kind in KINDS}
    for s in chain:
        if s.layer >= n_layers:
            raise ValueError(f"step {s.name} at layer {s.layer} of a {n_layers}-layer model")
        out[s.kind].setdefault(s.role, []).append(s.layer)
    roles = list(dict.fromkeys(s.role for s in chain))  # in the order the route visits them
    for i, role in enumerate(roles):
        first = min(s.layer for s in chain if s.role == role)
        if i + 1 < len(roles):
            nxt = next(s for s in chain if s.role == roles[i + 1])
            if nxt.kind != "attn":
                raise ValueError(f"the route leaves {role} by {nxt.kind}, not attention")
            last = nxt.layer - 1  # the reading attention sees the previous block's output
        else:
            last = n_layers - 1
        out["hidden"][role] = list(range(first, last + 1))
    return out


def through_constraint(chain: tuple[Step, ...]) -> bool:
    """Whether corrupting the visual constraint reaches the route."""
    return any(s.role == "constraint_last" for s in chain)


def expected_cells(
    route: dict[str, dict[str, list[int]]],
    reached: bool,
    n_layers: int,
    windows: list[int],
    style: str,
) -> dict[str, dict[str, dict[str, list[list]]]]:
    """window (as a string) -> kind -> {"restore": [[role, layer], ...], "quiet": [...]}: every
    (role, layer) cell of a trace with that window, as the module docstring derives them."""
    out: dict = {}
    for window in windows:
        by_kind: dict = {}
        for kind in KINDS:
            cells: dict[str, list[list]] = {"restore": [], "quiet": []}
            for role in ROLES:
                on = set(route.get(kind, {}).get(role, []))
                for layer in range(n_layers):
                    touches = bool(on & set(window_layers(layer, window, n_layers, style)))
                    cells["restore" if touches and reached else "quiet"].append([role, layer])
            by_kind[kind] = cells
        out[str(window)] = by_kind
    return out


def truth_of(variant: str, n_layers: int, windows: list[int], style: str) -> dict:
    """The route part of a variant's ground truth: its steps, routes and expected cells."""
    if variant not in CHAINS:
        raise ValueError(f"compiled variant must be one of {VARIANTS}, not {variant!r}")
    chain = CHAINS[variant]
    route = routes(chain, n_layers)
    reached = through_constraint(chain)
    steps = {name: None for name in ("transfer", "storage", "read", "answer")}
    steps.update({s.name: s.as_dict() for s in chain})
    return {
        **steps,
        "routes": route,
        "corruption_reaches_route": reached,
        "expected": {
            "scope": dict(SCOPE),  # the traces the cells are declared for
            # whether corrupting the visual constraint drops p(answer) (by >= restore_share of
            # p_clean) or leaves it (within quiet_share of p_clean)
            "corruption_drops_answer": reached,
            "window_style": style,
            "roles": list(ROLES),
            "restore_share": RESTORE_SHARE,
            "quiet_share": QUIET_SHARE,
            "windows": expected_cells(route, reached, n_layers, windows, style),
        },
    }
