"""CSV dumps of Binance USD-M REST endpoints (layout of the gravestone-data repository).

- ``<1h|4h|1d|...>/<SYM>USDT.csv``: fapi/v1/klines rows (ms open time, OHLCV, quote_volume,
  trades, close_time). **Partial-candle rule:** Binance always returns the still-open candle
  last, and a dump does not record when it was fetched, so the last row of a kline dump is always
  dropped. At worst one closed bar is lost until the next dump replaces it; an open candle is
  never stored as if it were final (that would leak a half bar into features and labels).
- ``funding/<SYM>USDT.csv``: fapi/v1/fundingRate (ms settlement time with a few ms of jitter,
  floored to the hour; interval inferred from spacing).
- ``oi_<tf>/<SYM>USDT.csv``: futures/data/openInterestHist (snapshot time; base units and USDT).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from cascade_ml.data.sources.base import (
    FileSource,
    Loaded,
    csv_header,
    infer_interval,
    interval_to_timedelta,
    read_csv,
    require_columns,
)
from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.store import PartitionKey
from cascade_ml.data.validate import parse_timestamps, to_canonical
from cascade_ml.errors import DataValidationError

KLINE_COLS = ("timestamp", "open", "high", "low", "close", "volume", "quote_volume", "trades",
              "close_time")
FUNDING_COLS = ("timestamp", "symbol", "funding_rate")
OI_COLS = ("timestamp", "symbol", "sum_open_interest", "sum_open_interest_value")
TF = re.compile(r"^\d+[mhdw]$")
OI_TF = re.compile(r"^oi_(\d+[mhdw])$")
NAME = re.compile(r"^[A-Za-z0-9]+(?:USDT|USDC|BUSD)\.csv$")


def kind_from_folder(folder: str) -> str:
    """The dump kind implied by its folder: ``funding``, ``oi_<tf>`` or a kline interval."""
    if folder == "funding":
        return "funding"
    return "oi" if OI_TF.match(folder) else "klines"


def kind_of(path: Path, header: list[str]) -> str | None:
    """``klines``, ``funding``, ``oi`` or None, from the folder name and the CSV header."""
    folder = path.parent.name
    if header[: len(KLINE_COLS)] == list(KLINE_COLS) and TF.match(folder):
        return "klines"
    if header == list(FUNDING_COLS):
        return "funding"
    if header == list(OI_COLS) and OI_TF.match(folder):
        return "oi"
    return None


def dump_kind(path: Path) -> str | None:
    """The kind of a dump file: a ``<SYM>USDT.csv`` in a dump folder is one whatever its header
    (so a misnamed column is reported, not skipped); otherwise the header decides."""
    header = csv_header(path)
    folder = path.parent.name
    in_dump_folder = folder == "funding" or TF.match(folder) or OI_TF.match(folder)
    if in_dump_folder and NAME.match(path.name):
        return kind_from_folder(folder)
    return kind_of(path, header)


class BinanceDumpSource(FileSource):
    """CSV dumps of Binance USD-M REST endpoints (see the module docstring)."""

    name = "binance_dump"
    suffixes = (".csv",)

    def detect(self, path: Path) -> bool:
        return dump_kind(path) is not None

    def load(self, path: Path, venue: str | None = None) -> list[Loaded]:
        kind = dump_kind(path)
        if kind is None:
            raise DataValidationError("not a Binance REST dump", str(path))
        return load(path, kind, venue)


def load(path: Path, kind: str, venue: str | None = None) -> list[Loaded]:
    venue = venue or "binance"
    where = str(path)
    frame = read_csv(path)
    symbol = normalize_symbol(path.stem)
    if kind == "klines":
        return [_klines(frame, venue, symbol, path.parent.name, where)]
    if kind == "funding":
        return [_funding(frame, venue, symbol, where)]
    if kind == "oi":
        return [_oi(frame, venue, symbol, OI_TF.match(path.parent.name)[1], where)]
    raise DataValidationError(f"unknown Binance dump kind {kind!r}", where)


def _klines(frame: pd.DataFrame, venue: str, symbol: str, tf: str, where: str) -> Loaded:
    require_columns(frame, KLINE_COLS, where)
    interval_to_timedelta(tf)  # refuse odd folder names early
    if len(frame) < 2:
        raise DataValidationError("only one row, which is the still-open candle", where)
    canon = to_canonical(frame.iloc[:-1], "ohlcv", where)
    return Loaded(PartitionKey("ohlcv", venue, symbol, tf), canon, where,
                  ["dropped the last row (the candle still open when the dump was made)"])


def _funding(frame: pd.DataFrame, venue: str, symbol: str, where: str) -> Loaded:
    require_columns(frame, FUNDING_COLS, where)
    stamps = parse_timestamps(frame["timestamp"], where)
    floored = stamps.floor("h")
    interval = infer_interval(floored, where)
    raw = pd.DataFrame({"timestamp": floored, "funding_rate": frame["funding_rate"].to_numpy()})
    if interval.endswith("h"):
        raw["interval_hours"] = float(interval[:-1])
    jitter = int((stamps != floored).sum())
    notes = [f"floored {jitter} settlement time(s) to the hour"] if jitter else []
    return Loaded(PartitionKey("funding", venue, symbol, interval),
                  to_canonical(raw, "funding", where), where, notes)


def _oi(frame: pd.DataFrame, venue: str, symbol: str, tf: str, where: str) -> Loaded:
    require_columns(frame, OI_COLS, where)
    raw = frame.rename(columns={"sum_open_interest": "open_interest",
                                "sum_open_interest_value": "open_interest_value"})
    return Loaded(PartitionKey("open_interest", venue, symbol, tf),
                  to_canonical(raw, "open_interest", where), where)
