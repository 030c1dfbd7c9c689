"""What the store holds: one row per partition with its span, size, gaps and staleness.

A gap is a step between consecutive rows longer than 1.5x the partition's interval (for sparse
series such as Hyperliquid daily liquidations, days without a row count as gaps).
"""

from __future__ import annotations

import pandas as pd

from cascade_ml.data.sources.base import interval_to_timedelta
from cascade_ml.data.store import MarketStore

COLUMNS = ["dataset", "venue", "symbol", "interval", "first", "last", "rows", "gaps", "staleness"]


def count_gaps(index: pd.DatetimeIndex, interval: str) -> int:
    """Steps longer than 1.5x the interval."""
    if len(index) < 2:
        return 0
    limit = interval_to_timedelta(interval) * 1.5
    return int((pd.Series(index).diff().dropna() > limit).sum())


def summarize(store: MarketStore, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """Per partition: dataset, venue, symbol, interval, first, last, rows, gaps, staleness."""
    now = now or pd.Timestamp.now(tz="UTC")
    rows = []
    for key in store.partitions():
        frame = store.read_partition(key)
        first = frame.index.min() if len(frame) else pd.NaT
        last = frame.index.max() if len(frame) else pd.NaT
        rows.append({"dataset": key.dataset, "venue": key.venue, "symbol": key.symbol,
                     "interval": key.interval, "first": first, "last": last, "rows": len(frame),
                     "gaps": count_gaps(frame.index, key.interval), "staleness": now - last})
    return pd.DataFrame(rows, columns=COLUMNS)


def format_summary(table: pd.DataFrame) -> str:
    """A compact text table (timestamps to the minute, staleness rounded to the hour)."""
    if table.empty:
        return "the store is empty"
    shown = table.copy()
    for col in ("first", "last"):
        shown[col] = shown[col].dt.strftime("%Y-%m-%d %H:%M")
    shown["staleness"] = shown["staleness"].dt.round("h").astype(str)
    return shown.to_string(index=False)

