"""The compiled controls, built from the tiny planted world.

The positive answers every single-constraint question about a non-held-out entity, its ground
truth is what forward hooks observe, and restoring its storage site alone (the visual
constraint's layer-1 MLP output) restores the answer. The negative controls `decoy` and
`elsewhere` answer the same questions by other routes; `cut` answers nothing. For every variant,
every trace cell its ground truth declares (must restore / must stay quiet) holds under the exact
reference tracer and the config's corruption.

What each test catches (the broken build it fails on) is said in its docstring."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from mmtrace.config import Editing, Prompts, Tracing
from mmtrace.dataset import load_questions
from mmtrace.evaluate import score_questions
from mmtrace.models import compiled_routes
from mmtrace.models.compiled import compile_llava
from mmtrace.models.compiled_vision import CODE_DIMS, code_index
from mmtrace.models.encoding import encode_record
from mmtrace.models.hooks import capture
from mmtrace.models.loading import load
from mmtrace.models.lookup import locate
from mmtrace.seeding import derive
from mmtrace.toyworld.planted import BANDS
from mmtrace.tracing import question
from mmtrace.tracing.corruption import corrupt_ids
from mmtrace.tracing.reference import trace_reference
from mmtrace.tracing.study import corruption_pools, settings_from
from mmtrace.validation.routes import route_positions

NEGATIVES = ("cut", "decoy", "elsewhere")
ANSWERING = ("positive", "decoy", "elsewhere")


@pytest.fixture(scope="module")
def controls(compiled, planted, trained, tmp_path_factory):
    """variant -> (loaded model, ground truth); the positive is the session's `compiled`."""
    loaded, truth, records, entities = compiled
    out = {"positive": (loaded, truth)}
    for variant in NEGATIVES:
        d = tmp_path_factory.mktemp(variant)
        t = compile_llava(
            records, entities, trained["tok"], Prompts().mllm, 48, 12, 0, d, variant=variant
        )
        out[variant] = (load(d, "mllm", name=variant), t)
    return out


def _known(records):
    return [r for r in records if r.constraint_type == "single" and not r.held_out]


def _prepared(loaded, rec, planted, records):
    """The question's clean and corrupted runs as the workflow makes them (config `tracing`:
    the `natural` corruption of the visual constraint, drawn from the world's names)."""
    cfg = Tracing()
    assert cfg.corruption == "natural"
    enc = encode_record(loaded, rec, Prompts(), planted)
    own = replace(settings_from(cfg, 0), seed=derive(0, "noise", rec.qid))
    pool = [
        p for p in corruption_pools(records)["visual"] if p != rec.subject and p not in rec.answers
    ]
    prep = question.prepare(loaded, enc, Prompts().mllm, rec.question, "visual", own, pool=pool)
    return enc, prep


def _roles(enc) -> list[str]:
    """The ground truth's role of every traced position (`compiled_routes.ROLES`), by the
    validation's own reading of a trace's rows."""
    positions = enc.positions_to_trace()
    rows = route_positions(
        {
            "positions": positions,
            "constraint_positions": enc.span_positions,
            "tokens": [enc.tokens[p] for p in positions],
        }
    )
    role = ["other"] * len(positions)
    for name in ("constraint_last", "last_token"):
        for i in rows[name]:
            role[i] = name
    return role


def _trace_all(loaded, enc, prep, windows) -> dict:
    """(kind, window) -> IE [positions, layers] by the reference tracer (one forward per cell)."""
    return {
        (kind, w): trace_reference(
            loaded.model,
            enc.inputs,
            prep.corrupted,
            prep.answer_id,
            kind,
            enc.positions_to_trace(),
            window=w,
        ).ie.numpy()
        for kind in compiled_routes.KINDS
        for w in windows
    }


def _violations(ies: dict, roles: list[str], p_clean: float, p_corr: float, expected) -> list:
    """Where a trace breaks a ground truth's `expected` cells (and its corruption's drop)."""
    bad = []
    restore, quiet = expected["restore_share"], expected["quiet_share"]
    drop = p_clean - p_corr
    if expected["corruption_drops_answer"] and drop < restore * p_clean:
        bad.append(("drop", drop))
    if not expected["corruption_drops_answer"] and abs(drop) > quiet * p_clean:
        bad.append(("no drop", drop))
    for (kind, w), ie in ies.items():
        cells = expected["windows"][str(w)][kind]
        must = {tuple(c) for c in cells["restore"]}
        calm = {tuple(c) for c in cells["quiet"]}
        for i, role in enumerate(roles):
            for layer in range(ie.shape[1]):
                value = float(ie[i, layer])
                if (role, layer) in must and value < restore * (p_clean - p_corr):
                    bad.append((kind, w, role, layer, "restore", value))
                if (role, layer) in calm and abs(value) > quiet * p_clean:
                    bad.append((kind, w, role, layer, "quiet", value))
                assert (role, layer) in must | calm, "every cell is declared"
    return bad


@pytest.mark.parametrize("variant", ANSWERING)
def test_each_answering_variant_answers_the_planted_questions(controls, compiled, planted, variant):
    """>= 90% of the single-constraint questions about known entities (all of them, in fact),
    held-out entities recognised but not known. Fails on a variant whose reader, storage or read
    head does not find the entity (e.g. the decoy's reader flag on a token the prompt lacks)."""
    loaded, truth = controls[variant]
    records = compiled[2]
    single = [r for r in records if r.constraint_type == "single"]
    rows = score_questions(loaded, single, Prompts(), planted, 32)
    known = [row for row, r in zip(rows, single, strict=True) if not r.held_out]
    assert np.mean([row["correct"] for row in known]) >= 0.9
    assert min(row["p_answer"] for row in known) > 0.99
    unknown = [row for row, r in zip(rows, single, strict=True) if r.held_out]
    assert max(row["p_answer"] for row in unknown) < 0.01  # long tail: recognised, not known
    assert truth["planted_visual_tokens"] == [12, 13, 14, 15]
    assert truth["variant"] == variant and truth["layers"] == 8
    assert truth["control"] == ("positive" if variant == "positive" else "negative")


def test_cutting_the_route_removes_every_answer(controls, compiled, planted):
    loaded, truth = controls["cut"]
    single = [r for r in compiled[2] if r.constraint_type == "single"]
    rows = score_questions(loaded, single, Prompts(), planted, 32)
    assert max(row["p_answer"] for row in rows) < 0.01
    assert truth["route_cut"] is True and truth["routes"]["mlp"] == {}
    assert not any(c["restore"] for c in truth["expected"]["windows"]["1"].values())


def test_restoring_the_storage_mlp_alone_restores_the_answer(compiled, planted):
    """The positive's storage site (the visual constraint's layer-1 MLP output, window 1)
    restores >= 0.9 of p_clean - p_corr on its own, as ROME's traces on real LMs do. Fails when
    the read head keys on anything the MLP does not write (the old build keyed it on the
    layer-0 `has` flag: IE 0 here)."""
    loaded, truth, records, _ = compiled
    site = truth["storage"]
    assert site == {"kind": "mlp", "layer": 1, "position": "constraint_last"}
    for rec in _known(records)[::7][:5]:
        enc, prep = _prepared(loaded, rec, planted, records)
        gap = prep.p_clean - prep.p_corr
        assert gap > 0.99
        vc = enc.span_positions["visual"][-1]
        res = trace_reference(
            loaded.model, enc.inputs, prep.corrupted, prep.answer_id, "mlp", [vc], 1, layers=[1]
        )
        assert float(res.ie[0, 0]) >= 0.9 * gap


@pytest.mark.parametrize("variant", ("positive", *NEGATIVES))
def test_every_declared_cell_holds_under_the_reference_tracer(controls, compiled, planted, variant):
    """Every (role, layer) cell of every kind and window (config `validation.windows`) that the
    ground truth says must restore restores >= 0.9 of the gap, every cell it says must stay quiet
    moves p(answer) by <= 0.05 of p_clean, and the corruption drops p(answer) or leaves it as
    declared. The same traces break every other variant's declaration, so the check tells the
    routes apart (checked: a hidden-state route derived one layer too long fails it, as does
    the positive keying its read on the layer-0 `has` flag)."""
    loaded, truth = controls[variant]
    records = compiled[2]
    expected = truth["expected"]
    assert expected["window_style"] == Tracing().window_style == "centered"
    windows = [int(w) for w in expected["windows"]]
    assert windows == [1, 3]
    others = {
        v: compiled_routes.truth_of(v, truth["layers"], windows, "centered")["expected"]
        for v in compiled_routes.VARIANTS
    }
    assert others[variant] == expected
    for rec in _known(records)[:1]:
        enc, prep = _prepared(loaded, rec, planted, records)
        roles = _roles(enc)
        assert roles.count("constraint_last") == 1 and roles[-1] == "last_token"
        ies = _trace_all(loaded, enc, prep, windows)
        assert _violations(ies, roles, prep.p_clean, prep.p_corr, expected) == []
        for other, exp in others.items():
            if exp != expected:
                assert _violations(ies, roles, prep.p_clean, prep.p_corr, exp), other


def test_a_name_over_the_constraint_vetoes_every_reader(controls, compiled, planted):
    """The `natural` corruption writes another entity's name over the constraint, and a name
    may end in a reader's noun ("Senbix fruit" over "this fruit"), or the noun may recur later
    ("This mountain is part of the mountain range"): a reader the corruption leaves in place,
    which would keep the answer (measured before the veto: 126 of the default planted world's 764
    known single-constraint questions). A name before a reader vetoes its storage (positive) or
    the copy from it (elsewhere), so the corruption drops the answer there too, and restoring
    the storage site, at either row of a recurring constraint token, restores it. Fails without
    the veto."""
    records = compiled[2]
    vc_tokens = set(controls["positive"][1]["visual_constraint_tokens"])
    cases = {"recurring": [], "reader noun in the name": []}
    loaded = controls["positive"][0]
    for rec in _known(records):  # the tokens the corruption writes (as `_prepared` draws them)
        enc = encode_record(loaded, rec, Prompts(), planted)
        pool = [p for p in corruption_pools(records)["visual"] if p != rec.subject]
        seed = derive(0, "noise", rec.qid)
        ids, _, _ = corrupt_ids(
            enc,
            loaded,
            Prompts().mllm,
            rec.question,
            "visual",
            "natural",
            [p for p in pool if p not in rec.answers],
            seed,
        )
        written = loaded.tokenizer.convert_ids_to_tokens(ids[0])
        if _roles(enc).count("constraint_last") == 2:
            cases["recurring"].append(rec)
        elif written[enc.span_positions["visual"][-1]] in vc_tokens:
            cases["reader noun in the name"].append(rec)
        if all(cases.values()):
            break
    assert all(cases.values()), {k: len(c) for k, c in cases.items()}
    for variant in ("positive", "elsewhere"):
        loaded, truth = controls[variant]
        site = truth["storage"]
        for rec in [c[0] for c in cases.values()]:
            enc, prep = _prepared(loaded, rec, planted, records)
            gap = prep.p_clean - prep.p_corr
            assert prep.p_clean > 0.99 and gap >= 0.9 * prep.p_clean, (variant, rec.qid)
            roles = _roles(enc)
            rows = [i for i, role in enumerate(roles) if role == site["position"]]
            positions = [enc.positions_to_trace()[i] for i in rows]
            ie = trace_reference(
                loaded.model,
                enc.inputs,
                prep.corrupted,
                prep.answer_id,
                site["kind"],
                positions,
                1,
                layers=[site["layer"]],
            ).ie
            assert float(ie.min()) >= 0.9 * gap, (variant, rec.qid)


def test_the_decoy_finds_nothing_at_the_constraint(controls, compiled, planted):
    """The decoy answers from its last token alone: corrupting the visual constraint leaves
    p(answer) where it was, and no restoration at the constraint moves it. Fails if the answer
    passes through the constraint (checked: a decoy whose constraint reads the image and whose
    last token copies the code from it, as `elsewhere`'s does). A constraint that read the image
    with nothing reading it would pass, rightly: tracing measures effects, not contents."""
    loaded, _ = controls["decoy"]
    records = compiled[2]
    for rec in _known(records)[::9][:4]:
        enc, prep = _prepared(loaded, rec, planted, records)
        assert prep.p_clean > 0.99 and abs(prep.p_clean - prep.p_corr) < 1e-4
        vc = enc.span_positions["visual"][-1]
        for kind in compiled_routes.KINDS:
            for w in (1, 3):
                ie = trace_reference(
                    loaded.model, enc.inputs, prep.corrupted, prep.answer_id, kind, [vc], w
                ).ie
                assert float(ie.abs().max()) < 1e-4, (kind, w)


def test_elsewhere_transfers_to_the_constraint_but_stores_at_the_last_token(
    controls, compiled, planted
):
    """`elsewhere`: restoring the constraint's layer-0 attention output restores the answer
    (the transfer), restoring its MLP output at any layer and window restores nothing (no
    storage there); the last token's layer-1 MLP restores it. Fails if the answer depends on
    what the constraint's MLP writes (checked: storage units firing at the constraint and a read
    head copying from there, the positive's route) or if the last token does not take the
    entity from the constraint. Storage units that fired at the constraint with nothing reading
    them would pass here (no effect to trace) and fail the hooks test."""
    loaded, truth = controls["elsewhere"]
    assert truth["storage"] == {"kind": "mlp", "layer": 1, "position": "last_token"}
    assert truth["transfer"] == {"kind": "attn", "layer": 0, "position": "constraint_last"}
    records = compiled[2]
    for rec in _known(records)[::9][:4]:
        enc, prep = _prepared(loaded, rec, planted, records)
        gap = prep.p_clean - prep.p_corr
        assert gap > 0.99
        vc, last = enc.span_positions["visual"][-1], len(enc.input_ids) - 1
        args = (loaded.model, enc.inputs, prep.corrupted, prep.answer_id)
        attn = trace_reference(*args, "attn", [vc], 1, layers=[0]).ie
        assert float(attn[0, 0]) >= 0.9 * gap
        for w in (1, 3):
            mlp = trace_reference(*args, "mlp", [vc], w).ie
            assert float(mlp.abs().max()) <= 0.05 * prep.p_clean, w
        stored = trace_reference(*args, "mlp", [last], 1, layers=[1]).ie
        assert float(stored[0, 0]) >= 0.9 * gap


def test_the_routes_are_derived_from_the_chains():
    """The declared cells follow from the route by rule: the positive's hand-checked route and
    window-3 cells (centred: layers l-1..l+1), and a chain that runs backwards is refused."""
    t = compiled_routes.truth_of("positive", 8, [1, 3], "centered")
    assert t["routes"] == {
        "mlp": {"constraint_last": [1], "last_token": [2]},
        "attn": {"constraint_last": [0], "last_token": [2]},
        "hidden": {"constraint_last": [0, 1], "last_token": [2, 3, 4, 5, 6, 7]},
    }
    w3 = t["expected"]["windows"]["3"]["mlp"]["restore"]
    assert w3 == [["constraint_last", 0], ["constraint_last", 1], ["constraint_last", 2]] + [
        ["last_token", 1],
        ["last_token", 2],
        ["last_token", 3],
    ]
    for v in compiled_routes.VARIANTS:
        expected = compiled_routes.truth_of(v, 8, [1, 3], "centered")["expected"]
        for cells in expected["windows"].values():
            for c in cells.values():  # every (role, layer) cell is declared, once
                assert len(c["restore"]) + len(c["quiet"]) == 3 * 8
    e = compiled_routes.truth_of("elsewhere", 8, [1], "centered")["routes"]["hidden"]
    assert e == {"constraint_last": [0], "last_token": [1, 2, 3, 4, 5, 6, 7]}
    backwards = (
        compiled_routes.Step("storage", "mlp", 1, "constraint_last"),
        compiled_routes.Step("transfer", "attn", 0, "constraint_last"),
    )
    with pytest.raises(ValueError, match="forward"):
        compiled_routes.routes(backwards, 8)


@pytest.mark.parametrize("variant", ANSWERING)
def test_the_ground_truth_route_is_what_hooks_observe(controls, compiled, planted, variant):
    """Forward hooks see the route: the code written by layer-0 attention only at the reader
    (the constraint, or the decoy's last token), the facts written by the storage MLP only at the
    storage position (with the `stored` flag), the answer written at the last token, and layers
    3-7 empty."""
    loaded, truth = controls[variant]
    records, entities = compiled[2], compiled[3]
    lay = {k: slice(*v) for k, v in truth["layout"].items()}
    attrs = {e["id"]: e["attrs"] for e in entities}
    blocks = locate(loaded.model)
    n = truth["layers"]
    position = {"constraint_last": None, "last_token": None}
    for rec in _known(records)[:6]:
        enc = encode_record(loaded, rec, Prompts(), planted)
        vc, last = enc.span_positions["visual"][-1], len(enc.input_ids) - 1
        position.update(constraint_last=vc, last_token=last)
        with (
            torch.no_grad(),
            capture(blocks, "attn", range(n)) as attn,
            capture(blocks, "mlp", range(n)) as mlp,
        ):
            loaded.model(**enc.inputs)
        # every write is in units of the residual scale (compiled.py's docstring)
        attn = {i: a / truth["residual_scale"] for i, a in attn.items()}
        mlp = {i: m / truth["residual_scale"] for i, m in mlp.items()}
        want = torch.zeros(CODE_DIMS)
        for attr in BANDS:
            want[code_index(attr, attrs[rec.entity_id][attr])] = 1.0
        # transfer: layer-0 attention writes the entity's code at the reader, at no position
        # after the image but ones of the reader's token
        reader = position[truth["transfer"]["position"]]
        got = attn[0][0, :, lay["ent"]]
        torch.testing.assert_close(got[reader], want, atol=1e-3, rtol=0)
        others = [
            p
            for p in enc.positions_to_trace()
            if p != reader and enc.tokens[p] != enc.tokens[reader]
        ]
        assert got[others].abs().max() < 1e-3
        # storage: the layer-1 MLP writes the category, slots and `stored` at its position
        store = position[truth["storage"]["position"]]
        assert mlp[1][0, store, lay["cat"]].max() > 0.99
        assert mlp[1][0, store, lay["slot"]].max() > 0.99
        assert mlp[1][0, store, lay["stored"]].item() > 0.99
        elsewhere = [  # the decoy's ":" of "USER:" reads and stores too (before the question)
            p
            for p in enc.positions_to_trace()
            if p != reader and enc.tokens[p] != enc.tokens[store]
        ]
        assert mlp[1][0, elsewhere][:, lay["stored"]].abs().max() < 1e-3
        if variant == "elsewhere":  # the constraint got the code but stores nothing
            assert mlp[1][0, vc, lay["slot"]].abs().max() < 1e-3
        assert mlp[0].abs().max() == 0
        assert all(mlp[i].abs().max() == 0 and attn[i].abs().max() == 0 for i in range(3, n))
        if truth["read"] is not None and truth["read"]["layer"] == 2:
            assert attn[2][0, last, lay["slot"]].max() > 0.99
        assert mlp[2][0, last, lay["ans"]].max() > 0.99


def test_knocking_out_the_planted_mask_removes_the_answer(compiled, planted):
    """Ground truth for the ablation's content ranking: the compiled model reads the entity
    only from the code strip, so mean-ablating the mask's 4 patches removes every answer, and
    Eq. 1's top 4 at the constraint are exactly those patches (overlap 1)."""
    from mmtrace.config import Ablation, Attention
    from mmtrace.transfer import study

    loaded, _, records, _ = compiled
    single = _known(records)[:4]
    scores = {r.qid: {"correct": True} for r in single}
    cfg = Ablation(ways=["mean"], random_draws=2, mean_images=8, fractions=[0.25])
    images = study.mean_image_files(records, planted, cfg.mean_images)
    out = study.ablation_records(
        loaded, single, scores, Prompts(), planted, Attention(), cfg, images, seed=1
    )
    for r in out["records"]:
        assert r["ks"] == [4] and r["mask_overlap"] == [1.0]
        assert r["mean"]["mask"]["correct"] == [0.0] and r["p_clean"] > 0.99
        assert r["mean"]["bottom"]["correct"] == [1.0]


def test_multedit_inserts_long_tail_facts_at_the_storage_layer(compiled, planted, repo_root):
    """MultEdit with config.yaml's settings for toy-llava-compiled (layer 1, 40 steps of lr 0.5)
    inserts held-out entities' facts with efficacy >= 0.9. Fails if the storage units of
    held-out entities write nothing the read head keys on (the edited value is not read:
    measured, efficacy 0.002, chance, when they write no `stored` flag), or if the edit layer is
    not the storage layer."""
    import yaml

    from mmtrace.config import validate
    from mmtrace.editing import study

    loaded, truth, records, _ = compiled
    cfg = validate(yaml.safe_load((repo_root / "config.yaml").read_text()), "config.yaml")
    settings = cfg["models"]["toy-llava-compiled"]["settings"]["editing"]
    cfg = Editing(
        **{**cfg["editing"], **settings, "unrelated": 4, "neighbours": 1, "renderings": 1}
    )
    assert cfg.layer == truth["storage"]["layer"] and cfg.steps == 40
    targets = study.cases("long_tail", records, {})[:3]
    methods = {"multedit": study.method_table(cfg)["multedit"]}
    out = study.run_edits(
        loaded, "long_tail", targets, records, Prompts(), planted, cfg, 3, methods
    )
    eff = [r["methods"]["multedit"]["efficacy"] for r in out["records"]]
    assert len(eff) == 3 and min(eff) >= 0.9, eff


def test_the_residual_scale_changes_no_output(compiled, planted, trained, monkeypatch):
    """The residual scale multiplies every write and every RMSNorm divides it out, so a build at
    unit scale gives the same answer distribution (the scale matters only to methods that act on
    the residual's vectors, such as MultEdit's Adam steps)."""
    from mmtrace.models import compiled as compiled_module
    from mmtrace.models.scoring import last_logits

    loaded, truth, records, entities = compiled
    assert truth["residual_scale"] > 1
    monkeypatch.setattr(compiled_module, "RESIDUAL_SCALE", 1.0)
    unit, _, unit_truth = compiled_module.build(
        records, entities, trained["tok"], Prompts().mllm, 48, 12, seed=0
    )
    assert unit_truth["residual_scale"] == 1.0
    for rec in [r for r in records if r.constraint_type == "single"][:6]:
        enc = encode_record(loaded, rec, Prompts(), planted)
        with torch.no_grad():
            scaled = torch.log_softmax(last_logits(loaded.model, enc.inputs).float(), -1)
            plain = torch.log_softmax(last_logits(unit, enc.inputs).float(), -1)
        torch.testing.assert_close(scaled, plain, atol=1e-4, rtol=0)


def test_an_unknown_variant_is_refused(compiled, trained, tmp_path):
    _, _, records, entities = compiled
    with pytest.raises(ValueError, match="variant"):
        compile_llava(
            records, entities, trained["tok"], Prompts().mllm, 48, 12, 0, tmp_path, variant="x"
        )


def test_the_ground_truth_is_written_beside_the_checkpoint(planted, trained, tmp_path):
    records = load_questions([planted / "known.csv"])
    entities = json.loads((planted / "world.json").read_text())["entities"]
    truth = compile_llava(
        records, entities, trained["tok"], Prompts().mllm, 48, 12, 0, tmp_path, "decoy", [2]
    )
    assert json.loads((tmp_path / "ground_truth.json").read_text()) == truth
    assert list(truth["expected"]["windows"]) == ["2"]
    assert truth["corruption_reaches_route"] is False and truth["route_cut"] is False


def test_the_workflow_step_builds_the_configured_variant(planted, trained, tmp_path):
    """rule compile_mllm's names, bound as the workflow binds them: the variant from
    `toy_training.compiled.<name>`, the windows from `validation.windows`, the style from
    `tracing.window_style`."""
    from types import SimpleNamespace

    from snakemake.iocontainers import Namedlist

    from mmtrace.steps import bind
    from mmtrace.steps.toy_models import compile_mllm

    spaces = {
        "input": {
            "csvs": [str(planted / f"{s}.csv") for s in ("known", "movies", "okvqa", "heldout")],
            "world": str(planted / "world.json"),
            "tokenizer": str(trained["tok"] / "tokenizer.json"),
        },
        "output": {"truth": str(tmp_path / "m" / "ground_truth.json")},
        "params": {
            "prompts": Prompts().model_dump(),
            "image_size": 48,
            "patch": 12,
            "seed": 0,
            "settings": {"variant": "elsewhere"},
            "windows": [1, 3],
            "window_style": "centered",
        },
        "wildcards": {"name": "toy-llava-elsewhere"},
    }
    job = SimpleNamespace(
        rule="compile_mllm",
        threads=1,
        log=[],
        **{k: Namedlist(fromdict=v) for k, v in spaces.items()},
    )
    compile_mllm(**bind(job, compile_mllm))
    truth = json.loads((tmp_path / "m" / "ground_truth.json").read_text())
    assert truth["variant"] == "elsewhere" and truth["control"] == "negative"
    assert list(truth["expected"]["windows"]) == ["1", "3"]
    assert (tmp_path / "m" / "model.safetensors").exists()
