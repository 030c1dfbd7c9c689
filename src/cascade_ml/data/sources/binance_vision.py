"""Binance Vision public-data archives of USD-M futures: the daily/monthly zips or the CSV inside.

Recognised by the archive's file name (``<SYM>-<kind>-<YYYY-MM[-DD]>.zip`` or ``.csv``); a
metrics CSV is also recognised by its header under any name. Every timestamp is UTC (text times
carry no offset and are read as UTC, as Binance documents the archives).

- ``<SYM>-<tf>-<date>``: klines (``open_time, open, high, low, close, volume, close_time,
  quote_volume, count, ...``; older files have no header) -> ``ohlcv/binance/<SYM>/<tf>``. The
  archives hold closed candles only. Microsecond stamps (newer spot files) are read as such.
- ``<SYM>-fundingRate-<month>``: ``calc_time`` (ms, with jitter; floored to the hour),
  ``funding_interval_hours``, ``last_funding_rate`` -> ``funding/binance/<SYM>/<N>h``.
- ``<SYM>-metrics-<day>``: 5-minute rows ``create_time, symbol, sum_open_interest,
  sum_open_interest_value`` -> ``open_interest/binance/<SYM>/5m``, and the four ratios
  (top-trader accounts and positions, all accounts, taker buy/sell volume) ->
  ``positioning/binance/<SYM>/5m``. Rows are not in time order in the archives; they are sorted.
- ``<SYM>-bookDepth-<day>``: ``timestamp, percentage, depth, notional`` per snapshot, with
  percentage -5..-1 (bids) and 1..5 (asks) and cumulative notional -> one ``depth`` row per
  snapshot (``bid_notional_1pct`` .. ``ask_notional_5pct``); other bands (e.g. +-0.2) are dropped.
- ``aggTrades``, ``trades``, ``bookTicker``, mark/index/premium-index klines (by folder) and
  delivery or COIN-M contracts (``BTCUSDT_240329``, ``BTCUSD_PERP``): skipped with the reason.

Integrity: a ``<file>.CHECKSUM`` beside the archive (``<sha256>  <name>``, as Binance publishes
it) is verified before anything is read; a mismatch, a broken zip, a zip without exactly one CSV,
an empty CSV or wrong columns is a ``DataValidationError`` naming the file.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.data.schemas import DEPTH_BANDS, POSITIONING_COLUMNS
from cascade_ml.data.sources.base import (
    FileSource,
    Loaded,
    SkipFile,
    csv_header,
    infer_interval,
    interval_to_timedelta,
    require_columns,
    timedelta_to_interval,
)
from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.store import PartitionKey
from cascade_ml.data.validate import parse_timestamps, to_canonical
from cascade_ml.errors import DataValidationError

NAME = re.compile(r"^(?P<sym>[A-Z0-9_]+)-(?P<kind>\d+(?:s|m|h|d|w|mo)|[A-Za-z]+)"
                  r"-(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)$")
KLINE_COLS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
              "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")
FUNDING_COLS = ("calc_time", "funding_interval_hours", "last_funding_rate")
METRICS_COLS = ("create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
                "count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio",
                "count_long_short_ratio", "sum_taker_long_short_vol_ratio")
BOOK_DEPTH_COLS = ("timestamp", "percentage", "depth", "notional")
_RATIOS = dict(zip(METRICS_COLS[4:], POSITIONING_COLUMNS, strict=True))
_COLUMNS = {"klines": KLINE_COLS, "fundingRate": FUNDING_COLS, "metrics": METRICS_COLS,
            "bookDepth": BOOK_DEPTH_COLS}
_NOT_STORED = {
    "aggTrades": "aggregated trades are not a stored dataset",
    "trades": "individual trades are not a stored dataset",
    "bookTicker": "best bid/ask ticks are not a stored dataset",
}
_PRICE_ONLY = {"markPriceKlines", "indexPriceKlines", "premiumIndexKlines"}
VENUE = "binance"


def _kind(path: Path) -> str | None:
    """``klines``, ``fundingRate``, ``metrics``, ``bookDepth``, another Binance Vision kind, or
    None when the name is not a Binance Vision archive name (a metrics header still counts)."""
    match = NAME.match(path.name)
    if match is None:
        if path.suffix.lower() == ".csv" and csv_header(path) == list(METRICS_COLS):
            return "metrics"
        return None
    kind = match["kind"]
    if kind[0].isdigit():
        return "klines"
    if kind in _COLUMNS or kind in _NOT_STORED:
        return kind
    return None


class BinanceVisionSource(FileSource):
    """Binance Vision USD-M archives (see the module docstring)."""

    name = "binance_vision"
    suffixes = (".zip", ".csv")

    def detect(self, path: Path) -> bool:
        return _kind(path) is not None

    def load(self, path: Path, venue: str | None = None) -> list[Loaded]:
        where = str(path)
        kind = _kind(path)
        if kind is None:
            raise DataValidationError("not a Binance Vision archive name", where)
        if kind in _NOT_STORED:
            raise SkipFile(f"Binance Vision {kind}: {_NOT_STORED[kind]}")
        folders = {p.name for p in path.parents}
        if kind == "klines" and folders & _PRICE_ONLY:
            raise SkipFile(f"Binance Vision {sorted(folders & _PRICE_ONLY)[0]}: not traded "
                           "prices (volume is 0); the store keeps the perp's own candles")
        match = NAME.match(path.name)
        raw_symbol = match["sym"] if match else None
        if raw_symbol and "_" in raw_symbol:
            raise SkipFile(f"{raw_symbol}: a delivery or COIN-M contract; only USD-M perps "
                           "are stored")
        notes = verify_checksum(path)
        frame = read_archive(path, _COLUMNS[kind])
        venue = venue or VENUE
        if kind == "klines":
            out = [_klines(frame, venue, normalize_symbol(raw_symbol), match["kind"], where)]
        elif kind == "fundingRate":
            out = [_funding(frame, venue, normalize_symbol(raw_symbol), where)]
        elif kind == "metrics":
            out = _metrics(frame, venue, raw_symbol, where)
        else:
            out = [_book_depth(frame, venue, normalize_symbol(raw_symbol), where)]
        for item in out:
            item.notes[:0] = notes
        return out


# ---------------------------------------------------------------------------- reading
def verify_checksum(path: Path) -> list[str]:
    """Check ``<file>.CHECKSUM`` when it exists; a note saying so, or an error naming both."""
    sidecar = path.with_name(path.name + ".CHECKSUM")
    if not sidecar.exists():
        return []
    text = sidecar.read_text(encoding="utf-8", errors="replace").split()
    if not text or not re.fullmatch(r"[0-9a-fA-F]{64}", text[0]):
        raise DataValidationError(f"{sidecar.name} holds no sha256 digest", str(path))
    if len(text) > 1 and text[1].lstrip("*") != path.name:
        raise DataValidationError(f"{sidecar.name} is the checksum of {text[1]!r}", str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != text[0].lower():
        raise DataValidationError(f"sha256 {digest[:16]}... does not match {sidecar.name} "
                                  f"({text[0][:16].lower()}...): the file is damaged or "
                                  "incomplete", str(path))
    return [f"sha256 verified against {sidecar.name}"]


def _csv_bytes(path: Path) -> bytes:
    """The CSV's bytes: the file itself, or the single CSV inside a zip archive."""
    where = str(path)
    if path.suffix.lower() == ".csv":
        return path.read_bytes()
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise DataValidationError(f"expected one CSV inside the zip, found {members}",
                                          where)
            return archive.read(members[0])
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DataValidationError(f"not a readable zip archive ({exc})", where) from exc


def read_archive(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """The archive's rows as text columns named ``columns`` (a headerless file gets them)."""
    where = str(path)
    data = _csv_bytes(path)
    first = data.split(b"\n", 1)[0].strip()
    if not first:
        raise DataValidationError("empty file", where)
    headerless = first.split(b",")[0].strip().lstrip(b"-").replace(b".", b"").isdigit()
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, header=None if headerless else 0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"not a readable CSV ({exc})", where) from exc
    if headerless:
        if frame.shape[1] != len(columns):
            raise DataValidationError(f"{frame.shape[1]} columns without a header; expected "
                                      f"{len(columns)} ({', '.join(columns)})", where)
        frame.columns = list(columns)
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataValidationError("no data rows (header only)", where)
    require_columns(frame, columns, where)
    return frame


def _epoch(values: pd.Series, where: str) -> pd.Series:
    """Epoch numbers in ms; microsecond stamps (Binance spot since 2025) are scaled down."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any():
        return values  # parse_timestamps names the bad rows
    return numbers // 1000 if numbers.abs().max() > 1e14 else numbers


# ---------------------------------------------------------------------------- datasets
def _klines(frame: pd.DataFrame, venue: str, symbol: str, tf: str, where: str) -> Loaded:
    step = interval_to_timedelta(tf)  # refuses 1mo and other non-fixed intervals
    raw = frame.rename(columns={"open_time": "timestamp", "count": "trades"})
    raw["timestamp"] = _epoch(raw["timestamp"], where)
    canon = to_canonical(raw, "ohlcv", where)
    if len(canon) > 1 and interval_to_timedelta(infer_interval(canon.index, where)) != step:
        raise DataValidationError(f"rows are {infer_interval(canon.index, where)} apart, not "
                                  f"{tf} as the file name says", where)
    return Loaded(PartitionKey("ohlcv", venue, symbol, timedelta_to_interval(step)), canon, where)


def _funding(frame: pd.DataFrame, venue: str, symbol: str, where: str) -> Loaded:
    stamps = parse_timestamps(_epoch(frame["calc_time"], where).reset_index(drop=True), where)
    floored = stamps.floor("h")
    hours = pd.to_numeric(frame["funding_interval_hours"], errors="coerce").to_numpy()
    known = hours[np.isfinite(hours) & (hours > 0)]
    if len(known):
        values, counts = np.unique(known, return_counts=True)
        interval = f"{int(values[np.argmax(counts)])}h"
    else:
        interval = infer_interval(floored, where)
    if interval.endswith("h"):  # a row without its interval gets the file's usual one
        hours = np.where(np.isfinite(hours) & (hours > 0), hours, float(interval[:-1]))
    raw = pd.DataFrame({"timestamp": floored,
                        "funding_rate": frame["last_funding_rate"].to_numpy(),
                        "interval_hours": hours}).dropna(axis=1, how="all")
    jitter = int((stamps != floored).sum())
    notes = [f"floored {jitter} settlement time(s) to the hour"] if jitter else []
    return Loaded(PartitionKey("funding", venue, symbol, interval),
                  to_canonical(raw, "funding", where), where, notes)


def _one_symbol(frame: pd.DataFrame, file_symbol: str | None, where: str) -> str:
    names = sorted(set(frame["symbol"].dropna().astype(str).str.strip()))
    if file_symbol is not None:
        names = sorted(set(names) | {file_symbol})
    if len(names) != 1:
        raise DataValidationError(f"expected one symbol, found {names}", where)
    if "_" in names[0]:
        raise SkipFile(f"{names[0]}: a delivery or COIN-M contract; only USD-M perps are stored")
    return normalize_symbol(names[0])


def _metrics(frame: pd.DataFrame, venue: str, file_symbol: str | None,
             where: str) -> list[Loaded]:
    symbol = _one_symbol(frame, file_symbol, where)
    stamps = frame["create_time"]
    oi = pd.DataFrame({"timestamp": stamps,
                       "open_interest": pd.to_numeric(frame["sum_open_interest"],
                                                      errors="coerce"),
                       "open_interest_value": pd.to_numeric(frame["sum_open_interest_value"],
                                                            errors="coerce")})
    _check_numeric(frame, METRICS_COLS[2:], where)
    out = []
    kept = oi.dropna(subset=["open_interest", "open_interest_value"], how="all")
    notes = [f"dropped {len(oi) - len(kept)} row(s) without open interest"] if len(kept) < len(
        oi) else []
    if len(kept):
        canon = to_canonical(kept, "open_interest", where, naive_is_utc=True)
        interval = infer_interval(canon.index, where) if len(canon) > 1 else "5m"
        out.append(Loaded(PartitionKey("open_interest", venue, symbol, interval), canon, where,
                          notes))
    ratios = pd.DataFrame({"timestamp": stamps})
    for src, dst in _RATIOS.items():
        ratios[dst] = pd.to_numeric(frame[src], errors="coerce")
    ratios = ratios.dropna(subset=list(_RATIOS.values()), how="all")
    if len(ratios):
        canon = to_canonical(ratios, "positioning", where, naive_is_utc=True)
        interval = infer_interval(canon.index, where) if len(canon) > 1 else "5m"
        out.append(Loaded(PartitionKey("positioning", venue, symbol, interval), canon, where))
    if not out:
        raise DataValidationError("no row holds open interest or a ratio", where)
    return out


def _check_numeric(frame: pd.DataFrame, columns: tuple[str, ...], where: str) -> None:
    """Text in a numeric column is an error (empty cells are allowed: missing values)."""
    for col in columns:
        values = frame[col]
        bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
        if bad.any():
            rows = (np.flatnonzero(bad.to_numpy()) + 1)[:5].tolist()
            raise DataValidationError(f"column {col!r}: non-numeric value in data rows {rows}",
                                      where)


def _book_depth(frame: pd.DataFrame, venue: str, symbol: str, where: str) -> Loaded:
    _check_numeric(frame, ("percentage", "depth", "notional"), where)
    pct = pd.to_numeric(frame["percentage"], errors="coerce")
    notional = pd.to_numeric(frame["notional"], errors="coerce")
    bands = {float(s * p): f"{side}_notional_{p}pct" for p in DEPTH_BANDS
             for s, side in ((-1, "bid"), (1, "ask"))}
    keep = pct.isin(list(bands))
    if not keep.any():
        raise DataValidationError(f"no rows with percentage in +-{list(DEPTH_BANDS)}; found "
                                  f"{sorted(set(pct.dropna()))[:10]}", where)
    stamps = parse_timestamps(frame["timestamp"].reset_index(drop=True), where,
                              naive_is_utc=True)
    long = pd.DataFrame({"timestamp": stamps[keep.to_numpy()],
                         "band": pct[keep].map(bands).to_numpy(),
                         "notional": notional[keep].to_numpy()}).drop_duplicates()
    clash = long.duplicated(subset=["timestamp", "band"], keep=False)
    if clash.any():
        first = long.loc[clash, "timestamp"].iloc[0]
        raise DataValidationError(f"snapshot {first} lists a band twice with different "
                                  "notionals", where)
    wide = long.pivot(index="timestamp", columns="band", values="notional")
    raw = wide.reindex(columns=list(bands.values())).rename_axis(None, axis=1).reset_index()
    canon = to_canonical(raw, "depth", where)
    return Loaded(PartitionKey("depth", venue, symbol, snapshot_interval(canon.index)), canon,
                  where)


def snapshot_interval(index: pd.DatetimeIndex) -> str:
    """The typical spacing of order-book snapshots as a partition interval, at least ``1m``
    (Binance Vision snapshots come every 30-60 s)."""
    if len(index) < 2:
        return "1m"
    step = pd.Series(index).diff().dropna().median()
    return timedelta_to_interval(max(step.round("min"), pd.Timedelta(minutes=1)))
