"""The released files in ../shared/data (see its SOURCES.md), loaded by the paper world's
loaders: the three VQA-Constraints splits with their answer sources. OK-VQA's val annotations are
not in shared/data, so its answers come from a SYNTHETIC annotations file (one made-up answer,
10 times, per question); questions, constraints and images are the release's."""

from __future__ import annotations

import json
from pathlib import Path

from mmtrace.paperworld.known import load_known
from mmtrace.paperworld.movies import load_movies
from mmtrace.paperworld.okvqa import load_okvqa

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
ROWS = {"known": 1204, "movies": 3214, "okvqa": 5045}  # data rows of each released CSV


def okvqa_fixture_annotations(questions_json: Path, out: Path) -> Path:
    qs = json.loads(questions_json.read_text(encoding="utf-8"))["questions"]
    answers = [{"answer": "fixture", "answer_id": k + 1} for k in range(10)]
    out.write_text(
        json.dumps(
            {"annotations": [{"question_id": q["question_id"], "answers": answers} for q in qs]}
        )
    )
    return out


def load_released(tmp: Path) -> dict:
    """split -> (rows, load report) for Known, Movies and OK-VQA."""
    vqa = SHARED / "vqa_constraints"
    qjson = SHARED / "okvqa" / "OpenEnded_mscoco_val2014_questions.json"
    return {
        "known": load_known(vqa / "multimodal_known.csv", SHARED / "rome" / "known_1000.json"),
        "movies": load_movies(vqa / "multimodal_movies.csv", SHARED / "movies" / "movies.pkl"),
        "okvqa": load_okvqa(
            vqa / "okvqa.csv", qjson, okvqa_fixture_annotations(qjson, tmp / "okvqa_ann.json")
        ),
    }
