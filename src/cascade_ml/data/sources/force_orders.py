"""Recordings of Binance USD-M liquidation orders (the ``<symbol>@forceOrder`` stream) as CSV.

Layout (recognised by the exact header): ``Symbol,Side,Order Type,Time,Quantity,Price``, one row
per liquidation order, ``Time`` in epoch ms. ``SELL`` is a long position being liquidated,
``BUY`` a short one; notional = Quantity x Price (the order's price as recorded).

Stored as ``liquidations/binance/<SYM>/1h``: per hour (timestamp = hour start, known at its end)
``long_notional``, ``short_notional`` and ``total_notional``. The recording is taken as
continuous, so hours inside it without an event are stored as 0; the first and the last hour are
dropped because the recording started and stopped inside them (their totals would be partial).
Binance pushes at most one liquidation per symbol per second on this stream, so the totals are a
lower bound of what was liquidated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.data.sources.base import (
    FileSource,
    Loaded,
    SkipFile,
    csv_header,
    read_csv,
    require_columns,
)
from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.store import PartitionKey
from cascade_ml.data.validate import parse_timestamps, to_canonical
from cascade_ml.errors import DataValidationError

COLUMNS = ("Symbol", "Side", "Order Type", "Time", "Quantity", "Price")
INTERVAL = "1h"
VENUE = "binance"


class ForceOrderSource(FileSource):
    """Binance liquidation-order recordings (see the module docstring)."""

    name = "binance_force_orders"
    suffixes = (".csv",)

    def detect(self, path: Path) -> bool:
        return csv_header(path) == list(COLUMNS)

    def load(self, path: Path, venue: str | None = None) -> list[Loaded]:
        where = str(path)
        frame = read_csv(path)
        require_columns(frame, COLUMNS, where)
        out = []
        for raw_symbol, group in frame.groupby("Symbol", sort=True):
            here = f"{where} (symbol {raw_symbol})"
            hourly, notes = hourly_totals(group.reset_index(drop=True), here)
            key = PartitionKey("liquidations", venue or VENUE, normalize_symbol(raw_symbol),
                               INTERVAL)
            out.append(Loaded(key, to_canonical(hourly, "liquidations", here), where, notes))
        return out


def _numbers(values: pd.Series, name: str, where: str) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(numbers) | (numbers <= 0)
    if bad.any():
        rows = (np.flatnonzero(bad) + 1)[:5].tolist()
        raise DataValidationError(f"column {name!r}: missing, non-numeric or non-positive value "
                                  f"in data rows {rows}", where)
    return numbers


def hourly_totals(events: pd.DataFrame, where: str) -> tuple[pd.DataFrame, list[str]]:
    """Long/short/total liquidated notional per complete hour of the recording."""
    side = events["Side"].astype(str).str.strip().str.upper()
    odd = ~side.isin(["BUY", "SELL"])
    if odd.any():
        rows = (np.flatnonzero(odd.to_numpy()) + 1)[:5].tolist()
        raise DataValidationError(f"column 'Side': expected BUY or SELL in data rows {rows}",
                                  where)
    stamps = parse_timestamps(events["Time"], where)
    notional = _numbers(events["Quantity"], "Quantity", where) * _numbers(
        events["Price"], "Price", where)
    hour = stamps.floor("h")
    per_event = pd.DataFrame({"long_notional": np.where(side == "SELL", notional, 0.0),
                              "short_notional": np.where(side == "BUY", notional, 0.0)},
                             index=hour)
    grid = pd.date_range(hour.min(), hour.max(), freq="h", name="timestamp")
    totals = per_event.groupby(level=0).sum().reindex(grid, fill_value=0.0)
    complete = totals.iloc[1:-1]
    if complete.empty:
        raise SkipFile("the recording covers no complete hour (its first and last hours are "
                       "partial)")
    complete = complete.assign(total_notional=complete["long_notional"]
                               + complete["short_notional"])
    quiet = int((complete["total_notional"] == 0).sum())
    notes = [f"{len(events)} liquidation order(s) summed per hour; first and last (partial) "
             "hours dropped"]
    if quiet:
        notes.append(f"{quiet} hour(s) without liquidations stored as 0")
    return complete.reset_index(), notes
