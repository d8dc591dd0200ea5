"""The paper world's data and checkpoints: the steps behind rules/paper_data.smk and
rules/paper_models.smk (`--config world=paper`).

Downloads are local rules (they need the internet; the GPU nodes of a cluster often have none):
- each file in `paper.downloads.sources` is fetched by `fetch.fetch` (or `fetch_gdrive` for
  the Google Drive image archives), verified against its sha256 in the config, or, where the
  config says `null`, recorded on first download in `<data>/raw/downloads.lock.json`
  (`downloads.unpinned: record`; `error` refuses instead);
- archives are extracted safely (`paperworld.archives.extract`) and known members verified;
- only the COCO val2014 images OK-VQA uses are fetched, one by one (not the 6 GB zip);
- the long-tail split's Google Landmarks v2 images are fetched from their original URLs.
Then `annotate_split` turns each split into the question table every later rule reads
(`dataset.write_split`), with a JSON report of the rows kept and dropped per reason.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from mmtrace import config as C
from mmtrace.io import read_json, write_json

log = logging.getLogger(__name__)


def _remote(source: dict):
    from mmtrace.paperworld.checksums import Remote

    return Remote(source["url"], source["sha256"], source["size"])


def download_source(name: str, source: dict, downloads: dict, lock: Path, out: Path) -> None:
    """Fetch one configured source to `out`, verified (see the module docstring)."""
    from mmtrace.paperworld import fetch

    source = C.Source(**source).model_dump()
    downloads = C.Downloads(**downloads)
    log.info("source %s -> %s", name, out)
    if source["gdrive"]:
        fetch.fetch_gdrive(
            source["gdrive"],
            out,
            source["sha256"],
            size=source["size"],
            lock=lock,
            unpinned=downloads.unpinned,
            retries=downloads.retries,
        )
    else:
        fetch.fetch(
            _remote(source),
            out,
            retries=downloads.retries,
            lock=lock,
            unpinned=downloads.unpinned,
        )


def extract_source(archive: Path, members: dict[str, str], marker: Path) -> None:
    """Extract an archive next to its marker and check the members the config pins."""
    from mmtrace.paperworld import archives

    dest = marker.parent
    archives.extract(archive, dest, marker=marker, members=members, replace=True)
    log.info("extracted %s into %s (%d pinned members verified)", archive, dest, len(members))


def okvqa_image_names(okvqa_csv: Path) -> list[str]:
    """The distinct COCO file names the release's okvqa.csv refers to, sorted."""
    with open(okvqa_csv, encoding="utf-8", newline="") as fh:
        names = {Path(row["image_url"]).name for row in csv.DictReader(fh) if row["image_url"]}
    return sorted(n for n in names if n)


def coco_images(okvqa_csv: Path, downloads: dict, lock: Path, marker: Path) -> None:
    """Fetch only the COCO val2014 images OK-VQA's questions use into `<data>/images/coco/`."""
    from mmtrace.paperworld import images

    downloads = C.Downloads(**downloads)
    names = okvqa_image_names(okvqa_csv)
    dest = marker.parent / "coco"
    log.info("%d COCO val2014 images referenced by %s", len(names), okvqa_csv)
    images.fetch_many(
        names,
        downloads.coco_url,
        dest,
        lock,
        workers=downloads.workers,
        retries=downloads.retries,
    )
    write_json(marker, {"dir": dest.name, "files": names})


def landmark_urls(index_csv: Path, ids: set[str]) -> dict[str, str]:
    """Original image URLs of the given Google Landmarks v2 ids, from its train.csv
    (`id,url,landmark_id`), read as a stream (the file has ~4M rows)."""
    found: dict[str, str] = {}
    with open(index_csv, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("id") in ids:
                found[row["id"]] = row["url"]
    return found


def landmark_images(
    evqa_csv: Path,
    index_csv: Path,
    heldout: dict,
    seed: int,
    downloads: dict,
    lock: Path,
    marker: Path,
) -> None:
    """Fetch the images of the Encyclopedic-VQA landmark subset (the long-tail split) into
    `<data>/images/landmarks/<id>.jpg`; ids missing from the index are reported, not guessed."""
    from mmtrace.paperworld import images
    from mmtrace.paperworld.evqa import load_evqa

    h = C.HeldOut(**heldout)
    rows, report = load_evqa(evqa_csv, images_dir=None, **_evqa_args(h, seed))
    log.info("%s", report.summary())
    ids = {Path(r.image).stem for r in rows}
    urls = landmark_urls(index_csv, ids)
    missing = sorted(ids - set(urls))
    if missing:
        log.warning(
            "%d of %d landmark image ids are not in %s (rows dropped at annotation): %s...",
            len(missing),
            len(ids),
            index_csv,
            missing[:5],
        )
    dest = marker.parent / "landmarks"
    files = {f"{i}.jpg": urls[i] for i in sorted(urls)}
    try:
        images.fetch_many(
            list(files),
            None,
            dest,
            lock,
            urls=files,
            workers=downloads["workers"],
            retries=downloads["retries"],
        )
        failed: dict[str, str] = {}
    except images.FetchManyError as exc:
        # Landmarks v2 links point at their original hosts, and some die: such rows are
        # dropped at annotation ("image missing"), counted here and in the split's report.
        failed = dict(exc.report.failed)
        log.warning("%d of %d landmark images could not be fetched", len(failed), len(files))
    got = sorted(f for f in files if f not in failed)
    write_json(marker, {"dir": dest.name, "failed": failed, "files": got, "missing_ids": missing})


def _evqa_args(h: C.HeldOut, seed: int) -> dict:
    return dict(
        max_rows=h.n,
        seed=seed,
        question_type=h.question_type,
        dataset_name=h.dataset_name,
        question_contains=h.keyword,
    )


def annotate_split(
    split: str,
    inputs: dict[str, Path],
    heldout: dict,
    seed: int,
    out_csv: Path,
    report: Path,
    human_out: Path,
) -> None:
    """Load one released split, join its answers, pick its images and write the annotated
    question table, the annotators' answers where the split has them (OK-VQA, for VQA accuracy)
    and a report of every row kept or dropped and every variant skipped (by reason)."""
    from mmtrace.dataset import load_split, write_split
    from mmtrace.paperworld import evqa, known, movies, okvqa
    from mmtrace.paperworld.annotate import annotate, human_answers
    from mmtrace.paperworld.report import Report

    data_dir = out_csv.parent
    images = _images_dir(split, inputs["images"])
    where = dict(images_dir=images, data_dir=data_dir)
    if split == "known":
        rows, rep = known.load_known(inputs["csv"], inputs["facts"], **where)
    elif split == "movies":
        rows, rep = movies.load_movies(inputs["csv"], inputs["facts"], **where)
    elif split == "okvqa":
        rows, rep = okvqa.load_okvqa(
            inputs["csv"],
            _member(inputs["questions"], "OpenEnded_mscoco_val2014_questions.json"),
            _member(inputs["annotations"], "mscoco_val2014_annotations.json"),
            **where,
        )
    elif split == "heldout":
        rows, rep = evqa.load_evqa(inputs["csv"], **where, **_evqa_args(C.HeldOut(**heldout), seed))
    else:
        raise ValueError(f"unknown split {split!r}")
    ann = Report(f"annotate[{split}]")
    records = annotate(split, rows, seed, report=ann)
    if not records:
        raise ValueError(
            f"{inputs['csv']}: no question of split {split!r} survived: {rep.summary()}"
        )
    write_split(out_csv, split, records)
    n = len(load_split(out_csv))  # the table every later rule reads must validate
    write_json(human_out, human_answers(split, rows))  # {} for splits without annotators
    log.info("%s: %d questions written to %s", split, n, out_csv)
    write_json(report, {"load": rep.as_dict(), "annotate": ann.as_dict(), "questions": n})


PHOTO = "A photo of "


def _images_dir(split: str, marker: Path) -> Path:
    """Where a split's images are. An image-list marker names its folder; an extracted archive
    (Known, Movies) holds "A photo of <name>" folders, at its top or one or two levels down:
    the folder with the most of them is taken."""
    if marker.name != "extracted.json":
        return marker.parent / read_json(marker)["dir"]
    root = marker.parent
    best, count = root, -1
    for d in [
        root,
        *sorted(p for p in root.rglob("*") if p.is_dir() and len(p.relative_to(root).parts) <= 2),
    ]:
        n = sum(1 for c in d.iterdir() if c.is_dir() and c.name.startswith(PHOTO))
        if n > count:
            best, count = d, n
    if count <= 0:
        raise FileNotFoundError(f"{root}: no '{PHOTO}<name>' folders in the {split} image archive")
    return best


def _member(marker: Path, name: str) -> Path:
    """An extracted archive's member, found by file name wherever the archive put it."""
    hits = sorted(marker.parent.rglob(name))
    if not hits:
        raise FileNotFoundError(f"{name} is not in the archive extracted at {marker.parent}")
    return hits[0]


def fetch_model(name: str, spec: dict, marker: Path) -> None:
    """Download a hub model's pinned snapshot (safetensors, configs, tokenizer) into the HF
    cache and record where it is; model jobs load it from there offline. A model whose config
    entry opts in to `weights: convert_pickle` is converted to safetensors beside the marker."""
    from mmtrace.models import hub

    s = C.ModelSpec(**spec)
    path = hub.snapshot(s.repo, s.revision, pickled_weights=s.weights == "convert_pickle")
    commit = path.name if hub.COMMIT.match(path.name) else None
    if s.weights == "convert_pickle":
        path = hub.convert_pickled(path, marker.parent / "safetensors")
    hub.write_marker(marker, s.repo, s.revision, path, commit=commit)
    log.info("%s: %s@%s -> %s", name, s.repo, s.revision, path)
