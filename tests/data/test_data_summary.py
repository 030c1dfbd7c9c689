"""summarize(): spans, row counts, gaps (> 1.5x interval) and staleness per partition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from cascade_ml.cli.main import app
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.data.summary import count_gaps, format_summary, summarize


def test_summary_counts_gaps_and_staleness(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    idx = pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC", name="timestamp")
    idx = idx.delete([3, 4, 7])  # two holes
    c = np.linspace(1, 2, len(idx))
    store.write(PartitionKey("ohlcv", "binance", "NEAR", "1h"),
                pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": c}, index=idx))
    now = pd.Timestamp("2024-01-02 09:00", tz="UTC")
    table = summarize(store, now=now)
    row = table.iloc[0]
    assert (row["dataset"], row["venue"], row["symbol"], row["interval"]) == ("ohlcv", "binance",
                                                                             "NEAR", "1h")
    assert row["rows"] == 7 and row["gaps"] == 2
    assert row["first"] == idx[0] and row["last"] == idx[-1]
    assert row["staleness"] == now - idx[-1]
    assert "NEAR" in format_summary(table)


def test_count_gaps_uses_the_partition_interval() -> None:
    idx = pd.DatetimeIndex(["2024-01-01", "2024-01-01 08:00", "2024-01-01 20:00"], tz="UTC")
    assert count_gaps(idx, "8h") == 0  # 12h step is exactly 1.5x: not a gap
    assert count_gaps(idx, "4h") == 2


def test_summary_of_sample_store(sample_store: MarketStore) -> None:
    table = summarize(sample_store)
    near = table[(table.dataset == "ohlcv") & (table.symbol == "NEAR")].iloc[0]
    assert near["gaps"] == 0 and near["rows"] == 29604
    assert len(table) == len(sample_store.partitions())
    assert (table["staleness"] > pd.Timedelta(0)).all()


def test_cli_data_summary(tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(app, ["data", "summary", "--store", str(tmp_path)])
    assert empty.exit_code == 0 and "the store is empty" in empty.output
