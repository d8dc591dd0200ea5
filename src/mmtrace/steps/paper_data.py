"""The paper world's data (`--config world=paper`): the steps of `rules/paper_data.smk`.

Downloads are local rules (they need the internet; the GPU nodes of a cluster often have none):
- `download`: each file in `paper.downloads.sources` is fetched by `paperworld.fetch.fetch` (or
  `fetch_gdrive` for the Google Drive image archives), verified against its sha256 in the
  config, or, where the config says `null`, recorded on first download in
  `<data>/raw/downloads.lock.json` (`downloads.unpinned: record`; `error` refuses instead);
- `extract`: archives are extracted safely (`paperworld.archives.extract`) and known members
  verified;
- `coco_images`: only the COCO val2014 images OK-VQA uses are fetched, one by one (not the 6 GB
  zip);
- `landmark_images`: the long-tail split's Google Landmarks v2 images are fetched from their
  original URLs.
Then `annotate_split` turns each split into the question table every later rule reads
(`dataset.write_split`), with a JSON report of the rows kept and dropped per reason.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mmtrace import config
from mmtrace.dataset import load_split, write_split
from mmtrace.io import read_json, write_json
from mmtrace.paperworld import archives
from mmtrace.paperworld.annotate import annotate, human_answers
from mmtrace.paperworld.checksums import Remote
from mmtrace.paperworld.evqa import load_evqa
from mmtrace.paperworld.fetch import fetch, fetch_gdrive
from mmtrace.paperworld.images import (
    FetchManyError,
    fetch_many,
    landmark_urls,
    okvqa_image_names,
)
from mmtrace.paperworld.known import load_known
from mmtrace.paperworld.movies import load_movies
from mmtrace.paperworld.okvqa import load_okvqa
from mmtrace.paperworld.report import Report

log = logging.getLogger(__name__)


def download(*, name: str, source: dict, downloads: dict, lock: Path, dest: Path) -> None:
    """Fetch the configured source `name` to `dest`, verified (see the module docstring)."""
    source = config.Source(**source).model_dump()
    settings = config.Downloads(**downloads)
    log.info("source %s -> %s", name, dest)
    if source["gdrive"]:
        fetch_gdrive(
            source["gdrive"],
            dest,
            source["sha256"],
            size=source["size"],
            lock=lock,
            unpinned=settings.unpinned,
            retries=settings.retries,
        )
    else:
        fetch(
            Remote(source["url"], source["sha256"], source["size"]),
            dest,
            retries=settings.retries,
            lock=lock,
            unpinned=settings.unpinned,
        )


def extract(*, archive: Path, members: dict[str, str], marker: Path) -> None:
    """Extract an archive next to its marker and check the members the config pins."""
    dest = marker.parent
    archives.extract(archive, dest, marker=marker, members=members, replace=True)
    log.info("extracted %s into %s (%d pinned members verified)", archive, dest, len(members))


def coco_images(*, okvqa_csv: Path, downloads: dict, lock: Path, marker: Path) -> None:
    """Fetch only the COCO val2014 images OK-VQA's questions use into `<data>/images/coco/`."""
    settings = config.Downloads(**downloads)
    names = okvqa_image_names(okvqa_csv)
    dest = marker.parent / "coco"
    log.info("%d COCO val2014 images referenced by %s", len(names), okvqa_csv)
    fetch_many(
        names,
        settings.coco_url,
        dest,
        lock,
        workers=settings.workers,
        retries=settings.retries,
    )
    write_json(marker, {"dir": dest.name, "files": names})


def landmark_images(
    *,
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
    rows, report = load_evqa(evqa_csv, images_dir=None, **_evqa_args(heldout, seed))
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
        fetch_many(
            list(files),
            None,
            dest,
            lock,
            urls=files,
            workers=downloads["workers"],
            retries=downloads["retries"],
        )
        failed: dict[str, str] = {}
    except FetchManyError as exc:
        # Landmarks v2 links point at their original hosts, and some die: such rows are
        # dropped at annotation ("image missing"), counted here and in the split's report.
        failed = dict(exc.report.failed)
        log.warning("%d of %d landmark images could not be fetched", len(failed), len(files))
    got = sorted(f for f in files if f not in failed)
    write_json(marker, {"dir": dest.name, "failed": failed, "files": got, "missing_ids": missing})


def _evqa_args(heldout: dict, seed: int) -> dict:
    """`load_evqa`'s subset arguments from the config's `paper.heldout` entry."""
    h = config.HeldOut(**heldout)
    return dict(
        max_rows=h.n,
        seed=seed,
        question_type=h.question_type,
        dataset_name=h.dataset_name,
        question_contains=h.keyword,
    )


def annotate_split(
    *,
    split: str,
    release_csv: Path,
    images: Path,
    facts: Path | None = None,
    questions: Path | None = None,
    annotations: Path | None = None,
    heldout: dict,
    seed: int,
    csv: Path,
    report: Path,
    human: Path,
) -> None:
    """Load one released split, join its answers, pick its images and write the annotated
    question table `csv`, the annotators' answers `human` where the split has them (OK-VQA, for
    VQA accuracy) and a `report` of every row kept or dropped and every variant skipped (by
    reason).

    The inputs are the split's (`split_inputs` in rules/paper_data.smk): `release_csv` and
    `images` (an extracted archive's or an image list's marker) always; `facts` for Known
    (known_1000) and Movies (the Movies table); `questions` and `annotations` (extracted OK-VQA
    archives) for OK-VQA."""
    data_dir = csv.parent
    where = dict(images_dir=_images_dir(split, images), data_dir=data_dir)
    if split == "known":
        rows, rep = load_known(release_csv, _needed(split, facts=facts), **where)
    elif split == "movies":
        rows, rep = load_movies(release_csv, _needed(split, facts=facts), **where)
    elif split == "okvqa":
        rows, rep = load_okvqa(
            release_csv,
            _member(_needed(split, questions=questions), "OpenEnded_mscoco_val2014_questions.json"),
            _member(_needed(split, annotations=annotations), "mscoco_val2014_annotations.json"),
            **where,
        )
    elif split == "heldout":
        rows, rep = load_evqa(release_csv, **where, **_evqa_args(heldout, seed))
    else:
        raise ValueError(f"unknown split {split!r}")
    ann = Report(f"annotate[{split}]")
    records = annotate(split, rows, seed, report=ann)
    if not records:
        raise ValueError(f"{release_csv}: no question of split {split!r} survived: {rep.summary()}")
    write_split(csv, split, records)
    n = len(load_split(csv))  # the table every later rule reads must validate
    write_json(human, human_answers(split, rows))  # {} for splits without annotators
    log.info("%s: %d questions written to %s", split, n, csv)
    write_json(report, {"load": rep.as_dict(), "annotate": ann.as_dict(), "questions": n})


def _needed(split: str, **given: Path | None) -> Path:
    """The one input given as a keyword, which split `split` cannot do without."""
    ((name, path),) = given.items()
    if path is None:
        raise ValueError(f"annotate_split: split {split!r} needs the input {name!r}")
    return path


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
