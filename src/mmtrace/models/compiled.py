"""Compiled controls: LLaVAs whose mechanism is set by hand, so every analysis can be scored
against a known ground truth (docs/method.md §4-§7, §12).

A compiled control is a `LlavaForConditionalGeneration` (CLIP tower, projector, 8-layer Llama)
with every weight written here, saved with `save_pretrained` and analysed through exactly the
same code path as the trained models. One code path builds every `variant`
(`mmtrace.models.compiled_routes`, which also derives each variant's ground truth); the positive
(`toy-llava-compiled`), on the planted world (`mmtrace.toyworld.planted`: the code of the asked
entity is drawn only in the bottom row of patches), answers every single-constraint question by
this route:

1. pixels -> code: the vision tower reads the code tiles of the planted patches into 26
   attribute dimensions (shape, colour, background) plus a `planted` flag
   (`mmtrace.models.compiled_vision`); no other visual token carries the code to a reader;
2. layer 0, attention (transfer): at a visual-constraint noun (" building", " director", ...) one
   head attends to the planted visual tokens and copies their code into the `ent` block (and a
   `has` flag) of that position, the visual constraint's last token. Every other position
   attends to BOS, whose values are zero. A second head averages a bag of words over the prompt
   (one dimension per word of the question templates; never the constraint's words or any name)
   and a `name` flag into `named`, which is 0 in every clean prompt and >= 1 / MAX_POSITIONS
   where one of the world's names precedes (`compiled_facts.name_vocabulary`): the `natural`
   corruption writes a name over the constraint, and the name vetoes the reader even where it
   ends in a reader's noun ("Senbix fruit" over "this fruit") or the noun recurs later ("This
   mountain is part of the mountain range"); without the veto the corruption left the answer
   for 126 of the default planted world's 764 known single-constraint questions;
3. layer 1, MLP (storage): one hidden unit per entity fires on the conjunction of its three
   attributes in `ent` (gate = beta * (shape + colour + background - 2.5)) and writes every fact
   of the entity at once (unless vetoed by `named`): the category, a `stored` flag, and for each
   of the category's relations the answer's index in that relation's answer pool, into the
   relation's slot. Held-out entities' units write only the category and the flag: the model
   recognises them and knows no fact about them (long-tail insertion edits these; MultEdit's
   clamp is relative to the MLP's output there, so it must not be 0). Other units of the same
   MLP, one per relation, turn the bag of words at the last token into the relation asked:
   linear filters over the words, found by a linear programme so that every phrasing in the data
   scores >= 1 for its relation and <= -1 for the others;
4. layer 2, attention (read): every position attends to the position whose `stored` flag is set
   and copies its category and slots. The read keys on what the storage MLP writes, so restoring
   that MLP's output alone in a corrupted run restores the answer, as ROME's traces do on real
   LMs. Layer 2, MLP: units per (category, relation, answer) gated by category and relation copy
   the asked relation's slot into an answer vector, which the LM head turns into the answer's
   first token with a logit of `GAIN`;
5. layers 3-7 are empty (the last token's hidden state carries the answer through them), so the
   storage layer 1 is early by the claims' depth bands (1/7 <= 4.5/31, `mmtrace.verdicts.paper`).
Single-constraint questions only: a multi-constraint question's textual constraint names a work
of a decade, which this memory does not hold, so those questions are answered wrongly.

The negative controls change only which position reads and stores:
- `cut`: the layer-0 head's query ignores the visual constraint: nothing reads the image and
  nothing is answered;
- `decoy`: the layer-0 head's reader is the prompt's final token (flagged `end` in its embedding:
  `compiled_facts.end_token`, the ":" of "ASSISTANT:"; the ":" of "USER:" is the same token and
  reads the image too, before the question, where nothing uses it); storage units and answer
  units work at the last token; there is no read head. The visual constraint attends to BOS;
- `elsewhere`: the visual constraint reads the image at layer 0 as in the positive; at layer 1 a
  head at the `end` token attends to the position with `has` (unless vetoed by `named` there)
  and copies `ent`; the storage units
  also need the `end` flag (gate = beta * (code + 2 end - 4.5)), so the facts are stored at the
  last token's layer-1 MLP and nowhere else; its layer-2 MLP answers.

RMSNorm: every embedding carries a constant `ANCHOR` in dimension 0, far larger than any content,
so each normalised residual is the residual times sqrt(D)/ANCHOR up to a relative error of
(|content| / ANCHOR)^2 < 1e-6; weights that read normalised inputs are scaled back by
ANCHOR/sqrt(D). Rotary embeddings: `rope_theta` is 1e12, and queries and keys use only head
dimensions 32-63 (rotated with 96-127, which are zero), whose frequencies are <= 1e-6 per
position: a rotation of at most 1e-4 rad over the prompt, so attention depends on content only.
MLPs are SwiGLU: a unit is `silu(gate) * up`; with `up` constant and `gate` scaled by `BETA`,
silu acts as a ReLU whose off-state leaks at most BETA/2 * exp(-BETA/2) ~ 5e-4.

Residual scale: the weights above are derived with content in units of 1 (a memory value, the
MLP output at the storage site, has entries of 1: norm sqrt(2) for a held-out entity). Every
write into the residual stream (the token embeddings, the projector's output, each attention's
`o_proj` and each MLP's `down_proj`) is then multiplied by `RESIDUAL_SCALE`. The whole residual
is scaled by it, every RMSNorm divides it out (exactly, up to the norm's epsilon), so the
function and the route are unchanged; what changes is the size of the vectors the methods act
on. That matters for MultEdit (§7): Adam moves every coordinate of delta by up to its learning
rate per step, whatever the value's norm, so a step size means something only relative to the
residual's scale. `RESIDUAL_SCALE` puts the memory values (entries of 50) at the scale of the
trained toy models' MLP outputs at their edit site (norms 45-160), the scale for which the
editing settings in config were fixed. Built at unit scale, the same settings move the edited
value's flags far enough that the read head loses the entity (measured on the earlier 4-layer
build, whose read head keyed on `has`: for 16 of 90 held-out facts, docs/method.md §12); the
`coarse` diagnostic variant in config replays that step size.

`ground_truth.json`, written beside the checkpoint, holds the route (its steps, and the route of
every site kind, `mmtrace.models.lookup.SITES`, by position role and layer) and the trace cells
that must and must not restore per window (`compiled_routes.truth_of`); tests compare the route
with what forward hooks observe and every declared cell with the reference tracer.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from mmtrace.config import Validation
from mmtrace.dataset import QuestionRecord
from mmtrace.io import write_json
from mmtrace.models import compiled_facts, compiled_routes, compiled_vision, toy
from mmtrace.models.compiled_facts import Facts
from mmtrace.models.compiled_parts import HEAD_DIM, Layout, scale_residual, set_head
from mmtrace.toyworld.planted import BANDS, planted_tokens

log = logging.getLogger(__name__)

ANCHOR = 1000.0
BETA = 20.0  # gate sharpness of every hand-set MLP unit
GAIN = 25.0  # the answer's logit
SCORE = 40.0  # attention logit of a matched query-key pair
RESIDUAL_SCALE = 50.0  # the residual's content unit (see the module docstring)
QK = slice(HEAD_DIM // 4, HEAD_DIM // 2)  # head dimensions whose rotary frequency is <= 1e-6
LAYERS = 8  # layers 3-7 are empty: the storage layer 1 is early (1/7 of the depth)
DEFAULT_WINDOWS = Validation().windows


def build(
    records: list[QuestionRecord],
    entities: list[dict],
    tokenizer_dir: Path,
    template: str,
    image_size: int,
    patch: int,
    seed: int,
    variant: str = "positive",
    windows: list[int] | None = None,
    window_style: str = "centered",
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor, dict]:
    """The compiled LLaVA of `variant` (`compiled_routes.VARIANTS`), its processor and its
    ground truth (see the module docstring); `windows` and `window_style`: the traces whose
    expected cells the ground truth lists (default: config `validation.windows`)."""
    if variant not in compiled_routes.VARIANTS:
        raise ValueError(f"compiled variant must be one of {compiled_routes.VARIANTS}")
    windows = list(DEFAULT_WINDOWS if windows is None else windows)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    facts = compiled_facts.facts_of(records, entities, tok, template)
    texts = compiled_facts.template_texts(records, template)
    end_id = compiled_facts.end_token(tok, template)
    n_img = (image_size // patch) ** 2
    image_id = tok.convert_tokens_to_ids(tok.image_token)
    # the bag of words (one dimension per voting token) and one relation filter per relation
    bow_ids = compiled_facts.bow_vocabulary(tok, records, texts, facts.vc_ids)
    name_ids = compiled_facts.name_vocabulary(tok, records, texts)
    units = compiled_facts.relation_filters(tok, texts, bow_ids, facts.relations)
    table = {t: i for i, t in enumerate(bow_ids)}
    answers = sorted(set(facts.answer_ids.values()))
    lay = Layout(
        {
            "anchor": 1,
            "code": compiled_vision.CODE_DIMS,
            "planted": 1,
            "ent": compiled_vision.CODE_DIMS,
            "has": 1,
            "stored": 1,
            "vc": 1,
            "end": 1,
            "name": 1,
            "named": 1,
            "sink": 1,
            "bow": len(bow_ids),
            "rel": len(facts.relations),
            "cat": len(facts.categories),
            "slot": facts.slot_offsets[-1],
            "ans": len(answers),
        }
    )
    lay.pad_to(16)  # transformers wants the hidden size divisible by the number of heads
    storage = len(entities)
    extraction = sum(len(p) for p in facts.pools.values())
    d_ff = max(storage + 2 * len(units), extraction)

    text_cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=lay.size,
        intermediate_size=d_ff,
        num_hidden_layers=LAYERS,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=HEAD_DIM,
        max_position_embeddings=toy.MAX_POSITIONS,
        rope_theta=1e12,
        rms_norm_eps=1e-6,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    vision_cfg, vision_state = compiled_vision.tower(image_size, patch)
    cfg = LlavaConfig(
        vision_config=vision_cfg,
        text_config=text_cfg,
        image_token_index=image_id,
        image_seq_length=n_img,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="linear",
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.model.vision_tower.load_state_dict(vision_state)
        compiled_vision.projector(model.model.multi_modal_projector, lay, ANCHOR, patch)
        _language_model(model, lay, tok, facts, table, units, entities, end_id, name_ids, variant)
        scale_residual(model, RESIDUAL_SCALE)
    processor = LlavaProcessor(
        image_processor=toy.image_processor(image_size),
        tokenizer=tok,
        patch_size=patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    truth = {
        "model": f"compiled LLaVA (hand-set weights), variant {variant}",
        "variant": variant,
        "control": "positive" if variant == "positive" else "negative",
        "route_cut": variant == "cut",
        "layers": LAYERS,
        "image_tokens": n_img,
        "planted_visual_tokens": planted_tokens(image_size, patch),
        **compiled_routes.truth_of(variant, LAYERS, windows, window_style),
        "residual_scale": RESIDUAL_SCALE,
        "visual_constraint_tokens": tok.convert_ids_to_tokens(facts.vc_ids),
        "end_token": tok.convert_ids_to_tokens(end_id),
        "relations": facts.relations,
        "categories": facts.categories,
        "entities": len(entities),
        "held_out_facts_stored": False,
        "scope": "single-constraint questions",
        "relation_units": len(units),
        "code": {attr: list(values) for attr, (_row, values) in BANDS.items()},
        "layout": {k: [v.start, v.stop] for k, v in lay.blocks.items()},
    }
    return model, processor, truth


def _language_model(
    model, lay, tok, facts: Facts, table, units, entities, end_id: int, name_ids, variant: str
) -> None:
    lm = model.model.language_model
    d = lay.size
    norm = ANCHOR / math.sqrt(d)  # a weight reading a normalised input multiplies by this
    emb = lm.embed_tokens.weight
    emb[:, lay.at("anchor")] = ANCHOR
    emb[tok.bos_token_id, lay.at("sink")] = 1.0
    for t in facts.vc_ids:
        emb[t, lay.at("vc")] = 1.0
    emb[end_id, lay.at("end")] = 1.0
    for t in name_ids:
        emb[t, lay.at("name")] = 1.0
    for t, i in table.items():
        emb[t, lay.at("bow", i)] = 1.0
    for layer in lm.layers:
        layer.input_layernorm.weight.fill_(1.0)
        layer.post_attention_layernorm.weight.fill_(1.0)
    lm.norm.weight.fill_(1.0)
    qk0, qk1 = QK.start, QK.start + 1
    root = math.sqrt(HEAD_DIM)  # attention divides scores by sqrt(head_dim)
    ent = [lay.at("ent", i) for i in range(compiled_vision.CODE_DIMS)]
    # layer 0, head 0: the reader (the visual constraint; the decoy's last token; nobody when
    # the route is cut) attends to the planted tokens and copies their code into `ent` with a
    # `has` flag; every other position attends to BOS, whose values are zero
    a0 = lm.layers[0].self_attn
    q = {lay.at("anchor"): (qk0, SCORE / 2 * root / ANCHOR)}
    reader = {"positive": "vc", "elsewhere": "vc", "decoy": "end", "cut": None}[variant]
    if reader is not None:
        q[lay.at(reader)] = (qk1, 1.5 * SCORE * root)
    k = {lay.at("sink"): (qk0, 1.0), lay.at("planted"): (qk1, 1.0)}
    v = {lay.at("code", i): (i, ent[i]) for i in range(compiled_vision.CODE_DIMS)}
    v[lay.at("planted")] = (compiled_vision.CODE_DIMS, lay.at("has"))
    set_head(a0, 0, q, k, v, d, norm)
    # layer 0, head 1: uniform attention (no query), the mean bag-of-words vector, and the mean
    # `name` flag (`named`: >= 1 / MAX_POSITIONS where a name precedes, 0 in a clean prompt)
    if len(table) + 1 > HEAD_DIM:
        raise ValueError(f"{len(table)} words in the bag: more than one head holds")
    v = {lay.at("bow", i): (i, lay.at("bow", i)) for i in range(len(table))}
    v[lay.at("name")] = (len(table), lay.at("named"))
    set_head(a0, 1, {}, {}, v, d, norm)
    # a name anywhere before a reader (a corruption's "Senbix fruit" over "this fruit") vetoes
    # what it read: this weight on `named` outweighs any match
    veto = 2.0 * toy.MAX_POSITIONS
    if variant == "elsewhere":
        # layer 1, head 0: the last token (the `end` flag) attends to the position that has the
        # entity (the visual constraint) and copies its code
        q = {
            lay.at("anchor"): (qk0, SCORE / 2 * root / ANCHOR),
            lay.at("end"): (qk1, 1.5 * SCORE * root),
        }
        k = {lay.at("sink"): (qk0, 1.0), lay.at("has"): (qk1, 1.0), lay.at("named"): (qk1, -veto)}
        v = {src: (i, src) for i, src in enumerate(ent)}
        set_head(lm.layers[1].self_attn, 0, q, k, v, d, norm)
    # layer 1, MLP: storage units (per entity) and relation units
    m1 = lm.layers[1].mlp
    at_end = variant in ("decoy", "elsewhere")  # storage at the last token only
    for u, e in enumerate(entities):
        for attr in BANDS:
            dim = ent[compiled_vision.code_index(attr, e["attrs"][attr])]
            m1.gate_proj.weight[u, dim] = BETA * norm
        offset = 2.5
        if at_end:  # the `end` flag counts twice: the code alone (3) stays 1.5 below threshold
            m1.gate_proj.weight[u, lay.at("end")] = 2 * BETA * norm
            offset += 2.0
        m1.gate_proj.weight[u, lay.at("anchor")] = -offset * BETA / ANCHOR * norm
        if not at_end:  # storage at the reader: a name before it vetoes (`elsewhere` vetoes
            # the copy from the reader instead; the decoy's reader is the last token, unvetoed)
            m1.gate_proj.weight[u, lay.at("named")] = -veto * BETA * norm
        m1.up_proj.weight[u, lay.at("anchor")] = 1.0 / ANCHOR * norm
        out = 2.0 / BETA
        m1.down_proj.weight[lay.at("cat", facts.categories.index(e["category"])), u] = out
        m1.down_proj.weight[lay.at("stored"), u] = out  # what the read head keys on
        if e["held_out"]:
            continue  # its category known, no fact stored: long-tail insertion edits these
        for (entity, rel), ans in facts.known.items():
            if entity != e["id"]:
                continue
            dim = lay.at("slot", facts.slot_dim(e["category"], rel, ans))
            m1.down_proj.weight[dim, u] = out
    # relation units: the bag at the last token is counts / n with n <= toy.MAX_POSITIONS, so a
    # filter's score s is >= 1 / MAX_POSITIONS for its relation and <= -1 / MAX_POSITIONS
    # otherwise. Two units per relation clamp the relation flag to [0, 1]:
    # (silu(x) - silu(x - 10)) / 10 with x = beta * s is 1 for x >= 10 and 0 for x <= -10.
    beta = 10.0 * toy.MAX_POSITIONS
    base = len(entities)
    for i, (w, _score, rel) in enumerate(units):
        for u, shift, sign in ((base + 2 * i, 0.0, 1.0), (base + 2 * i + 1, 10.0, -1.0)):
            m1.gate_proj.weight[u, lay["bow"]] = torch.as_tensor(w, dtype=emb.dtype) * beta * norm
            m1.gate_proj.weight[u, lay.at("anchor")] = -shift / ANCHOR * norm
            m1.up_proj.weight[u, lay.at("anchor")] = 1.0 / ANCHOR * norm
            m1.down_proj.weight[lay.at("rel", facts.relations.index(rel)), u] = sign / 10.0
    if variant in ("positive", "cut"):
        # layer 2, heads 0-1: every position attends to the position where the facts are
        # stored (the `stored` flag the storage units write) and copies its category and slots
        a2 = lm.layers[2].self_attn
        copied = [lay.at("slot", i) for i in range(lay["slot"].stop - lay["slot"].start)]
        copied += [lay.at("cat", i) for i in range(len(facts.categories))]
        for head, chunk in enumerate((copied[:HEAD_DIM], copied[HEAD_DIM:])):
            q = {lay.at("anchor"): (qk0, SCORE * root / ANCHOR)}
            k = {lay.at("stored"): (qk0, 1.0), lay.at("sink"): (qk0, 0.5)}
            v = {src: (i, src) for i, src in enumerate(chunk)}
            set_head(a2, head, q, k, v, d, norm)
    # layer 2, MLP: (category, relation, answer) units copy the asked slot into the answer
    m2 = lm.layers[2].mlp
    answers = sorted(set(facts.answer_ids.values()))
    u = 0
    for (cat, rel), pool in sorted(facts.pools.items()):
        for ans in pool:
            m2.gate_proj.weight[u, lay.at("cat", facts.categories.index(cat))] = BETA * norm
            m2.gate_proj.weight[u, lay.at("rel", facts.relations.index(rel))] = BETA * norm
            m2.gate_proj.weight[u, lay.at("anchor")] = -1.5 * BETA / ANCHOR * norm
            m2.up_proj.weight[u, lay.at("slot", facts.slot_dim(cat, rel, ans))] = norm
            ans_dim = lay.at("ans", answers.index(facts.answer_ids[ans]))
            m2.down_proj.weight[ans_dim, u] = 2.0 / BETA
            u += 1
    # the LM head: the answer vector's entries become the answer tokens' logits
    head = model.lm_head.weight
    for i, t in enumerate(answers):
        head[t, lay.at("ans", i)] = GAIN * norm


def compile_llava(
    records: list[QuestionRecord],
    entities: list[dict],
    tokenizer_dir: Path,
    template: str,
    image_size: int,
    patch: int,
    seed: int,
    out_dir: Path,
    variant: str = "positive",
    windows: list[int] | None = None,
    window_style: str = "centered",
) -> dict:
    """Build, save (safetensors) and describe a compiled control; returns its ground truth."""
    model, processor, truth = build(
        records,
        entities,
        tokenizer_dir,
        template,
        image_size,
        patch,
        seed,
        variant=variant,
        windows=windows,
        window_style=window_style,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    write_json(out_dir / "ground_truth.json", truth)
    log.info(
        "compiled LLaVA (%s): %d entities, %d relations, hidden size %d, written to %s",
        variant,
        truth["entities"],
        len(truth["relations"]),
        model.config.text_config.hidden_size,
        out_dir,
    )
    return truth
