"""Safe, atomic archive extraction: zip and tar, links, path traversal and links outside
refused (naming the member), failures leave nothing behind, replacing only when asked."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from mmtrace.paperworld.archives import ExtractError, extract
from mmtrace.paperworld.checksums import ChecksumError, sha256_of

# --- archives --------------------------------------------------------------------------------

FILES = {"images/q1.jpg": b"\xff\xd8 one", "images/sub/q2.jpg": b"\xff\xd8 two", "README": b"hi"}


def _zip(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return path


def _no_temp_dirs(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("make", "links"),
    [(_zip, {}), (_tar, {"images/link.jpg": "q1.jpg"})],
    ids=["zip", "tar.gz"],
)
def test_extract_zip_and_tar(make, links, tmp_path):
    archive = make(tmp_path / "a.arc", FILES, links=links)
    out = tmp_path / "raw" / "known"
    marker = extract(
        archive, out, members={"images/q1.jpg": hashlib.sha256(FILES["images/q1.jpg"]).hexdigest()}
    )
    assert marker == tmp_path / "raw" / "known.extracted.json"
    for name, data in FILES.items():
        assert (out / name).read_bytes() == data
    assert all((out / name).is_symlink() for name in links)
    info = json.loads(marker.read_text())
    assert info["files"] == sorted([*FILES, *links])
    assert info["archive_sha256"] == sha256_of(archive)
    assert _no_temp_dirs(out.parent)


@pytest.mark.parametrize("make", [_zip, _tar], ids=["zip", "tar.gz"])
@pytest.mark.parametrize(
    "bad, why",
    [
        ({"../evil.txt": b"x"}, "path traversal"),
        ({"ok/../../evil.txt": b"x"}, "path traversal"),
        ({"/etc/evil.txt": b"x"}, "absolute path"),
    ],
)
def test_extract_refuses_traversal(make, bad, why, tmp_path):
    archive = make(tmp_path / "evil.arc", {"fine.txt": b"ok", **bad})
    out = tmp_path / "raw" / "x"
    with pytest.raises(ExtractError, match=why) as err:
        extract(archive, out)
    assert repr(next(iter(bad))) in str(err.value)  # names the member
    assert not out.exists() and _no_temp_dirs(out.parent)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "raw" / "evil.txt").exists()


@pytest.mark.parametrize("make", [_zip, _tar], ids=["zip", "tar.gz"])
@pytest.mark.parametrize("target", ["../../outside", "/etc/passwd", "sub/../../../x"])
def test_extract_refuses_links_outside(make, target, tmp_path):
    archive = make(tmp_path / "l.arc", {"a.txt": b"a"}, links={"sub/link": target})
    with pytest.raises(ExtractError, match="'sub/link'"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_any_link_in_a_zip_is_refused(tmp_path):
    archive = _zip(tmp_path / "l.zip", {"a.txt": b"a"}, links={"images/link.jpg": "../a.txt"})
    with pytest.raises(ExtractError, match="'images/link.jpg' is a symbolic link"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("make", [_zip, _tar], ids=["zip", "tar.gz"])
def test_a_link_through_another_link_is_refused(make, tmp_path):
    """`a/b -> ..` is inside; `c -> a/b/../..` looks inside as text but, with a/b a link,
    points two levels above the extraction folder."""
    archive = make(tmp_path / "chain.arc", {"x.txt": b"x"}, links={"a/b": "..", "c": "a/b/../.."})
    with pytest.raises(ExtractError, match=r"'c'|'a/b'"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("c"))


def test_failed_extraction_leaves_no_directory(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", FILES)
    out = tmp_path / "raw" / "known"
    with pytest.raises(ChecksumError, match="images/q1.jpg"):  # fails after unpacking
        extract(archive, out, members={"images/q1.jpg": "0" * 64})
    assert not out.exists() and _no_temp_dirs(out.parent)
    with pytest.raises(ExtractError, match="not in the archive"):
        extract(archive, out, members={"nope.jpg": "0" * 64})
    assert not out.exists()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(_zip(tmp_path / "ok.zip", FILES).read_bytes()[:-60])
    with pytest.raises(ExtractError, match="broken.zip"):
        extract(broken, out)
    assert not out.exists() and _no_temp_dirs(out.parent)


def test_extract_replaces_only_when_asked(tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # an empty directory (as Snakemake may create) is fine
    extract(_zip(tmp_path / "a.zip", {"a.txt": b"1"}), out)
    archive2 = _zip(tmp_path / "b.zip", {"b.txt": b"2"})
    with pytest.raises(ExtractError, match="not empty"):
        extract(archive2, out)
    assert (out / "a.txt").exists()
    extract(archive2, out, replace=True)
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"] and _no_temp_dirs(tmp_path)
