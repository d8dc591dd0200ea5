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
