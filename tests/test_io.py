import json

import pytest

from mmtrace.io import atomic_open, dumps_json, write_json


def test_atomic_open_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "result.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("partial")
        raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left


def test_json_is_sorted_and_rounded():
    a = dumps_json({"b": 0.1 + 0.2, "a": [1.0000000001, float("nan")]})
    assert a == dumps_json({"a": [1.0, float("nan")], "b": 0.3})
    assert a.index('"a"') < a.index('"b"')
    assert "null" in a


def test_atomic_writes_keep_normal_permissions(tmp_path):
    """mkstemp makes 0600 files: results must get what a plain open() would give."""
    import os
    import stat

    new = tmp_path / "new.json"
    write_json(new, {"a": 1})
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~mask
    shared = tmp_path / "shared.json"
    shared.write_text("{}")
    shared.chmod(0o664)
    write_json(shared, {"a": 2})
    assert stat.S_IMODE(shared.stat().st_mode) == 0o664


def test_nan_is_written_as_null_with_a_warning_naming_where(tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="mmtrace.io"):
        write_json(tmp_path / "x.json", {"ok": 1.0, "curve": [0.5, float("nan")]})
    assert "null" in (tmp_path / "x.json").read_text()
    (record,) = caplog.records
    assert "x.json" in record.getMessage() and "curve[1]" in record.getMessage()
