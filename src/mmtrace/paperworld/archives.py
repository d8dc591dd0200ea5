"""Safe, atomic extraction of the downloaded archives (the Known and Movies image archives,
OK-VQA's zipped questions and annotations), with an optional per-member checksum.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from mmtrace.io import write_json
from mmtrace.paperworld.checksums import ChecksumError, DownloadError, sha256_of

log = logging.getLogger(__name__)


class ExtractError(DownloadError):
    """An archive is unsafe (path traversal, links outside, special files) or unreadable."""


def _safe_member(archive: Path, name: str) -> PurePosixPath:
    """The member's relative path, or ExtractError if it is absolute or climbs out with '..'."""
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or path.is_absolute():
        raise ExtractError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in path.parts:
        raise ExtractError(
            f"{archive}: member {name!r} contains '..' (path traversal); refusing to extract"
        )
    return path


def _check_link(
    archive: Path,
    name: str,
    member: PurePosixPath,
    target: str,
    hard: bool,
    links: set[PurePosixPath],
) -> None:
    """Refuse a link whose target is absolute, resolves outside the extraction directory
    (symlinks resolve from the member's directory, tar hard links from the archive root), or
    passes through another link of the archive: `a/b -> ..` then `c -> a/b/../..` looks inside
    as text but leaves the directory once `a/b` is a link, so a target is only accepted if it
    is plain directories all the way."""
    if target.startswith("/") or PurePosixPath(target).is_absolute():
        raise ExtractError(
            f"{archive}: member {name!r} links to the absolute path {target!r}; refusing to extract"
        )
    depth = [] if hard else list(member.parent.parts)
    for part in PurePosixPath(target).parts:
        if part == "..":
            if not depth:
                raise ExtractError(
                    f"{archive}: member {name!r} links to {target!r}, outside the extraction "
                    f"directory; refusing to extract"
                )
            depth = depth[:-1]
        elif part != ".":
            depth = [*depth, part]
        if depth and PurePosixPath(*depth) in links and PurePosixPath(*depth) != member:
            raise ExtractError(
                f"{archive}: member {name!r} links to {target!r} through the link "
                f"{PurePosixPath(*depth).as_posix()!r}; refusing to extract"
            )


def _extract_zip(archive: Path, into: Path) -> None:
    """Zip archives carry links only as Unix mode bits that unzip tools treat inconsistently;
    the image archives this project reads have none, so any link in a zip is refused."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _safe_member(archive, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ExtractError(
                    f"{archive}: member {info.filename!r} is a symbolic link; links in zip "
                    "archives are refused"
                )
        zf.extractall(into)


def _extract_tar(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        links = {_safe_member(archive, m.name) for m in members if m.issym() or m.islnk()}
        for m in members:
            rel = _safe_member(archive, m.name)
            if m.issym() or m.islnk():
                _check_link(archive, m.name, rel, m.linkname, m.islnk(), links)
            elif not (m.isfile() or m.isdir()):
                raise ExtractError(
                    f"{archive}: member {m.name!r} is a device, FIFO or other special file; "
                    f"refusing to extract"
                )
        if hasattr(tarfile, "data_filter"):  # the stdlib's own checks as a second line
            tf.extractall(into, members=members, filter="data")
        else:  # pragma: no cover - Python without the PEP 706 backport
            tf.extractall(into, members=members)


def _listing(root: Path) -> list[str]:
    """Every file and link under `root` (links are not followed), as sorted POSIX paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        out += [(here / n).relative_to(root).as_posix() for n in filenames]
        out += [
            (here / n).relative_to(root).as_posix() for n in dirnames if (here / n).is_symlink()
        ]
    return sorted(out)


def marker_path(dest_dir: str | Path) -> Path:
    """Where `extract` writes its marker by default: `<dest_dir>.extracted.json`, beside the
    directory (Snakemake creates an output's parent, so a marker inside `dest_dir` would make
    the directory exist before extraction)."""
    dest_dir = Path(dest_dir)
    return dest_dir.with_name(dest_dir.name + ".extracted.json")


def extract(
    archive: str | Path,
    dest_dir: str | Path,
    marker: str | Path | None = None,
    members: Mapping[str, str] | None = None,
    replace: bool = False,
) -> Path:
    """Unpack a .zip or .tar(.gz/.bz2/.xz) `archive` into `dest_dir`, safely and atomically;
    return the marker file (`marker`, default `marker_path(dest_dir)`).

    Members with absolute paths, '..' or links leading outside are refused (naming the member)
    before anything is written. Everything is unpacked into a temporary sibling directory,
    `members` (`{relative path: sha256}`) are verified there, and only then is it renamed onto
    `dest_dir`, so a failure leaves no `dest_dir` (or the previous one untouched). An existing
    non-empty `dest_dir` is replaced only with `replace=True`. The marker JSON lists the files
    and the archive's SHA-256; the workflow uses it as the rule's output."""
    archive = Path(archive)
    dest_dir = Path(dest_dir)
    marker = Path(marker) if marker is not None else marker_path(dest_dir)
    if not archive.is_file():
        raise ExtractError(f"{archive}: no such archive")
    if dest_dir.exists() and any(dest_dir.iterdir()) and not replace:
        raise ExtractError(
            f"{dest_dir} already exists and is not empty; delete it (or pass replace=True) to "
            f"extract {archive} there"
        )
    if zipfile.is_zipfile(archive):
        unpack = _extract_zip
    elif tarfile.is_tarfile(archive):
        unpack = _extract_tar
    else:
        raise ExtractError(f"{archive}: not a zip or tar archive")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".tmp", dir=dest_dir.parent))
    try:
        try:
            unpack(archive, tmp)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, UnicodeDecodeError) as exc:
            raise ExtractError(f"{archive}: cannot be extracted ({exc})") from exc
        for rel, sha in sorted((members or {}).items()):
            path = tmp / rel
            if not path.is_file():
                raise ExtractError(f"{archive}: expected member {rel!r} is not in the archive")
            got = sha256_of(path)
            if got != sha:
                raise ChecksumError(
                    f"{archive}: member {rel!r} hashes to {got}, not {sha} as recorded in the "
                    f"config"
                )
        files = _listing(tmp)
        if dest_dir.exists():
            old = dest_dir.with_name(f".{dest_dir.name}.old-{os.getpid()}")
            os.rename(dest_dir, old)
            os.rename(tmp, dest_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    write_json(
        marker,
        {
            "archive": archive.name,
            "archive_sha256": sha256_of(archive),
            "dest": str(dest_dir),
            "files": files,
        },
    )
    log.info("%s: extracted %d files into %s", archive, len(files), dest_dir)
    return marker
