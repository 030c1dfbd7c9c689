"""The write-then-rename helpers every writer in the project uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascade_ml.atomic import atomic_file, read_json, write_json


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "table.json"
    write_json(target, {"version": 1})
    with pytest.raises(RuntimeError), atomic_file(target, "w") as handle:
        handle.write('{"version": 2, "trunc')
        raise RuntimeError("killed mid-write")
    assert read_json(target) == {"version": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.json"]


def test_successful_write_replaces_and_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    write_json(target, {"a": 1})
    write_json(target, {"b": [1, 2]})
    assert read_json(target) == {"b": [1, 2]}
    assert read_json(tmp_path / "missing.json") is None
