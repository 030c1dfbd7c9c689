"""Hyperliquid stats JSON: ``{"chart_data": [{"time", "coin", "daily_notional_liquidated"}]}``.

One row per (day, coin) only on days with liquidations; ``time`` is the UTC day start written
without an offset (Hyperliquid's stats API works in UTC), so naive times are read as UTC here.
Stored as dataset ``liquidations``, venue ``hyperliquid``, interval ``1d``, timestamp = day start
(the total is known at the end of the day).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cascade_ml.data.sources.base import FileSource, Loaded, require_columns
from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.store import PartitionKey
from cascade_ml.data.validate import to_canonical
from cascade_ml.errors import DataValidationError

FIELDS = ("time", "coin", "daily_notional_liquidated")


def matches(path: Path) -> bool:
    if path.suffix != ".json":
        return False
    with path.open("rb") as handle:
        return b'"chart_data"' in handle.read(4096)


class HyperliquidSource(FileSource):
    """Hyperliquid stats JSON with ``chart_data`` rows (an empty file is not recognised)."""

    name = "hyperliquid"
    suffixes = (".json",)

    def detect(self, path: Path) -> bool:
        return path.stat().st_size > 0 and matches(path)

    def load(self, path: Path, venue: str | None = None) -> list[Loaded]:
        return load(path, venue)


def load(path: Path, venue: str | None = None) -> list[Loaded]:
    where = str(path)
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"not valid JSON ({exc})", where) from exc
    rows = doc.get("chart_data") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not rows:
        raise DataValidationError("no 'chart_data' rows", where)
    frame = pd.DataFrame(rows)
    require_columns(frame, FIELDS, where)
    out = []
    for coin, group in frame.groupby("coin", sort=True):
        raw = pd.DataFrame({"timestamp": group["time"].to_numpy(),
                            "total_notional": group["daily_notional_liquidated"].to_numpy()})
        canon = to_canonical(raw, "liquidations", f"{where} (coin {coin})", naive_is_utc=True)
        key = PartitionKey("liquidations", venue or "hyperliquid", normalize_symbol(coin), "1d")
        out.append(Loaded(key, canon, where))
    return out
