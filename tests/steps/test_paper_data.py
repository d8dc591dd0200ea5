"""The paper world's data steps (`mmtrace.steps.paper_data`) called directly with their rules'
keywords, on the stand-in release of tests/paper_release.py served by a loopback HTTP server:
verified downloads, extraction, the per-image fetches and the annotated question tables; and
the binder giving `annotate_split` the inputs a split unpacks, by name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from support import paper_release

from mmtrace.dataset import load_split
from mmtrace.paperworld.checksums import ChecksumError, UnpinnedError
from mmtrace.steps import bind, paper_data

DOWNLOADS = {"unpinned": "record", "retries": 2, "workers": 2}
ARCHIVES = ("okvqa_questions", "okvqa_annotations", "known_images", "movies_images")


@pytest.fixture(scope="module")
def release():
    with paper_release.Server() as server:
        server.files.update(paper_release.build(server.url))
        yield server


def source(release, name: str, pinned: bool) -> dict:
    """The config entry of source `name` (as config.yaml has it), served by `release`."""
    data = release.files[paper_release.SOURCE_PATHS[name]]
    return {
        "url": release.url + paper_release.SOURCE_PATHS[name],
        "sha256": hashlib.sha256(data).hexdigest() if pinned else None,
        "size": len(data) if pinned else None,
        "file": paper_release.SOURCE_PATHS[name].lstrip("/"),
        "extract": name in ARCHIVES,
    }


def test_download_verifies_pinned_sources_and_records_unpinned_ones(release, tmp_path):
    lock = tmp_path / "raw" / "downloads.lock.json"
    dest = tmp_path / "raw" / "known_1000.json"
    pinned = source(release, "known_1000", pinned=True)
    paper_data.download(name="known_1000", source=pinned, downloads=DOWNLOADS, lock=lock, dest=dest)
    assert dest.read_bytes() == release.files["/known_1000.json"] and not lock.exists()

    unpinned = source(release, "evqa_csv", pinned=False)
    with pytest.raises(UnpinnedError):
        paper_data.download(
            name="evqa_csv",
            source=unpinned,
            downloads={**DOWNLOADS, "unpinned": "error"},
            lock=lock,
            dest=tmp_path / "raw" / "evqa_val.csv",
        )
    paper_data.download(
        name="evqa_csv",
        source=unpinned,
        downloads=DOWNLOADS,
        lock=lock,
        dest=tmp_path / "raw" / "evqa_val.csv",
    )
    entry = json.loads(lock.read_text())[unpinned["url"]]
    assert entry["sha256"] == hashlib.sha256(release.files["/evqa_val.csv"]).hexdigest()


def test_extract_unpacks_beside_its_marker_and_verifies_pinned_members(release, tmp_path):
    archive = tmp_path / "okvqa_questions.zip"
    archive.write_bytes(release.files["/okvqa_questions.zip"])
    marker = tmp_path / "okvqa_questions" / "extracted.json"
    with pytest.raises(ChecksumError, match=paper_release.QUESTIONS_JSON):
        paper_data.extract(
            archive=archive, members={paper_release.QUESTIONS_JSON: "0" * 64}, marker=marker
        )
    assert not marker.exists()
    member = paper_release.sources(release.url, release.files, ())["okvqa_questions"]["members"]
    paper_data.extract(archive=archive, members=member, marker=marker)
    assert (marker.parent / paper_release.QUESTIONS_JSON).is_file()
    assert json.loads(marker.read_text())["files"] == [paper_release.QUESTIONS_JSON]


def fetch_all(release, data: Path) -> None:
    """Every download, extraction and image fetch of the paper world, as the rules call them."""
    raw = data / "raw"
    for name in paper_release.SOURCE_PATHS:
        entry = source(release, name, pinned=name in ("known_csv", "known_1000"))
        dest = raw / entry["file"]
        lock = raw / "downloads.lock.json"
        paper_data.download(name=name, source=entry, downloads=DOWNLOADS, lock=lock, dest=dest)
        if entry["extract"]:
            paper_data.extract(archive=dest, members={}, marker=raw / name / "extracted.json")
    paper_data.coco_images(
        okvqa_csv=raw / "okvqa.csv",
        downloads={**DOWNLOADS, "coco_url": release.url + "/val2014/{name}"},
        lock=data / "images" / "coco.lock.json",
        marker=data / "images" / "coco.json",
    )
    paper_data.landmark_images(
        evqa_csv=raw / "evqa_val.csv",
        index_csv=raw / "gldv2_train.csv",
        heldout={"n": 10},
        seed=0,
        downloads=DOWNLOADS,
        lock=data / "images" / "landmarks.lock.json",
        marker=data / "images" / "landmarks.json",
    )


def split_inputs(data: Path, split: str) -> dict[str, Path]:
    """The inputs rules/paper_data.smk's `split_inputs` gives each split, by the same names."""
    raw = data / "raw"
    return {
        "known": dict(
            release_csv=raw / "known.csv",
            facts=raw / "known_1000.json",
            images=raw / "known_images" / "extracted.json",
        ),
        "movies": dict(
            release_csv=raw / "movies.csv",
            facts=raw / "movies.pkl",
            images=raw / "movies_images" / "extracted.json",
        ),
        "okvqa": dict(
            release_csv=raw / "okvqa.csv",
            questions=raw / "okvqa_questions" / "extracted.json",
            annotations=raw / "okvqa_annotations" / "extracted.json",
            images=data / "images" / "coco.json",
        ),
        "heldout": dict(
            release_csv=raw / "evqa_val.csv", images=data / "images" / "landmarks.json"
        ),
    }[split]


@pytest.fixture(scope="module")
def data(release, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("paper") / "data"
    fetch_all(release, data)
    return data


def test_image_steps_fetch_only_the_images_the_splits_use(data):
    coco = json.loads((data / "images" / "coco.json").read_text())
    assert coco["files"] == sorted(paper_release.coco_name(img) for img, *_ in paper_release.OKVQA)
    assert all((data / "images" / "coco" / f).is_file() for f in coco["files"])
    landmarks = json.loads((data / "images" / "landmarks.json").read_text())
    assert len(landmarks["failed"]) == paper_release.DEAD_LANDMARKS and not landmarks["missing_ids"]
    assert len(landmarks["files"]) == len(paper_release.LANDMARKS) - paper_release.DEAD_LANDMARKS


@pytest.mark.parametrize("split", paper_release.SPLITS)
def test_annotate_split_writes_the_table_its_report_and_human_answers(data, split):
    out = {
        "csv": data / f"{split}.csv",
        "report": data / "reports" / f"{split}.json",
        "human": data / "human_answers" / f"{split}.json",
    }
    paper_data.annotate_split(
        split=split, **split_inputs(data, split), heldout={"n": 10}, seed=0, **out
    )
    records = load_split(out["csv"])
    assert records and all((data / r.image_url).is_file() for r in records)
    report = json.loads(out["report"].read_text())
    assert report["questions"] == len(records) and report["load"]["kept"] > 0
    human = json.loads(out["human"].read_text())
    assert sorted(len(v) for v in human.values()) == (
        [10] * len(paper_release.OKVQA) if split == "okvqa" else []
    )


def test_annotate_split_names_a_missing_split_input(data, tmp_path):
    inputs = split_inputs(data, "known")
    del inputs["facts"]
    with pytest.raises(ValueError, match="split 'known' needs the input 'facts'"):
        paper_data.annotate_split(
            split="known",
            **inputs,
            heldout={},
            seed=0,
            csv=tmp_path / "known.csv",
            report=tmp_path / "known.json",
            human=tmp_path / "human.json",
        )


@pytest.mark.parametrize("split", paper_release.SPLITS)
def test_the_binder_passes_a_splits_unpacked_inputs_by_name(split, tmp_path):
    inputs = {k: str(v) for k, v in split_inputs(tmp_path, split).items()}
    job = SimpleNamespace(
        rule="annotate_split",
        input=inputs,
        output={"csv": "d/x.csv", "report": "d/r.json", "human": "d/h.json"},
        params={"seed": 3, "heldout": {"n": 10}},
        wildcards={"split": split},
        threads=1,
    )
    kwargs = bind(job, paper_data.annotate_split)
    assert {k: v for k, v in kwargs.items() if k in inputs} == {
        k: Path(v) for k, v in inputs.items()
    }
    assert set(kwargs) - set(inputs) == {"split", "heldout", "seed", "csv", "report", "human"}
    assert kwargs["split"] == split and kwargs["seed"] == 3 and kwargs["csv"] == Path("d/x.csv")
