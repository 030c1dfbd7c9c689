"""MarketStore: idempotent merges, conflict rules, atomic writes, clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade_ml.data import store as store_module
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.errors import CascadeError, DataValidationError

KEY = PartitionKey("ohlcv", "binance", "NEAR", "1h")


def bars(start: str, n: int, price: float = 2.0) -> pd.DataFrame:
    idx = pd.date_range(start, periods=n, freq="h", tz="UTC", name="timestamp").as_unit("ns")
    close = price + np.arange(n) * 0.01
    return pd.DataFrame({"open": close, "high": close + 0.05, "low": close - 0.05,
                         "close": close, "volume": 100.0 + np.arange(n)}, index=idx)


def snapshot(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    frame = bars("2024-01-01", 24)
    result = store.write(KEY, frame, source="test")
    assert (result.added, result.replaced, result.unchanged, result.rows_total) == (24, 0, 0, 24)
    back = store.read("ohlcv", "NEAR")
    pd.testing.assert_frame_equal(back, frame, check_freq=False)
    assert str(back.index.tz) == "UTC" and back.index.name == "timestamp"
    assert back.attrs["sources"] == ["test"]


def test_same_rows_twice_change_nothing(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write(KEY, bars("2024-01-01", 24))
    before = snapshot(tmp_path)
    again = store.write(KEY, bars("2024-01-01", 24))
    assert (again.added, again.replaced, again.unchanged) == (0, 0, 24)
    assert not again.changed
    assert snapshot(tmp_path) == before


def test_overlapping_write_merges_and_sorts(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write(KEY, bars("2024-01-02", 24))
    result = store.write(KEY, bars("2024-01-01", 36))  # 24 new before, 12 overlapping
    assert result.added == 24 and result.unchanged == 0 and result.rows_total == 48
    stored = store.read("ohlcv", "NEAR")
    assert stored.index.is_monotonic_increasing and len(stored) == 48


@pytest.mark.parametrize("rule, expected_close", [("replace", 9.0), ("keep", 2.0)])
def test_conflict_rules(tmp_path: Path, rule: str, expected_close: float) -> None:
    store = MarketStore(tmp_path)
    store.write(KEY, bars("2024-01-01", 3))
    changed = bars("2024-01-01", 1, price=9.0)
    result = store.write(KEY, changed, on_conflict=rule)
    assert result.conflicts == 1
    assert result.replaced == (1 if rule == "replace" else 0)
    assert store.read("ohlcv", "NEAR")["close"].iloc[0] == pytest.approx(expected_close)


def test_conflict_rule_error_refuses_and_keeps_store(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write(KEY, bars("2024-01-01", 3))
    before = snapshot(tmp_path)
    with pytest.raises(DataValidationError, match="1 row\\(s\\) conflict .*2024-01-01 00:00"):
        store.write(KEY, bars("2024-01-01", 1, price=9.0), on_conflict="error")
    assert snapshot(tmp_path) == before


def test_unknown_conflict_rule(tmp_path: Path) -> None:
    with pytest.raises(CascadeError, match="unknown conflict rule 'merge'"):
        MarketStore(tmp_path).write(KEY, bars("2024-01-01", 2), on_conflict="merge")


@pytest.mark.parametrize("column, value, message", [
    ("close", -1.0, "must be positive"),
    ("close", np.inf, "finite"),
    ("volume", -5.0, "must not be negative"),
    ("low", 100.0, "high must be >= low"),
])
def test_bad_frames_are_refused_without_writing(tmp_path: Path, column: str, value: float,
                                                message: str) -> None:
    store = MarketStore(tmp_path)
    store.write(KEY, bars("2024-01-01", 3))
    before = snapshot(tmp_path)
    frame = bars("2024-01-01", 5)
    frame.iloc[3, frame.columns.get_loc(column)] = value
    with pytest.raises(DataValidationError, match=message):
        store.write(KEY, frame)
    assert snapshot(tmp_path) == before


def test_crash_during_write_leaves_old_partition_and_no_temp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MarketStore(tmp_path)
    store.write(KEY, bars("2024-01-01", 24))
    before = snapshot(tmp_path)
    real_write = store_module.pq.write_table

    def crash(table, where, **kwargs):  # noqa: ANN001 - pyarrow's signature
        real_write(table.slice(0, 3), where, **kwargs)  # some bytes reach the temp file
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(store_module.pq, "write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write(KEY, bars("2024-01-01", 48))
    assert snapshot(tmp_path) == before
    assert not list(tmp_path.rglob(".tmp-*"))


def test_sigkill_mid_write_never_exposes_half_a_partition(tmp_path: Path) -> None:
    """A real process killed while writing: the partition on disk is still the old, readable one."""
    store = MarketStore(tmp_path)
    store.write(KEY, bars("2024-01-01", 24))
    before = (tmp_path / KEY.relpath()).read_bytes()
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np, pandas as pd
        from cascade_ml.data import store as sm
        real = sm.pq.write_table
        def slow(table, where, **kw):
            real(table.slice(0, 5), where, **kw)
            where.flush()
            print("writing", flush=True)
            time.sleep(60)
        sm.pq.write_table = slow
        idx = pd.date_range("2024-01-01", periods=500, freq="h", tz="UTC", name="timestamp")
        c = np.full(500, 3.0)
        frame = pd.DataFrame({{"open": c, "high": c, "low": c, "close": c, "volume": c}}, index=idx)
        sm.MarketStore({str(tmp_path)!r}).write(sm.PartitionKey("ohlcv", "binance", "NEAR", "1h"),
                                                frame)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert (tmp_path / KEY.relpath()).read_bytes() == before
    assert len(store.read("ohlcv", "NEAR")) == 24
    assert store.partitions() == [KEY]  # a leftover temp file is never listed as a partition


def test_read_filters_and_resolve_errors(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write(KEY, bars("2024-01-01", 48))
    store.write(PartitionKey("ohlcv", "binance", "NEAR", "4h"),
                bars("2024-01-01", 4).asfreq("4h").dropna())
    with pytest.raises(CascadeError, match="several partitions match"):
        store.read("ohlcv", "NEAR")
    part = store.read("ohlcv", "NEAR", interval="1h", start="2024-01-02", end="2024-01-02 05:00")
    assert len(part) == 6 and part.index[0] == pd.Timestamp("2024-01-02", tz="UTC")
    with pytest.raises(CascadeError, match="no ohlcv for DOGE .*symbols with ohlcv: \\['NEAR'\\]"):
        store.read("ohlcv", "DOGE")


@pytest.mark.parametrize("field, value", [("dataset", "trades"), ("symbol", "NE AR"),
                                          ("venue", "../x")])
def test_partition_key_rejects_bad_names(field: str, value: str) -> None:
    args = {"dataset": "ohlcv", "venue": "binance", "symbol": "NEAR", "interval": "1h",
            field: value}
    with pytest.raises(CascadeError, match=field if field != "dataset" else "unknown dataset"):
        PartitionKey(**args)


def test_unreadable_partition_is_a_clear_error(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write(KEY, bars("2024-01-01", 24))
    path = tmp_path / KEY.relpath()
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CascadeError, match="unreadable store partition"):
        store.read("ohlcv", "NEAR")


def test_write_table_is_atomic_and_keeps_meta(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    path = store.write_table("features/symbol=NEAR/features.parquet", frame, {"version": 1})
    assert path.exists() and not list(path.parent.glob(".tmp-*"))
    back = store.read_table("features/symbol=NEAR/features.parquet")
    assert back["x"].tolist() == [1.0, 2.0] and back.attrs == {"version": 1}


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=4),
       order=st.randoms(use_true_random=False))
def test_chunked_writes_in_any_order_equal_one_write(cuts: list[int], order) -> None:  # noqa: ANN001
    """Merging overlapping/unordered chunks gives exactly the frame written in one go."""
    full = bars("2024-01-01", 40)
    edges = sorted({0, 40, *cuts})
    chunks = [full.iloc[max(a - 2, 0):b] for a, b in zip(edges, edges[1:], strict=False) if b > a]
    order.shuffle(chunks)
    with tempfile.TemporaryDirectory() as root:
        store = MarketStore(root)
        for chunk in chunks:
            store.write(KEY, chunk)
        pd.testing.assert_frame_equal(store.read("ohlcv", "NEAR"), full, check_freq=False)
