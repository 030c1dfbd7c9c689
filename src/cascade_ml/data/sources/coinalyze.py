"""Coinalyze API pulls saved as CSV (smoothbrainquant layout), one row per (day, coin).

Open interest (``oi_open, oi_high, oi_low, oi_close`` in USD, ``convert_to_usd=true``): the
instruments are Binance COIN-margined inverse perps (``BTCUSD_PERP.A``), so the venue is
``binance_coinm``. A daily OHLC row starting at ``timestamp`` ends a day later; ``oi_close`` is
the snapshot at that end, so it is stored at ``timestamp + 1 day`` (storing it at the day start
would let a feature see the end-of-day value 24 hours early).
The Coinalyze funding file is a daily aggregate of percent rates, not settlements: skipped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cascade_ml.data.sources.base import (
    CsvKindSource,
    Loaded,
    SkipFile,
    read_csv,
    require_columns,
)
from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.store import PartitionKey
from cascade_ml.data.validate import parse_timestamps, to_canonical

OI_COLS = ("coin_symbol", "symbol", "timestamp", "oi_close")
FUNDING_COLS = ("coin_symbol", "symbol", "timestamp", "funding_rate_pct")


def kind_of(header: list[str]) -> str | None:
    if all(c in header for c in OI_COLS):
        return "oi"
    if all(c in header for c in FUNDING_COLS):
        return "funding"
    return None


class CoinalyzeSource(CsvKindSource):
    """Coinalyze open interest (and skipped funding) CSVs, recognised by their columns."""

    name = "coinalyze"
    label = "Coinalyze"

    def kind_of(self, header: list[str]) -> str | None:
        return kind_of(header)

    def load_kind(self, path: Path, kind: str, venue: str | None) -> list[Loaded]:
        return load(path, kind, venue)

def load(path: Path, kind: str, venue: str | None = None) -> list[Loaded]:
    if kind == "funding":
        raise SkipFile("Coinalyze daily funding aggregates (percent, not per settlement); "
                       "funding comes from the exchanges' settlement history")
    where = str(path)
    frame = read_csv(path)
    require_columns(frame, OI_COLS, where)
    out = []
    for coin, group in frame.groupby("coin_symbol", sort=True):
        here = f"{where} (coin {coin})"
        start = parse_timestamps(group["timestamp"].reset_index(drop=True), here)
        raw = pd.DataFrame({"timestamp": start + pd.Timedelta(days=1),
                            "open_interest_value": group["oi_close"].to_numpy()})
        key = PartitionKey("open_interest", venue or "binance_coinm", normalize_symbol(coin), "1d")
        out.append(Loaded(key, to_canonical(raw, "open_interest", here), where,
                          ["oi_close stored at the end of its day (snapshot time)"]))
    return out
