"""One check per method, from the analyses' records and the `validation` rules. Each returns
rows {method, rule, statistic, value, threshold, n, holds}: `holds` is whether the method found
a mechanism by that rule (a pass for a positive control, a false positive for a negative)."""

from __future__ import annotations

import numpy as np

from mmtrace.config import Validation
from mmtrace.config.analyses import setting_label, variant_method
from mmtrace.validation.routes import cell_masks

KINDS = ("mlp", "attn", "hidden")


def _row(
    method: str,
    rule: str,
    statistic: str,
    value,
    threshold,
    n: int,
    holds,
    diagnostic: bool = False,
    expected: bool | None = True,
) -> dict:
    """`holds`: the method found what the rule looks for. `expected`: whether the control's
    construction says it is there (None: not scored). `diagnostic`: reported beside the
    rules, never counted as a pass, fail or firing."""
    return {
        "method": method,
        "rule": rule,
        "statistic": statistic,
        "value": None if value is None else float(value),
        "threshold": threshold,
        "n": int(n),
        "holds": bool(holds),
        "expected": expected,
        "diagnostic": diagnostic,
    }


def tracing(traces: list[dict], truth: dict | None, rules: Validation) -> list[dict]:
    """Per site kind and window (single-constraint traces): is a site declared (the mean IE at
    each question's argmax cell reaches `min_ie`)? With a ground truth's expected cells
    (`ground_truth.json`, `mmtrace.models.compiled_routes`), every cell is checked, not only
    the argmax: in at least `argmax_share` of the questions, the argmax lies on the route,
    every cell that must restore recovers `restore_share` of the corruption's drop, and every
    cell that must stay quiet stays within `quiet_share` of p_clean. Without a ground truth
    (a random copy), no site is expected."""
    out = []
    expected = (truth or {}).get("expected")
    for window in rules.windows:
        ts = [t for t in traces if t["setting"] == "single" and t["window"] == window]
        for kind in KINDS:
            ts_kind = [t for t in ts if kind in t["ie"]]
            ies = [np.asarray(t["ie"][kind], dtype=float) for t in ts_kind]
            name = f"tracing {kind} w{window}"
            cells = (expected or {}).get("windows", {}).get(str(window), {}).get(kind)
            route = bool(cells and cells["restore"])
            if not ies:
                out.append(
                    _row(
                        name,
                        "site declared",
                        "no traces",
                        None,
                        rules.min_ie,
                        0,
                        False,
                        False,
                        route,
                    )
                )
                continue
            site = float(np.mean([ie.max() for ie in ies]))
            out.append(
                _row(
                    name,
                    "site declared",
                    "mean IE at the argmax cell",
                    site,
                    rules.min_ie,
                    len(ies),
                    site >= rules.min_ie,
                    expected=route,
                )
            )
            if cells is None:
                continue
            masks = [cell_masks(t, cells) for t in ts_kind]
            if route:
                share = float(
                    np.mean(
                        [
                            bool(r.flat[int(np.argmax(ie))])
                            for ie, (r, _) in zip(ies, masks, strict=True)
                        ]
                    )
                )
                out.append(
                    _row(
                        name,
                        "argmax on the route",
                        "share of questions",
                        share,
                        rules.argmax_share,
                        len(ies),
                        share >= rules.argmax_share,
                    )
                )
                need = expected["restore_share"]
                restored = [
                    bool((ie[r] >= need * (t["p_clean"] - t["p_corr"])).all())
                    for t, ie, (r, _) in zip(ts_kind, ies, masks, strict=True)
                ]
                share = float(np.mean(restored))
                out.append(
                    _row(
                        name,
                        "declared cells restore",
                        f"share of questions whose route cells restore >= {need:g} of the drop",
                        share,
                        rules.argmax_share,
                        len(ies),
                        share >= rules.argmax_share,
                    )
                )
            quiet = expected["quiet_share"]
            calm = [
                bool((np.abs(ie[q]) <= quiet * t["p_clean"]).all())
                for t, ie, (_, q) in zip(ts_kind, ies, masks, strict=True)
            ]
            share = float(np.mean(calm))
            out.append(
                _row(
                    name,
                    "declared cells stay quiet",
                    f"share of questions whose off-route cells stay within {quiet:g} of p_clean",
                    share,
                    rules.argmax_share,
                    len(ies),
                    share >= rules.argmax_share,
                )
            )
    return out


def contributions(
    records: list[dict], planted: list[int], rules: Validation, expected: bool = True
) -> list[dict]:
    """Eq. 1 at the first layer: the planted tokens' share of the visual tokens' contribution
    to the visual constraint's last token, averaged over questions. `expected`: whether the
    control routes the image through the visual constraint."""
    vecs = [
        np.asarray(r["visual_to_constraint"], dtype=float)
        for r in records
        if r.get("visual_to_constraint")
    ]
    if not vecs:
        return [
            _row(
                "Eq. 1",
                "planted tokens dominate",
                "no records",
                None,
                rules.planted_share,
                0,
                False,
                expected=expected,
            )
        ]
    shares = [v[planted].sum() / v.sum() if v.sum() > 0 else 0.0 for v in vecs]
    share = float(np.mean(shares))
    return [
        _row(
            "Eq. 1",
            "planted tokens dominate",
            "planted share of layer-0 contribution",
            share,
            rules.planted_share,
            len(vecs),
            share >= rules.planted_share,
            expected=expected,
        )
    ]


def ablation(
    records: list[dict],
    n_planted: int,
    rules: Validation,
    content: bool = False,
    expected: bool | None = True,
) -> list[dict]:
    """Knockouts of as many tokens as are planted: Eq. 1's top-ranked ones drop accuracy to at
    most `ablated_accuracy`, its bottom-ranked ones keep at least `kept_accuracy` (random ones
    are reported, not ruled on: a random set of k of the visual tokens often includes a
    planted one, and a control whose code needs every planted token then loses its answer,
    which its construction implies).

    `content` (controls that answer): also the control's own premise, that the planted tokens
    carry the answer: mean-ablating the tokens the planted mask covers drops accuracy to at
    most `ablated_accuracy`. Only the mean way removes content; blocking in the early layers
    leaves the tokens readable later. `expected`: whether Eq. 1's ranking (of contributions to
    the visual constraint) must find the tokens that carry the answer: True where the control
    routes the image through the constraint, None (not scored) where its constraint does not
    read the image (the ranking then orders contributions of zero and rounding, which the
    construction says nothing about), False for a control that answers nothing."""
    out = []
    rows = [r for r in records if n_planted in r.get("ks", [])]
    masked = [r for r in rows if "mask" in r.get("mean", {})]
    if content and masked:
        k = masked[0]["ks"].index(n_planted)
        gone = float(np.mean([r["mean"]["mask"]["correct"][k] for r in masked]))
        kept = float(np.mean([r["mean"]["random"]["correct"][k] for r in masked]))
        out.append(
            _row(
                f"ablation (mean, k={n_planted}, planted mask)",
                "the planted tokens carry the answer",
                f"accuracy planted {gone:.2f} / random {kept:.2f}",
                gone,
                rules.ablated_accuracy,
                len(masked),
                gone <= rules.ablated_accuracy,
            )
        )
    for way in ("block", "mean"):
        group = [r for r in rows if way in r]
        if not group:
            continue
        k = group[0]["ks"].index(n_planted)
        acc = {
            ranking: float(np.mean([r[way][ranking]["correct"][k] for r in group]))
            for ranking in ("top", "random", "bottom")
        }
        holds = acc["top"] <= rules.ablated_accuracy and acc["bottom"] >= rules.kept_accuracy
        out.append(
            _row(
                f"ablation ({way}, k={n_planted})",
                "top-k knocks the answer out",
                f"accuracy top {acc['top']:.2f} / random {acc['random']:.2f} / bottom "
                f"{acc['bottom']:.2f}",
                acc["top"],
                rules.ablated_accuracy,
                len(group),
                holds,
                expected=expected,
            )
        )
    return out


def editing(summary: dict | None, storage_layer: int, rules: Validation) -> list[dict]:
    """MultEdit at the storage layer, long-tail insertion: efficacy, generalisation, specificity
    lost; and the layer sweep's best layer. MultEdit's variants (config `editing.variants`)
    get the same three rows, marked diagnostic."""
    if not summary:
        return []
    out = []
    e = summary.get("scenarios", {}).get("long_tail", {})
    if e.get("multedit"):
        out += _edit_rows(e, "multedit", "MultEdit", rules)
    for name, setting in sorted(e.get("variants", {}).items()):
        method = variant_method(name)
        if e.get(method):
            label = f"MultEdit at {name} ({setting_label(setting)})"
            out += _edit_rows(e, method, label, rules, diagnostic=True)
    by_layer = summary.get("sweep", {}).get("by_layer", {})
    if by_layer:
        means = {
            int(k): v["efficacy"]["mean"]
            for k, v in by_layer.items()
            if v["efficacy"].get("mean") is not None
        }
        if means:
            best = max(means, key=means.get)
            out.append(
                _row(
                    "MultEdit layer sweep",
                    "peaks at the storage layer",
                    "best layer",
                    best,
                    storage_layer,
                    summary["sweep"]["n"],
                    best == storage_layer,
                )
            )
    return out


def _edit_rows(
    e: dict, method: str, label: str, rules: Validation, diagnostic: bool = False
) -> list[dict]:
    me = e[method]
    eff = me["efficacy"]["mean"]
    gen = me["generalisation"].get("mean")
    before = e["unedited"]["specificity"].get("mean")
    after = me["specificity"].get("mean")
    loss = None if None in (before, after) else before - after
    n = me["n"]
    return [
        _row(
            label,
            "efficacy",
            "mean p(target)",
            eff,
            rules.efficacy,
            n,
            eff >= rules.efficacy,
            diagnostic,
        ),
        _row(
            label,
            "generalisation",
            "mean p(target) on paraphrases",
            gen,
            rules.generalisation,
            n,
            gen is not None and gen >= rules.generalisation,
            diagnostic,
        ),
        _row(
            label,
            "specificity",
            "accuracy lost on unrelated questions",
            loss,
            rules.max_specificity_loss,
            n,
            loss is not None and loss <= rules.max_specificity_loss,
            diagnostic,
        ),
    ]
