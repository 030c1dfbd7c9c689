"""kill -9 at any point of the loop, restart: the same book as a run never interrupted, and a
store with no duplicate and nothing half-written."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from loop_helpers import FROM, UNTIL, copy_replay, ledger_is_consistent, store_is_point_in_time

from cascade_ml.contracts.layout import scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.live.run import replay_db_url
from cascade_ml.live.state import LoopState

CLI = str(Path(sys.executable).parent / "cascade-ml")


def command(pipeline: Path) -> list[str]:
    return [CLI, "--log-level", "WARNING", "live", "--pipeline", str(pipeline), "--replay",
            "--from", FROM.isoformat(), "--until", UNTIL.isoformat(), "--every", "0"]


def start(pipeline: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command(pipeline), stdout=log.open("ab"), stderr=subprocess.STDOUT)


def decisions(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("select count(*) from decisions").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def kill_when(proc: subprocess.Popen, db: Path, count: int, after_s: float = 0.0,
              timeout: float = 240.0) -> int:
    """SIGKILL ``proc`` ``after_s`` seconds after the book holds ``count`` decisions."""
    deadline = time.monotonic() + timeout
    while decisions(db) < count:
        assert proc.poll() is None, f"the loop ended early ({proc.returncode})"
        assert time.monotonic() < deadline, "the loop made no progress"
        time.sleep(0.005)
    time.sleep(after_s)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    return decisions(db)


def book_rows(db_url: str) -> dict[str, pd.DataFrame]:
    """The book's content that must not depend on restarts (ids and wall-clock times aside)."""
    frames = ledger_is_consistent(db_url)
    keep = {"decisions": ["symbol", "bar_ts", "as_of", "action", "hedge_ratio", "leverage_cap",
                          "size_cap_notional", "fail_safe", "model_version", "forecast_vol"],
            "orders": ["bar_ts", "leg", "instrument", "side", "qty", "status", "ref_price"],
            "fills": ["leg", "instrument", "side", "qty", "price", "fee", "realised_pnl"],
            "funding_payments": ["instrument", "funding_ts", "qty", "amount"],
            "equity_snapshots": ["bar_ts", "cash", "equity", "unrealised_pnl"]}
    return {name: frames[name][cols].reset_index(drop=True) for name, cols in keep.items()}


def test_kill_9_anywhere_then_restart_matches_an_uninterrupted_run(
        replay_base: Path, reference_replay: dict, tmp_path: Path) -> None:
    pipeline, _ = copy_replay(replay_base, tmp_path)
    replay_dir = tmp_path / "replay"
    db, log = replay_dir / "book.db", tmp_path / "loop.log"

    # 1: killed the moment its third cycle is committed (before the state file records it)
    first = kill_when(start(pipeline, log), db, 3)
    # 2: killed somewhere inside a later cycle (collecting, features, forecast or the book)
    second = kill_when(start(pipeline, log), db, 7, after_s=0.35)
    assert 3 <= first < second < 13
    state = LoopState.load(replay_dir / "loop_state.json")
    assert state.last_bar is not None and state.last_bar <= FROM + pd.Timedelta(hours=second)
    # 3: runs to the end
    done = subprocess.run(command(pipeline), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, log.read_text()[-3000:] + done.stdout + done.stderr

    got, want = (book_rows(replay_db_url(replay_dir)),
                 book_rows(replay_db_url(reference_replay["dir"])))
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=False, rtol=1e-9,
                                      obj=name)
    store = MarketStore(replay_dir / "store")
    store_is_point_in_time(MarketStore(replay_dir / "source"), store,
                           UNTIL + pd.Timedelta("10s"))
    scores = store.read_table(scores_path("NEAR"))
    assert len(scores) == 13 and scores.index.is_unique
    for path in replay_dir.rglob("*"):  # nothing half-written: every file reads whole
        if path.suffix == ".parquet" and not path.name.startswith("."):
            pq.read_table(path)
    assert not [p for p in (replay_dir / "store").rglob(".tmp-*")]


@pytest.mark.parametrize("bad", [["--replay", "--from", "2026-04-01"], ["--from", "2026-04-01"]])
def test_cli_refuses_incomplete_replay_options(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, bad: list[str]) -> None:
    from cascade_ml.cli.main import main

    monkeypatch.setattr(sys, "argv", ["cascade-ml", "live", *bad])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2 and "--replay" in capsys.readouterr().err
