"""F3, F3b, F4 and the visual-token ablation: how information reaches the constraint and the
last token (attention contributions and knockouts, docs/method.md §5-§6)."""

from __future__ import annotations

from mmtrace.config import Claims
from mmtrace.stats import holm
from mmtrace.verdicts import edges
from mmtrace.verdicts.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row, combine
from mmtrace.verdicts.evidence import Evidence, band


def _split_rows(ev: Evidence, model: str) -> dict:
    return ev.attention.get(model, {}).get("splits", {})


def _correctness_rows(ev: Evidence, model: str) -> tuple[str, dict]:
    """F3b/F4's questions: the hard split where the summary has it (the toy world's evaluation
    set with enough errors), else the analysed splits pooled (a summary written before the
    hard split existed has no `correctness_split`: "all"); with a label for the reason text."""
    split = ev.attention.get(model, {}).get("correctness_split", "all")
    label = "hard renderings" if split == "hard" else "analysed splits pooled"
    return label, _split_rows(ev, model).get(split, {})


def concentration(ev: Evidence, rules: Claims) -> list[Row]:
    """F3: at the first attention layer a small, consistent subset of visual tokens feeds the
    visual constraint: half of a question's contribution sits in at most `f3_max_spread` of
    the visual tokens (the CI's upper end), and the same tokens recur across questions more
    than random top-k sets do. (A top-k share above uniform, the earlier rule, held on random
    weights: a top-1 share is >= 1/n by definition.)"""
    out = []
    for model in ev.studied("mllm"):
        parts, numbers = [], {}
        for split, s in sorted(_split_rows(ev, model).items()):
            visual = s.get("visual")
            if not visual:
                continue
            if "consistency" not in visual or "spread" not in visual:
                parts.append(
                    (
                        INCONCLUSIVE,
                        f"{split}: {visual.get('n', 0)} question(s) whose visual tokens "
                        "contribute to the constraint (a route that never reads the image)",
                    )
                )
                continue
            conc, cons, spread = visual["concentration"], visual["consistency"], visual["spread"]
            hi = spread["ci95"][1]
            numbers[f"{split}/spread"] = spread["mean"]
            numbers[f"{split}/ratio_to_uniform"] = conc["ratio_to_uniform"]
            numbers[f"{split}/overlap"] = cons["overlap"]
            numbers[f"{split}/overlap_baseline"] = cons["baseline_mean"]
            ok = edges.below(
                "ie", f"{model} {split} spread CI high", hi, rules.f3_max_spread
            ) & edges.below("p_value", f"{model} {split} overlap p", cons["p_value"], rules.alpha)
            parts.append(
                (
                    SUPPORTED if ok else NOT_SUPPORTED,
                    f"{split}: {spread['mass']:.0%} of the contribution in {spread['mean']:.0%} "
                    f"of the tokens (CI high {hi:.3f}, rule <= {rules.f3_max_spread:g}); top "
                    f"share {conc['mean']:.3f} vs uniform {conc['uniform']:.3f}; overlap "
                    f"{cons['overlap']:.3f} vs random {cons['baseline_mean']:.3f}, "
                    f"p={cons['p_value']:.3g}",
                )
            )
        verdict, reason = combine(parts)
        out.append(
            Row(
                "F3",
                model,
                "a small, consistent subset of visual tokens feeds the constraint at "
                "the first attention layer",
                "about the last 36 of 576 tokens dominate",
                "share of the tokens holding half of Eq. 1's contribution; top-k overlap across "
                "questions vs random",
                ", ".join(f"{k}={v:.3g}" for k, v in numbers.items()) or "n/a",
                f"the spread's CI lies below {rules.f3_max_spread:g} and the overlap's "
                f"permutation p < {rules.alpha}",
                verdict,
                reason,
                numbers,
            )
        )
    return out


def separation(ev: Evidence, rules: Claims) -> list[Row]:
    """F3b: constraint -> last-token contributions are larger for correct answers, at middle
    layers (per-layer Mann-Whitney tests, Holm-corrected)."""
    out = []
    for model in ev.studied("mllm"):
        where, rows = _correctness_rows(ev, model)
        c = rows.get("constraint_to_last")
        numbers: dict = {}
        if not c or "mean" not in c.get("incorrect", {}):
            verdict, reason, value = INCONCLUSIVE, f"{where}: no incorrect answers", "n/a"
        else:
            n_bad = c["incorrect"]["n"]
            p = holm(c["p_value"])
            n_layers = len(p)
            significant = [
                layer
                for layer in range(n_layers)
                if edges.below("p_value", f"{model} l{layer} Holm p", p[layer], rules.alpha)
            ]
            better = [
                layer
                for layer in significant
                if edges.above(
                    "ie",
                    f"{model} l{layer} correct - incorrect contribution",
                    c["correct"]["mean"][layer] - c["incorrect"]["mean"][layer],
                    0.0,
                )
            ]
            worse = [layer for layer in significant if layer not in better]
            numbers = {"n_incorrect": n_bad, "n_correct": c["correct"]["n"]}
            value = (
                f"correct>incorrect at {_layers(better)}, incorrect>correct at "
                f"{_layers(worse)} (n={c['correct']['n']}/{n_bad})"
            )
            n_good = c["correct"]["n"]
            counts = f"{where}, {n_good} correct / {n_bad} incorrect"
            if min(n_bad, n_good) < rules.min_errors:
                verdict = INCONCLUSIVE
                reason = f"{counts}: a class < {rules.min_errors}"
            else:
                middle = [x for x in better if band(x, n_layers, rules) == "middle"]
                verdict = SUPPORTED if middle else NOT_SUPPORTED
                reason = (
                    f"{counts}; Holm-significant correct>incorrect middle layers: {_layers(middle)}"
                )
        out.append(
            Row(
                "F3b",
                model,
                "constraint -> last-token contributions are larger for correct "
                "answers at middle layers",
                "separates most at layers 16-17 of 32",
                "per-layer Mann-Whitney p, Holm-corrected",
                value,
                f"a middle layer with correct > incorrect at Holm p < {rules.alpha}; "
                f">= {rules.min_errors} answers in each class",
                verdict,
                reason,
                numbers,
            )
        )
    return out


def _layers(layers: list[int]) -> str:
    return ",".join(f"l{x}" for x in layers) or "none"


def prediction(ev: Evidence, rules: Claims) -> list[Row]:
    """F4: the mid-layer contribution predicts correctness (AUROC above chance), confidence
    predicts it better (DeLong: AUROC difference below 0)."""
    out = []
    for model in ev.studied("mllm"):
        where, rows = _correctness_rows(ev, model)
        fp = rows.get("failure_prediction", {})
        n_bad = fp.get("evaluation", {}).get("n_incorrect", 0)
        n_good = fp.get("evaluation", {}).get("n", 0) - n_bad
        counts = f"{where}, {n_good} correct / {n_bad} incorrect evaluated"
        numbers: dict = {"n_incorrect_evaluated": n_bad}
        if "contribution" not in fp:
            verdict, value = INCONCLUSIVE, "n/a"
            reason = f"{counts}: {fp.get('skipped', 'failure prediction not computed')}"
        else:
            con, conf, diff = fp["contribution"], fp["confidence"], fp["difference"]
            numbers |= {"auroc_contribution": con["auroc"], "auroc_confidence": conf["auroc"]}
            value = (
                f"contribution {con['auroc']:.3f} [{con['ci95'][0]:.3f}, "
                f"{con['ci95'][1]:.3f}] (l{fp['layer']}), confidence {conf['auroc']:.3f} "
                f"[{conf['ci95'][0]:.3f}, {conf['ci95'][1]:.3f}]"
            )
            predicts = edges.above(
                "auroc", f"{model} contribution AUROC CI low", con["ci95"][0], rules.chance_auroc
            )
            conf_better = edges.below(
                "auroc", f"{model} AUROC difference CI high", diff["ci95"][1], 0.0
            )
            if min(n_bad, n_good) < rules.min_errors:
                verdict = INCONCLUSIVE
                reason = f"{counts}: a class < {rules.min_errors}"
            else:
                verdict = SUPPORTED if predicts and conf_better else NOT_SUPPORTED
                reason = (
                    f"{counts}; contribution {'above' if predicts else 'not above'} chance; "
                    f"confidence {'better' if conf_better else 'not better'} "
                    f"(difference CI [{diff['ci95'][0]:.3f}, {diff['ci95'][1]:.3f}])"
                )
        out.append(
            Row(
                "F4",
                model,
                "contribution predicts correctness; confidence predicts it better",
                "AUROC about 0.63 vs 0.76 (secondary, unverified)",
                "AUROC on the held-out half (layer chosen on the other half), bootstrap CI",
                value,
                f"contribution's CI above {rules.chance_auroc} and the difference's CI "
                f"below 0; >= {rules.min_errors} answers in each class",
                verdict,
                reason,
                numbers,
            )
        )
    return out


def _judged_k(way: dict) -> int:
    """The index of the k an ablation rule reads: the largest k below all visual tokens (at
    k = all, every ranking knocks out the same set)."""
    below = [i for i, k in enumerate(way["k"]) if k < way.get("n_visual", k + 1)]
    return below[-1] if below else len(way["k"]) - 1


def ablation(ev: Evidence, rules: Claims) -> list[Row]:
    """The causal check of F3: knocking out the top-ranked visual tokens lowers p(answer)
    more than knocking out as many random ones, at the largest k, for every way."""
    out = []
    for model in ev.studied("mllm"):
        splits = ev.ablation.get(model, {}).get("splits", {}).get("all", {})
        parts, numbers = [], {}
        for way in sorted(k for k in splits if isinstance(splits[k], dict) and "top" in splits[k]):
            a = splits[way]
            i = _judged_k(a)
            p = holm(a["p_value_top_vs_random"])[i]
            top, rnd = a["top"]["drop_p_answer"][i], a["random"]["drop_p_answer"][i]
            k = a["k"][i]
            numbers |= {f"{way}/top_drop": top, f"{way}/random_drop": rnd}
            ok = edges.above("ie", f"{model} {way} top - random drop", top - rnd, 0.0) & (
                edges.below("p_value", f"{model} {way} top vs random Holm p", p, rules.alpha)
            )
            parts.append(
                (
                    SUPPORTED if ok else NOT_SUPPORTED,
                    f"{way} k={k}: drop {top:.3f} vs random {rnd:.3f}, Holm p={p:.3g}",
                )
            )
        verdict, reason = combine(parts)
        out.append(
            Row(
                "Ablation",
                model,
                "the top-contributing visual tokens matter more than random ones",
                "not in the paper (our causal check of F3)",
                "drop in p(answer) at the largest k below all tokens: top-ranked vs random",
                ", ".join(f"{k}={v:.3g}" for k, v in numbers.items()) or "n/a",
                f"top drop > random drop with Holm p < {rules.alpha} (over k), every way",
                verdict,
                reason,
                numbers,
            )
        )
    return out


def content(ev: Evidence, rules: Claims) -> list[Row]:
    """F3 against the image's content: where the renderer's masks exist (toy worlds), Eq. 1's
    top-k must not miss the tokens that matter, i.e. knocking out the k patches the object
    covers most must not lower p(answer) significantly more than knocking out Eq. 1's top k
    (largest k below all tokens, Holm over k, every way), and Eq. 1's top k must matter at all
    (its drop significantly above random k's, as the Ablation row): without that, two knockouts
    that both do nothing would "agree" and the rule would hold on random weights (it did, on
    the negative controls). Reported beside: the share of Eq. 1's top k that are object
    patches."""
    out = []
    for model in ev.studied("mllm"):
        splits = ev.ablation.get(model, {}).get("splits", {}).get("all", {})
        ways = sorted(k for k in splits if isinstance(splits[k], dict) and "mask" in splits[k])
        parts, numbers = [], {}
        for way in ways:
            a = splits[way]
            i = _judged_k(a)
            p = holm(a["p_value_mask_vs_top"])[i]
            top, mask = a["top"]["drop_p_answer"][i], a["mask"]["drop_p_answer"][i]
            overlap = a["mask_overlap"][i]
            numbers |= {
                f"{way}/top_drop": top,
                f"{way}/mask_drop": mask,
                f"{way}/mask_overlap": overlap,
            }
            missed = edges.above("ie", f"{model} {way} mask - top drop", mask - top, 0.0) & (
                edges.below("p_value", f"{model} {way} mask vs top Holm p", p, rules.alpha)
            )
            p_rnd = holm(a["p_value_top_vs_random"])[i]
            rnd = a["random"]["drop_p_answer"][i]
            matters = edges.above("ie", f"{model} {way} top - random drop", top - rnd, 0.0) & (
                edges.below("p_value", f"{model} {way} top vs random Holm p", p_rnd, rules.alpha)
            )
            parts.append(
                (
                    SUPPORTED if matters and not missed else NOT_SUPPORTED,
                    f"{way} k={a['k'][i]}: object patches {mask:.3f} vs Eq. 1 top {top:.3f}, "
                    f"Holm p={p:.3g}; top vs random {rnd:.3f}, Holm p={p_rnd:.3g}; overlap "
                    f"{overlap:.2f}",
                )
            )
        verdict, reason = combine(parts) if parts else (INCONCLUSIVE, "no object masks")
        out.append(
            Row(
                "F3-content",
                model,
                "Eq. 1's top-ranked visual tokens are the ones that matter, not just salient",
                "not in the paper (a content baseline for F3)",
                "drop in p(answer) at the largest k below all tokens: the object's k patches "
                "(renderer's mask) vs Eq. 1's top k",
                ", ".join(f"{k}={v:.3g}" for k, v in numbers.items()) or "n/a",
                f"top drop > random drop and not (object-patch drop > top drop), each at Holm "
                f"p < {rules.alpha}, every way",
                verdict,
                reason,
                numbers,
            )
        )
    return out


def transfer_layer(ev: Evidence, rules: Claims) -> list[Row]:
    """F3's "at the first attention layer": blocking every visual token from the visual
    constraint in one layer at a time, the first layer's knockout lowers p(answer)
    significantly (Holm over layers) and most. Blocked from every later token instead, a model
    whose last token reads the image itself would pass too (the decoy control does): that
    curve (`per_layer_all`) is reported beside it."""
    out = []
    for model in ev.studied("mllm"):
        curve = ev.ablation.get(model, {}).get("splits", {}).get("all", {}).get("per_layer")
        numbers: dict = {}
        if not curve:
            verdict, reason, value = (
                INCONCLUSIVE,
                "no per-layer blocking (ablation.per_layer)",
                "n/a",
            )
        else:
            drops, p = curve["drop_p_answer"], curve["p_holm_drop_positive"]
            worst = edges.best("ie", f"{model} largest drop", list(range(len(drops))), drops)
            numbers = {"worst_layer": worst, "drop_first_layer": drops[0], "n": curve["n"]}
            value = ", ".join(f"l{i}: {d:.3f}" for i, d in enumerate(drops)) + f" (n={curve['n']})"
            if curve["n"] < rules.min_traced:
                verdict, reason = INCONCLUSIVE, f"{curve['n']} questions < {rules.min_traced}"
            else:
                ok = worst == 0 and edges.below(
                    "p_value", f"{model} first layer Holm p", p[0], rules.alpha
                )
                verdict = SUPPORTED if ok else NOT_SUPPORTED
                reason = f"largest drop at l{worst}; first layer's Holm p={p[0]:.3g}"
            every = ev.ablation[model]["splits"]["all"].get("per_layer_all")
            if every:
                d = every["drop_p_answer"]
                reason += (
                    f"; blocked from every later token instead: l0 {d[0]:.3f}, largest at "
                    f"l{max(range(len(d)), key=d.__getitem__)}"
                )
        out.append(
            Row(
                "F3-layer",
                model,
                "the image's information reaches the text at the first attention layer",
                "visual tokens -> constraint at the first self-attention layer",
                "drop in p(answer) with every visual token blocked from the visual constraint in "
                "one layer only",
                value,
                f"the first layer's drop is the largest and > 0 at Holm p < {rules.alpha}",
                verdict,
                reason,
                numbers,
            )
        )
    return out


def rows(ev: Evidence, rules: Claims) -> list[Row]:
    return (
        concentration(ev, rules)
        + transfer_layer(ev, rules)
        + separation(ev, rules)
        + prediction(ev, rules)
        + ablation(ev, rules)
        + content(ev, rules)
    )
