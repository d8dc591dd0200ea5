"""Constraint annotation of the real splits: records that dataset.write_split writes and
load_split validates, the corruption/paraphrase/text-form/multi-constraint rules, determinism,
and (when shared/data is present) every released row annotated or reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmtrace.dataset import EXTRA_COLUMNS, load_split, write_split
from mmtrace.paperworld.annotate import annotate, human_answers
from mmtrace.paperworld.evqa import load_evqa
from mmtrace.paperworld.known import load_known
from mmtrace.paperworld.movies import load_movies
from mmtrace.paperworld.okvqa import load_okvqa
from mmtrace.paperworld.paraphrases import KNOWN_TEMPLATES
from mmtrace.paperworld.report import Report
from mmtrace.paperworld.rows import RealRow

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "realdata"


def okvqa_fixture_annotations(questions_json: Path, out: Path) -> Path:
    """A SYNTHETIC annotations file for the real OK-VQA questions (the real val annotations are
    not in shared/data): one made-up answer, 10 times, per question."""
    qs = json.loads(questions_json.read_text(encoding="utf-8"))["questions"]
    answers = [{"answer": "fixture", "answer_id": k + 1} for k in range(10)]
    anns = [{"question_id": q["question_id"], "answers": answers} for q in qs]
    out.write_text(json.dumps({"annotations": anns}))
    return out


def known_row(index, question, entity, subject, answer, relation, prompt, others=()):
    start = question.lower().index(entity.lower())
    return RealRow(
        "known",
        index,
        question,
        entity,
        start,
        start + len(entity),
        subject,
        f"A photo of {subject}",
        [answer],
        relation=relation,
        meta={"prompt": prompt, "others": list(others)},
    )


def known_rows() -> list[RealRow]:
    return [
        known_row(
            1,
            "This building is located in",
            "This building",
            "Space Needle",
            "Seattle",
            "P276",
            "Space Needle is located in",
        ),
        known_row(
            2,
            "This video game is developed by",
            "This video",
            "Yakuza 2",
            "Sega",
            "P178",
            "Yakuza 2 is developed by",
        ),
        known_row(
            3,
            "In this country, the capital city is",
            "this country,",
            "Peru",
            "Lima",
            "P36",
            "Peru's capital,",
            others=[{"relation": "P37", "attribute": "Spanish"}],
        ),
        known_row(
            4,
            "This person's domain of work is",
            "This person's",
            "Joseph Schumpeter",
            "economics",
            "P101",
            "Joseph Schumpeter's domain of work is",
        ),
        known_row(
            5,
            "This tower stands in",
            "This tower",
            "Eiffel Tower",
            "Paris",
            "P999",
            "Eiffel Tower stands in",
        ),
        known_row(
            6,
            "The official language of this country is",
            "this country",
            "Chile",
            "Spanish",
            "P37",
            "The official language of Chile is",
        ),
    ]


def movie_rows() -> list[RealRow]:
    q = "Name a movie directed by this director?"
    films = {
        "Ron Fricke": ["Baraka", "Samsara", "Chronos"],
        "Sofia Coppola": ["Lost in Translation", "Marie Antoinette"],
        "Jane Doe": ["Alpha", "Able"],  # one initial: no narrowing variant
    }
    return [
        RealRow("movies", i, q, "this director", 25, 38, d, f"A photo of {d}", f)
        for i, (d, f) in enumerate(films.items())
    ]


def roundtrip(tmp_path: Path, split: str, records: list[dict]):
    path = tmp_path / f"{split}.csv"
    write_split(path, split, records)
    return load_split(path)


def test_annotate_known_records(tmp_path):
    rep = Report("known")
    recs = annotate("known", known_rows(), seed=7, report=rep)
    back = roundtrip(tmp_path, "known", recs)
    assert len(back) == len(recs) and set(EXTRA_COLUMNS) <= set(recs[0]) | {"question"}
    by = {r.qid: r for r in back}
    b = by["known-00001"]
    assert (b.category, b.relation, b.answer, b.entity_id) == (
        "building",
        "P276",
        "Seattle",
        "space-needle",
    )
    assert b.text_question == "Space Needle is located in"
    assert b.text_constraints[0].text == "Space Needle"
    expected = [t.format(c="this building") for t in KNOWN_TEMPLATES["P276"]]
    assert b.paraphrases == [p[0].upper() + p[1:] for p in expected]  # capitalised at the start
    assert b.text_paraphrases[0] == "Space Needle is located in"
    assert not b.held_out and b.constraint_type == "single"
    # a span cut after "This video" is completed from the known_1000 prompt
    v = by["known-00002"]
    assert v.visual_span.text == "This video game" and v.category == "video game"
    assert v.text_question == "Yakuza 2 is developed by"
    # trailing comma / possessive moved out of the span
    assert by["known-00003"].visual_span.text == "this country"
    p = by["known-00004"]
    assert p.visual_span.text == "This person"
    assert p.text_question == "Joseph Schumpeter's domain of work is"
    # unknown relation: generic paraphrases
    assert by["known-00005"].paraphrases[0] == "Tell me, this tower stands in"
    assert by["known-00005"].text_paraphrases[0] == "Tell me, Eiffel Tower stands in"
    # replacements: never the row's own subject or constraint
    for r in back:
        for s in r.constraints + r.text_constraints:
            assert s.replacement and s.replacement.lower() not in (
                r.subject.lower(),
                s.text.lower(),
            )
    # the multi variant: a second fact as a clause, the answer unchanged
    m = by["known-00003-multi"]
    assert m.constraint_type == "multi"
    assert m.question == "In this country, whose official language is Spanish, the capital city is"
    assert m.textual_spans[0].text == "Spanish" and m.textual_spans[0].replacement != "Spanish"
    assert m.text_question == "In Peru, whose official language is Spanish, the capital city is"
    assert m.answers == ["Lima"]
    assert sum(r.constraint_type == "multi" for r in back) == 1
    assert rep.kept == 6 and rep.notes["no multi-constraint variant: subject has one fact"] == 5
    assert rep.notes["Known span completed from the known_1000 prompt"] == 1


def test_annotate_is_deterministic_and_seeded():
    a = annotate("known", known_rows(), seed=1)
    assert a == annotate("known", known_rows(), seed=1)
    reps = []
    for seed in range(6):
        recs = annotate("movies", movie_rows(), seed=seed)
        reps.append(tuple(s["replacement"] for r in recs for s in r["constraints"]))
    assert len(set(reps)) > 1


def test_annotate_movies_multi(tmp_path):
    rep = Report("movies")
    back = {
        r.qid: r
        for r in roundtrip(tmp_path, "movies", annotate("movies", movie_rows(), 3, report=rep))
    }
    single = back["movies-00000"]
    assert single.answer == "Baraka" and single.category == "director"
    assert single.text_question == "Name a movie directed by Ron Fricke?"
    assert single.paraphrases[0] == "Which movie did this director direct?"
    m = back["movies-00000-multi"]
    assert (
        m.question == "Name a movie directed by this director whose title begins with the letter B?"
    )
    assert m.answers == ["Baraka"]
    t = m.textual_spans[0]
    assert t.text == "the letter B" and t.type == "textual"
    # the replacement letter starts none of this director's films
    assert t.replacement.startswith("the letter ") and t.replacement[-1] not in "BSC"
    assert m.text_question.endswith("Ron Fricke whose title begins with the letter B?")
    assert back["movies-00001-multi"].answers == ["Lost in Translation"]
    assert "movies-00002-multi" not in back
    assert rep.notes["no multi-constraint variant: the letter would not narrow"] == 1
    assert rep.notes["multi-constraint variant added"] == 2
    # the visual replacement is another director, the text one too
    assert single.visual_span.replacement in ("Sofia Coppola", "Jane Doe")


def test_annotate_okvqa_and_human_answers(tmp_path):
    rows, _ = load_okvqa(
        FIXTURES / "okvqa.csv",
        FIXTURES / "okvqa_questions.json",
        FIXTURES / "okvqa_annotations.json",
    )
    rep = Report("okvqa")
    recs = annotate("okvqa", rows, 0, report=rep)
    back = {r.qid: r for r in roundtrip(tmp_path, "okvqa", recs)}
    r0 = back["okvqa-00000"]
    assert r0.text_question == r0.question  # no subject: the LLM answers blind
    assert r0.text_constraints == r0.constraints
    assert (r0.category, r0.relation, r0.entity_id, r0.subject) == ("object", "four", "297147", "")
    assert r0.answer == "racing" and r0.answers == ["racing", "motocross", "riding"]
    assert r0.visual_span.replacement.lower() != "this"
    assert rep.notes["no multi-constraint rule for okvqa"] == len(rows)
    table = human_answers("okvqa", rows)
    assert len(table["okvqa-00000"]) == 10 and set(table) == set(back)


def test_annotate_heldout_evqa(tmp_path):
    rows, _ = load_evqa(FIXTURES / "evqa.csv", max_rows=10)
    back = roundtrip(tmp_path, "heldout", annotate("heldout", rows, 0))
    assert back and all(r.held_out and r.category == "landmark" for r in back)
    castle = next(r for r in back if r.subject == "Neuschwanstein Castle")
    assert castle.text_question == "In which country is Neuschwanstein Castle?"
    assert castle.paraphrases == [
        "In which country is this castle located?",
        "This castle can be found in which country?",
    ]
    assert castle.entity_id == "neuschwanstein-castle" and castle.answer == "Germany"


def test_annotate_rejects_unknown_split():
    with pytest.raises(ValueError):
        annotate("nope", [], 0)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
def test_released_splits_annotate_and_roundtrip(tmp_path):
    """Every released row is kept or reported by the loader, and every kept row becomes a
    record that round-trips through write_split/load_split. OK-VQA uses the real questions JSON
    with a SYNTHETIC annotations file (the real val annotations are not in shared/data)."""
    vqa = SHARED / "vqa_constraints"
    qjson = SHARED / "okvqa" / "OpenEnded_mscoco_val2014_questions.json"
    loaded = {
        "known": load_known(vqa / "multimodal_known.csv", SHARED / "rome" / "known_1000.json"),
        "movies": load_movies(vqa / "multimodal_movies.csv", SHARED / "movies" / "movies.pkl"),
        "okvqa": load_okvqa(
            vqa / "okvqa.csv", qjson, okvqa_fixture_annotations(qjson, tmp_path / "ann.json")
        ),
    }
    expected_rows = {"known": 1204, "movies": 3214, "okvqa": 5045}
    for split, (rows, rep) in loaded.items():
        assert rep.kept + sum(rep.dropped.values()) == expected_rows[split]
        arep = Report(f"annotate {split}")
        recs = annotate(split, rows, 1234, report=arep)
        assert arep.kept == len(rows) and not arep.dropped
        back = roundtrip(tmp_path, split, recs)
        assert len(back) == len(recs) >= len(rows)
        assert len({r.qid for r in back}) == len(back)
        print(rep.summary())
        print(arep.summary())
    assert json.dumps(recs[0])  # plain data
