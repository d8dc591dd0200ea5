"""The paper world (`world: paper`): downloads with checksums, the long-tail split, and the
section whose paths, models and settings replace the top-level ones when it is selected."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from mmtrace.config.base import Flag, GpuModel, Paths, Strict
from mmtrace.config.models import ModelSpec, Resources

SETTINGS_SECTIONS = ("evaluation", "tracing", "attention", "ablation", "editing")
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def remote_url(url: str) -> str:
    """`url` if the downloader may fetch it: https, or plain http only on the loopback
    interface (local stand-ins); `file://`, `ftp://` and plain http elsewhere are refused,
    since a checksum only protects files whose digest is pinned."""
    parsed = urlsplit(url.replace("{name}", "x"))
    if parsed.scheme == "https" and parsed.hostname:
        return url
    if parsed.scheme == "http" and parsed.hostname in LOOPBACK:
        return url
    raise ValueError(f"{url!r}: only https:// URLs are downloaded (plain http only from localhost)")


class Source(Strict):
    """A file the paper world downloads: from `url`, or Google Drive `gdrive` (a file id).
    `sha256` pins it; `null` means unknown when the config was written: the first download's
    digest is recorded in the lock file if `downloads.unpinned` is `record`, else it fails."""

    url: str | None = None
    gdrive: str | None = None
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = Field(None, ge=0)
    file: str  # name under <data>/raw/
    # Archives: extracted into <data>/raw/<name>/; `members` pins extracted files' sha256.
    extract: Flag = False
    members: dict[str, str] = {}

    @model_validator(mode="after")
    def _one_origin(self) -> Source:
        if (self.url is None) == (self.gdrive is None):
            raise ValueError("give exactly one of `url` and `gdrive`")
        if self.url is not None:
            remote_url(self.url)
        if "/" in self.file or self.file.startswith("."):
            raise ValueError(f"file: {self.file!r} must be a plain file name")
        return self


class Downloads(Strict):
    unpinned: Literal["error", "record"] = "record"
    retries: int = Field(5, ge=1)
    workers: int = Field(8, ge=1)  # parallel image downloads
    coco_url: str = "https://images.cocodataset.org/val2014/{name}"
    sources: dict[str, Source] = {}

    @model_validator(mode="after")
    def _secure(self) -> Downloads:
        remote_url(self.coco_url)
        return self


class HeldOut(Strict):
    """The long-tail editing split: an Encyclopedic-VQA landmark subset (docs/method.md §7b)."""

    n: int = Field(300, ge=1)
    question_type: str = "templated"
    dataset_name: str = "landmarks"
    keyword: str = "country"


REQUIRED_SOURCES = (
    "known_csv",
    "movies_csv",
    "okvqa_csv",
    "known_1000",
    "movies_table",
    "okvqa_questions",
    "okvqa_annotations",
    "known_images",
    "movies_images",
    "evqa_csv",
    "gldv2_index",
)


class Paper(Strict):
    """The paper world (`world: paper`): real data and checkpoints. Its `paths`, `use_gpu`,
    `models`, `resources` and `settings` replace the top-level ones when it is selected;
    `settings` holds per-section overrides (e.g. the paper's windows for 32-layer models)."""

    paths: Paths = Paths(
        data="data/paper",
        results="results/paper",
        figures="figures/paper",
        tables="paper_tables/paper",
        logs="logs/paper",
    )
    use_gpu: Flag = True
    gpu_model: GpuModel = None
    models: dict[str, ModelSpec] = {}
    # Which of `models` to run (None: all); an MLLM's `llm` counterpart must be run with it.
    run: list[str] | None = None
    resources: dict[str, Resources] = {}
    settings: dict[str, dict[str, Any]] = {}
    downloads: Downloads = Downloads()
    heldout: HeldOut = HeldOut()

    @model_validator(mode="after")
    def _complete(self) -> Paper:
        missing = [s for s in REQUIRED_SOURCES if s not in self.downloads.sources]
        if self.models and missing:
            raise ValueError(f"downloads.sources: missing {', '.join(missing)}")
        extra = set(self.run or ()) - set(self.models)
        if extra:
            raise ValueError(f"run: not in paper.models: {sorted(extra)}")
        unknown = set(self.settings) - set(SETTINGS_SECTIONS)
        if unknown:
            raise ValueError(f"settings: unknown sections {sorted(unknown)}")
        return self
