"""Per-question localisation at the edit site, for the test of Hase et al. (2023, "Does
localization inform editing?"): does a question's causal-tracing effect at a layer predict how
well editing that layer works for that question? (docs/method.md §7, F6.)

MultEdit writes at the visual constraint's last token, so the tracing effect read here is the
IE of restoring one site `kind` (the MLP by default, window 1 so each layer stands alone) at that
token, per layer, for the model's own top-1 answer on the clean prompt: where the model's
current answer is computed. The corruption is the configured one at the visual constraint, as
in the main traces (`tracing.study`). No question is screened out (an edit target need not be
answered correctly); `p_clean` and `p_corr` are recorded so a reader can.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from mmtrace import config
from mmtrace.dataset import QuestionRecord
from mmtrace.models.encoding import AlignmentError, encode_record, question_text
from mmtrace.models.loading import LoadedModel
from mmtrace.seeding import derive
from mmtrace.tracing import gate, question
from mmtrace.tracing.study import corruption_pools, settings_from

log = logging.getLogger(__name__)


def constraint_effects(
    loaded: LoadedModel,
    records: list[QuestionRecord],
    templates: config.Prompts,
    data_dir: Path,
    cfg: config.Tracing,
    seed: int,
    world: list[QuestionRecord],
    kind: str = "mlp",
    window: int = 1,
) -> dict:
    """{kind, window, records: [{qid, answer_token_id, p_clean, p_corr, ie: [layer]}], skipped}:
    the IE at the visual constraint's last token per layer, one record per question of
    `records` in order (a question whose constraint cannot be aligned is skipped and counted).
    `world`: every question, whose entity names the natural corruption draws from."""
    if not loaded.is_multimodal:
        raise ValueError(f"{loaded.name}: the edit site is the visual constraint of an MLLM")
    pools = corruption_pools(world)
    settings = replace(settings_from(cfg, seed), kinds=(kind,))
    out, skipped = [], 0
    for rec in records:
        try:
            enc = encode_record(loaded, rec, templates, data_dir)
        except AlignmentError as exc:
            log.warning("localisation: skipped %s", exc)
            skipped += 1
            continue
        own = replace(settings, seed=derive(seed, "noise", rec.qid))
        pool = [p for p in pools["visual"] if p != rec.subject and p not in rec.answers]
        prep = question.prepare(
            loaded, enc, templates.mllm, question_text(rec, True), "visual", own, pool=pool
        )
        site = enc.span_positions["visual"][-1]
        results, how = gate.trace(
            loaded.model,
            enc.inputs,
            prep.corrupted,
            prep.answer_id,
            (kind,),
            [window],
            [site],
            own.window_style,
            batch_size=own.batch_size,
            noise=prep.noise,
            passes=prep.passes,
            exact=own.exact,
        )
        result = results[(kind, window)]
        out.append(
            {
                "qid": rec.qid,
                "position": site,
                "answer_token_id": prep.answer_id,
                "p_clean": prep.p_clean,
                "p_corr": prep.p_corr,
                "corruption_fit": prep.fit,
                "ie": result.ie[0].tolist(),
                "exactness": how.record(),
            }
        )
    return {"kind": kind, "window": window, "records": out, "skipped": skipped}
