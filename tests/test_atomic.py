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


# ---------------------------------------------------------------- temps of killed writes
def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()  # reaped: the pid names no process now
    return proc.pid


def test_only_temps_of_dead_writers_on_this_machine_are_swept(tmp_path: Path) -> None:
    import os
    import time

    from cascade_ml.atomic import LEGACY_TEMP_AGE_S, host_tag, sweep_temps

    dead, alive = _dead_pid(), os.getpid()
    names = {
        "dead": f".tmp-{host_tag()}-{dead}-abcd1234.parquet",          # ours, writer gone
        "alive": f".tmp-{host_tag()}-{alive}-abcd1234.parquet",        # a write in progress
        "other_host": f".tmp-0badc0de-{dead}-abcd1234.parquet",        # another machine's
        "legacy_old": ".tmp-k3j4h5g6.parquet",                         # before names had pids
        "legacy_new": ".tmp-a1b2c3d4.parquet",
        "user": ".tmp-notes.txt",                                      # not a name we make
        "data": "part.parquet",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    staged = f".tmp-{host_tag()}-{dead}-NEAR-x1y2z3w4"  # a staged bundle folder
    (tmp_path / staged).mkdir()
    old = time.time() - LEGACY_TEMP_AGE_S - 60
    os.utime(tmp_path / names["legacy_old"], (old, old))
    removed = {p.name for p in sweep_temps(tmp_path)}
    assert removed == {names["dead"], names["legacy_old"], staged}
    left = {p.name for p in tmp_path.iterdir()}
    assert left == set(names.values()) - removed


def test_sweep_puts_back_a_folder_moved_aside_by_a_killed_swap(tmp_path: Path) -> None:
    from cascade_ml.atomic import host_tag, sweep_temps

    dead = _dead_pid()
    aside = tmp_path / f".tmp-{host_tag()}-{dead}-NEAR-old"   # replace_dir moved it here
    aside.mkdir()
    (aside / "bundle.json").write_text("old")
    nested = tmp_path / "deep" / f".tmp-{host_tag()}-{dead}-x.json"
    nested.parent.mkdir()
    nested.write_text("{")
    sweep_temps(tmp_path)  # not recursive: the nested temp stays
    assert (tmp_path / "NEAR" / "bundle.json").read_text() == "old" and nested.exists()
    sweep_temps(tmp_path, recursive=True)
    assert not nested.exists()
