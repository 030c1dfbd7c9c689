"""freqtrade ``download-data`` folders (feather files).

Names: ``<BASE>_<QUOTE>_<SETTLE>-<tf>-futures.feather`` (perp candles),
``...-<tf>-mark.feather`` (mark price, volume always 0: skipped),
``...-<tf>-funding_rate.feather`` (rate in ``open``, one row per settlement whatever ``tf`` says;
interval inferred from the spacing: 8h on Binance, 1h on Hyperliquid),
``<BASE>_<QUOTE>-<tf>.feather`` (spot candles: stored as their own market, venue
``<exchange>_spot``, never in the perp's partition; see ``cascade_ml.data.history`` for the one
rule that lets them stand in before a perp's first bar) and
``cvd/<SYM>_cvd_<tf>.feather`` (author-derived order-flow: skipped).
The venue is the exchange folder (``.../binance/futures/x.feather`` -> ``binance``).
freqtrade stores ``date`` as UTC candle open time.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

from cascade_ml.data.history import spot_venue
from cascade_ml.data.sources.base import (
    FileSource,
    Loaded,
    SkipFile,
    infer_interval,
    require_columns,
)
from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.store import PartitionKey
from cascade_ml.data.validate import parse_timestamps, to_canonical
from cascade_ml.errors import DataValidationError

NAME = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)(?:_(?P<settle>[A-Za-z0-9]+))?"
    r"-(?P<tf>\d+[smhdwM])(?:-(?P<kind>futures|mark|funding_rate|index|premiumIndex))?\.feather$"
)
CVD = re.compile(r"^[A-Za-z0-9]+_cvd_\d+[mhd]\.feather$")
_FOLDERS_NOT_VENUE = {"futures", "spot", "cvd", "data", "user_data"}


def matches(path: Path) -> bool:
    return path.suffix == ".feather" and (bool(NAME.match(path.name)) or bool(CVD.match(path.name)))


def venue_of(path: Path) -> str:
    """The exchange folder above the file (``.../binance/futures/x.feather`` -> ``binance``).

    Only a folder named after a ccxt exchange counts, so a file dropped in an arbitrary folder
    is refused rather than stored under a made-up venue.
    """
    import ccxt

    for parent in path.parents:
        name = parent.name.lower()
        if name and name not in _FOLDERS_NOT_VENUE:
            if name in ccxt.exchanges:
                return name
            break
    raise DataValidationError("cannot tell the venue: the file is not under a folder named after "
                              "an exchange (freqtrade's <exchange>/futures/ layout)", str(path),
                              hint="pass --venue")


def _read(path: Path) -> pd.DataFrame:
    try:
        frame = feather.read_table(path).to_pandas()
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataValidationError(f"not a readable feather file ({exc})", str(path)) from exc
    if frame.empty:
        raise DataValidationError("no rows", str(path))
    require_columns(frame, ["date", "open", "high", "low", "close", "volume"], str(path))
    return frame


class FreqtradeSource(FileSource):
    """freqtrade ``download-data`` feather files (see the module docstring)."""

    name = "freqtrade"
    suffixes = (".feather",)

    def detect(self, path: Path) -> bool:
        return matches(path)

    def load(self, path: Path, venue: str | None = None) -> list[Loaded]:
        return load(path, venue)


def load(path: Path, venue: str | None = None) -> list[Loaded]:
    where = str(path)
    if CVD.match(path.name):
        raise SkipFile("derived order-flow (CVD) computed by the repo author, not exchange data")
    match = NAME.match(path.name)
    if match is None:
        raise DataValidationError("not a freqtrade file name", where)
    kind, settle, tf = match["kind"], match["settle"], match["tf"]
    if kind == "mark":
        raise SkipFile("mark-price candles (volume is always 0); the store keeps traded prices")
    if kind in ("index", "premiumIndex"):
        raise SkipFile(f"{kind} candles are not a stored dataset")
    venue = venue or venue_of(path)
    if kind is None and settle is None:  # spot: another market, never the perp's partition
        venue = spot_venue(venue)
    symbol = normalize_symbol(match["base"])
    frame = _read(path)
    if kind == "funding_rate":
        return [_funding(frame, venue, symbol, where)]
    return [_candles(frame, venue, symbol, tf, where)]


def _candles(frame: pd.DataFrame, venue: str, symbol: str, tf: str, where: str) -> Loaded:
    notes = []
    zero = frame["volume"].fillna(0).to_numpy() == 0
    # Before a coin lists, freqtrade pads candles with volume 0 (Hyperliquid 4h): not trading.
    leading = int(zero.argmin()) if not zero.all() else len(zero)
    if leading:
        notes.append(f"dropped {leading} leading volume-0 row(s) (before listing)")
        frame = frame.iloc[leading:]
    canon = to_canonical(frame, "ohlcv", where, timestamp_col="date", naive_is_utc=True)
    return Loaded(PartitionKey("ohlcv", venue, symbol, tf), canon, where, notes)


def _funding(frame: pd.DataFrame, venue: str, symbol: str, where: str) -> Loaded:
    stamps = parse_timestamps(frame["date"].reset_index(drop=True), where, naive_is_utc=True)
    floored = stamps.floor("h")  # Hyperliquid settlement stamps carry a few ms of jitter
    notes = []
    jitter = int((stamps != floored).sum())
    if jitter:
        notes.append(f"floored {jitter} timestamp(s) with sub-hour jitter to the hour")
    interval = infer_interval(floored, where)
    hours = pd.Timedelta(interval).total_seconds() / 3600 if interval.endswith("h") else None
    raw = pd.DataFrame({"timestamp": floored, "funding_rate": frame["open"].to_numpy()})
    if hours:
        raw["interval_hours"] = hours
    canon = to_canonical(raw, "funding", where)
    return Loaded(PartitionKey("funding", venue, symbol, interval), canon, where, notes)
