"""Parquet candles with a DatetimeIndex (``<SYM>USDT_<tf>.parquet``, the Varanus fetcher's
layout): Binance USD-M perp klines, timestamp = UTC candle open."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cascade_ml.data.sources.base import (
    FileSource,
    Loaded,
    interval_to_timedelta,
    require_columns,
)
from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.store import PartitionKey
from cascade_ml.data.validate import to_canonical
from cascade_ml.errors import DataValidationError

NAME = re.compile(r"^(?P<sym>[A-Za-z0-9]+(?:USDT|USDC|USD))_(?P<tf>\d+[mhdw])\.parquet$")


def matches(path: Path) -> bool:
    return bool(NAME.match(path.name))


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a Parquet file or say clearly that it is truncated/corrupt."""
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataValidationError(f"not a readable Parquet file ({exc})", str(path)) from exc


class VaranusSource(FileSource):
    """``<SYM>USDT_<tf>.parquet`` candles with a DatetimeIndex."""

    name = "varanus"
    suffixes = (".parquet",)

    def detect(self, path: Path) -> bool:
        return matches(path)

    def load(self, path: Path, venue: str | None = None) -> list[Loaded]:
        return load(path, venue)


def load(path: Path, venue: str | None = None) -> list[Loaded]:
    where = str(path)
    match = NAME.match(path.name)
    if match is None:
        raise DataValidationError("not a <SYMBOL>_<tf>.parquet file name", where)
    interval_to_timedelta(match["tf"])
    frame = read_parquet(path)
    if frame.empty:
        raise DataValidationError("no rows", where)
    if isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.rename_axis("timestamp").reset_index()
    require_columns(frame, ["timestamp", "open", "high", "low", "close", "volume"], where)
    canon = to_canonical(frame, "ohlcv", where)
    key = PartitionKey("ohlcv", venue or "binance", normalize_symbol(match["sym"]), match["tf"])
    return [Loaded(key, canon, where)]
