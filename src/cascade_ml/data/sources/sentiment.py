"""Sentiment CSVs.

- Alternative.me Crypto Fear & Greed (``date,timestamp,value,classification``; ``timestamp`` is
  the UTC day start in epoch seconds): dataset ``sentiment``, symbol ``MARKET``, venue
  ``alternative.me``, interval ``1d``, column ``score`` (0-100).
- Generic per-symbol sentiment (``timestamp,symbol`` plus ``score`` and/or ``mentions``, optional
  ``venue`` column naming the provider, default ``social``): one partition per symbol, interval
  inferred from the spacing. Timestamps need an offset or epoch numbers.
"""

from __future__ import annotations

from pathlib import Path

from cascade_ml.data.sources.base import (
    CsvKindSource,
    Loaded,
    infer_interval,
    read_csv,
    require_columns,
)
from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.store import PartitionKey
from cascade_ml.data.validate import to_canonical

FNG_COLS = ["date", "timestamp", "value", "classification"]


def kind_of(header: list[str]) -> str | None:
    if header[:4] == FNG_COLS:
        return "fng"
    if "timestamp" in header and "symbol" in header and ({"score", "mentions"} & set(header)):
        return "generic"
    return None


class SentimentSource(CsvKindSource):
    """Fear & Greed and generic per-symbol sentiment CSVs, recognised by their columns."""

    name = "sentiment"
    label = "sentiment"

    def kind_of(self, header: list[str]) -> str | None:
        return kind_of(header)

    def load_kind(self, path: Path, kind: str, venue: str | None) -> list[Loaded]:
        return load(path, kind, venue)

def load(path: Path, kind: str, venue: str | None = None) -> list[Loaded]:
    where = str(path)
    frame = read_csv(path)
    if kind == "fng":
        require_columns(frame, FNG_COLS, where)
        raw = frame[["timestamp", "value"]].rename(columns={"value": "score"})
        key = PartitionKey("sentiment", venue or "alternative.me", "MARKET", "1d")
        return [Loaded(key, to_canonical(raw, "sentiment", where), where)]
    require_columns(frame, ["timestamp", "symbol"], where)
    out = []
    for raw_symbol, group in frame.groupby("symbol", sort=True):
        here = f"{where} (symbol {raw_symbol})"
        canon = to_canonical(group, "sentiment", here)
        provider = venue or (str(group["venue"].iloc[0]) if "venue" in group else "social")
        interval = infer_interval(canon.index, here) if len(canon) > 1 else "1d"
        key = PartitionKey("sentiment", provider, normalize_symbol(raw_symbol), interval)
        out.append(Loaded(key, canon, where))
    return out
