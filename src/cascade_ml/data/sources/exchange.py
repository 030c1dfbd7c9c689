"""Fetch candles, funding and open interest from an exchange through ccxt, incrementally.

- Exchanges: ``binanceusdm`` (default; stored as venue ``binance``), ``bybit``, ``hyperliquid``
  (whatever ccxt supports for each; an unsupported call is reported as skipped).
- Incremental: each fetch starts one bar after the store's last timestamp for that partition
  (first run: ``since`` from the config, default 2023-01-01; Binance keeps only ~30 days of open
  interest history, so that start is clamped to 29 days ago).
- Pagination by ``since``; ccxt's own rate limiter (``enableRateLimit``); every page is retried on
  ``ccxt.NetworkError`` with exponential backoff.
- **Failure rule:** pages are collected in memory and a (symbol, dataset) is written only when its
  pagination completes. A network error that outlives the retries writes nothing for that
  (symbol, dataset) and marks it failed, so the store never holds a run with a hole in it; the
  next run resumes from the same place.
- Candles that have not closed yet (``open + interval > now``) are dropped.
- Order-book depth (``ingest_depth``): one ``fetch_order_book`` snapshot per symbol and call,
  summed into the quote notional resting within 1..5% of the mid (``depth`` dataset). A band the
  returned levels do not reach past is NaN, never a truncated sum; run it on a schedule (the
  ``interval`` it is stored under names that cadence).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ccxt
import numpy as np
import pandas as pd
from tqdm import tqdm

from cascade_ml.data.outcome import FileOutcome, IngestReport, write_loaded
from cascade_ml.data.schemas import DEPTH_BANDS
from cascade_ml.data.sources.base import Loaded, infer_interval, interval_to_timedelta
from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.store import ConflictRule, MarketStore, PartitionKey
from cascade_ml.data.validate import to_canonical
from cascade_ml.errors import CascadeError

if TYPE_CHECKING:
    from cascade_ml.data.config import ExchangeSourceConfig

VENUES = {"binanceusdm": "binance", "bybit": "bybit", "hyperliquid": "hyperliquid"}
_SETTLE = {"hyperliquid": "USDC"}
_PAGE_LIMIT = {"ohlcv": 1000, "funding": 1000, "open_interest": 500}
_DEFAULT_FUNDING_INTERVAL = {"hyperliquid": "1h"}
_OI_HISTORY_DAYS = {"binanceusdm": 29}
_CALLS = {"ohlcv": "fetchOHLCV", "funding": "fetchFundingRateHistory",
          "open_interest": "fetchOpenInterestHistory"}
DEFAULT_SINCE = "2023-01-01T00:00:00Z"
DEPTH_LIMIT = {"binanceusdm": 1000}  # most levels one Binance USD-M depth call returns


def make_exchange(name: str) -> ccxt.Exchange:
    """A ccxt exchange with its rate limiter on; unknown names are a clear error."""
    if name not in ccxt.exchanges:
        raise CascadeError(f"unknown exchange {name!r}",
                           hint=f"tested here: {sorted(VENUES)}; ccxt knows "
                                f"{len(ccxt.exchanges)} exchanges")
    return getattr(ccxt, name)({"enableRateLimit": True})


def venue_of(exchange: ccxt.Exchange) -> str:
    return VENUES.get(exchange.id, exchange.id)


def market_symbol(exchange: ccxt.Exchange, symbol: str) -> str:
    """``NEAR`` -> ccxt's perp symbol (``NEAR/USDT:USDT``), checked against the loaded markets."""
    settle = _SETTLE.get(exchange.id, "USDT")
    unified = f"{normalize_symbol(symbol)}/{settle}:{settle}"
    markets = call_with_retries(exchange.load_markets, f"{exchange.id} markets")
    if unified not in markets:
        raise CascadeError(f"unknown symbol {symbol!r} on {exchange.id} (no market {unified})")
    return unified


def call_with_retries(fn: Callable[[], Any], where: str, *, retries: int = 4,
                      backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> Any:
    """Call ``fn``; on a network error wait backoff * 2**attempt and try again."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except ccxt.NetworkError as exc:
            if attempt == retries:
                raise CascadeError(f"network error after {retries + 1} attempt(s): {exc}",
                                   where) from exc
            sleep(backoff * 2**attempt)
        except ccxt.BaseError as exc:
            raise CascadeError(f"exchange refused the request: {exc}", where) from exc
    raise AssertionError("unreachable")


def paginate(fetch_page: Callable[[int], list], stamp: Callable[[Any], int], since: int,
             until: int, *, where: str, span: int | None = None, retries: int = 4,
             backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep,
             progress: bool = False) -> list:
    """All rows from ``since`` to ``until`` (ms), one page after another.

    ``span`` is how much time one page covers when the endpoint bounds pages by time: an empty
    page then means a gap in the data, and the cursor jumps over it instead of stopping.
    """
    rows: list = []
    cursor = since
    with tqdm(total=max(until - since, 0), unit="ms", disable=not progress, desc=where,
              leave=False) as bar:
        while cursor < until:
            page = call_with_retries(lambda c=cursor: fetch_page(c), where, retries=retries,
                                     backoff=backoff, sleep=sleep)
            page = [row for row in page if stamp(row) >= cursor]
            if not page:
                if span is None:
                    break
                bar.update(min(span, until - cursor))
                cursor += span
                continue
            rows.extend(row for row in page if stamp(row) < until)
            nxt = max(stamp(row) for row in page) + 1
            bar.update(min(nxt, until) - cursor)
            cursor = nxt
    return rows


def resume_since(store: MarketStore, dataset: str, venue: str, symbol: str,
                 interval: str | None, step_ms: int, default_ms: int) -> int:
    """One step after the last stored timestamp of the matching partition(s), else the default."""
    keys = [k for k in store.partitions(dataset, symbol, venue)
            if interval is None or k.interval == interval]
    if not keys:
        return default_ms
    last = max(store.read_partition(k).index.max() for k in keys)
    return int(last.value // 1_000_000) + step_ms


def _ms(value: str | pd.Timestamp) -> int:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def fetch_dataset(exchange: ccxt.Exchange, dataset: str, symbol: str, timeframe: str,
                  store: MarketStore, *, since: str | None = None, now_ms: int | None = None,
                  page_limit: int | None = None, retries: int = 4, backoff: float = 1.0,
                  sleep: Callable[[float], None] = time.sleep,
                  progress: bool = False) -> Loaded | None:
    """Fetch what the store lacks of one (symbol, dataset); None when already up to date."""
    venue = venue_of(exchange)
    market = market_symbol(exchange, symbol)
    base = normalize_symbol(symbol)
    where = f"{exchange.id} {market} {dataset}"
    now = now_ms if now_ms is not None else exchange.milliseconds()
    step = int(interval_to_timedelta(timeframe).total_seconds() * 1000)
    limit = page_limit or _PAGE_LIMIT[dataset]
    default = _ms(since or DEFAULT_SINCE)
    kw = {"where": where, "retries": retries, "backoff": backoff, "sleep": sleep,
          "progress": progress}

    if dataset == "ohlcv":
        start = resume_since(store, "ohlcv", venue, base, timeframe, step, default)
        # A candle opened at t is final once t + step <= now: fetch only those.
        rows = paginate(lambda c: exchange.fetch_ohlcv(market, timeframe, c, limit),
                        lambda r: int(r[0]), start, now - step + 1, span=step * limit, **kw)
        rows = [r for r in rows if int(r[0]) + step <= now]  # the open candle is not final
        if not rows:
            return None
        raw = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
        return Loaded(PartitionKey("ohlcv", venue, base, timeframe),
                      to_canonical(raw, "ohlcv", where), where)

    if dataset == "funding":
        start = resume_since(store, "funding", venue, base, None, 1, default)
        rows = paginate(lambda c: exchange.fetch_funding_rate_history(market, c, limit),
                        lambda r: int(r["timestamp"]), start, now + 1, **kw)
        if not rows:
            return None
        stamps = pd.to_datetime([int(r["timestamp"]) for r in rows], unit="ms", utc=True)
        floored = stamps.floor("h")
        existing = [k.interval for k in store.partitions("funding", base, venue)]
        interval = (infer_interval(floored, where) if len(rows) > 1
                    else existing[0] if existing
                    else _DEFAULT_FUNDING_INTERVAL.get(exchange.id, "8h"))
        raw = pd.DataFrame({"timestamp": floored,
                            "funding_rate": [r["fundingRate"] for r in rows]})
        if interval.endswith("h"):
            raw["interval_hours"] = float(interval[:-1])
        return Loaded(PartitionKey("funding", venue, base, interval),
                      to_canonical(raw, "funding", where), where)

    if dataset == "open_interest":
        days = _OI_HISTORY_DAYS.get(exchange.id)
        if days is not None:
            default = max(default, now - days * 86_400_000)
        start = resume_since(store, "open_interest", venue, base, timeframe, step, default)
        rows = paginate(
            lambda c: exchange.fetch_open_interest_history(market, timeframe, c, limit),
            lambda r: int(r["timestamp"]), start, now + 1, span=step * limit, **kw)
        if not rows:
            return None
        raw = pd.DataFrame({"timestamp": [int(r["timestamp"]) for r in rows],
                            "open_interest": [r.get("openInterestAmount") for r in rows],
                            "open_interest_value": [r.get("openInterestValue") for r in rows]})
        raw = raw.dropna(axis=1, how="all")
        return Loaded(PartitionKey("open_interest", venue, base, timeframe),
                      to_canonical(raw, "open_interest", where), where)
    raise CascadeError(f"unknown exchange dataset {dataset!r}; use ohlcv, funding, open_interest")


def ingest_exchange(store: MarketStore, source: ExchangeSourceConfig, symbols: Sequence[str], *,
                    on_conflict: ConflictRule = "replace", exchange: ccxt.Exchange | None = None,
                    now_ms: int | None = None, page_limit: int | None = None, retries: int = 4,
                    backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                    progress: bool = False) -> IngestReport:
    """Fetch every (symbol, dataset) of an ``ExchangeSourceConfig`` into the store; the report
    has one entry per (symbol, dataset)."""
    exchange = exchange or make_exchange(source.exchange)
    report = IngestReport()
    for symbol in symbols:
        for dataset in source.datasets:
            name = f"{exchange.id}:{normalize_symbol(symbol)}:{dataset}"
            if not exchange.has.get(_CALLS[dataset]):
                report.outcomes.append(FileOutcome(
                    name, "skipped", f"ccxt does not support {_CALLS[dataset]} on {exchange.id}"))
                continue
            try:
                loaded = fetch_dataset(exchange, dataset, symbol, source.timeframe, store,
                                       since=source.since, now_ms=now_ms, page_limit=page_limit,
                                       retries=retries, backoff=backoff, sleep=sleep,
                                       progress=progress)
            except CascadeError as exc:
                report.outcomes.append(FileOutcome(name, "failed", exc.message))
                continue
            outcome = FileOutcome(name, "loaded")
            report.outcomes.append(outcome)
            if loaded is None:
                outcome.notes.append("up to date: no new rows")
            else:
                write_loaded(store, outcome, [loaded], on_conflict)
    return report


# ---------------------------------------------------------------------------- order-book depth
def _levels(side: object, name: str, where: str) -> np.ndarray:
    """``[[price, amount, ...], ...]`` as an (n, 2) float array, checked."""
    if not isinstance(side, list) or not side:
        raise CascadeError(f"order book has no {name}", where)
    try:
        levels = np.array([[float(level[0]), float(level[1])] for level in side])
    except (TypeError, ValueError, IndexError) as exc:
        raise CascadeError(f"order book {name} are not [price, amount] pairs ({exc})",
                           where) from exc
    if not np.isfinite(levels).all() or (levels[:, 0] <= 0).any() or (levels[:, 1] < 0).any():
        raise CascadeError(f"order book {name} hold a non-positive price or negative amount",
                           where)
    return levels


def depth_from_order_book(book: Mapping[str, Any], where: str,
                          now_ms: int | None = None) -> pd.DataFrame:
    """One canonical ``depth`` row from a ccxt order book (``{'bids': [[price, amount], ...],
    'asks': [...], 'timestamp': ms}``): quote notional within each band of the mid price.

    A band is known only when that side's levels reach at least as far as the band's edge;
    otherwise the book was cut off by the level limit and the band is NaN.
    """
    bids = _levels(book.get("bids"), "bids", where)
    asks = _levels(book.get("asks"), "asks", where)
    best_bid, best_ask = bids[:, 0].max(), asks[:, 0].min()
    if best_bid >= best_ask:
        raise CascadeError(f"crossed order book: best bid {best_bid} >= best ask {best_ask}",
                           where)
    mid = (best_bid + best_ask) / 2
    stamp = book.get("timestamp") or now_ms
    if stamp is None:
        raise CascadeError("order book has no timestamp", where)
    row: dict[str, float] = {}
    for pct in DEPTH_BANDS:
        low, high = mid * (1 - pct / 100), mid * (1 + pct / 100)
        row[f"bid_notional_{pct}pct"] = (
            float((bids[:, 0] * bids[:, 1])[bids[:, 0] >= low].sum())
            if bids[:, 0].min() <= low else math.nan)
        row[f"ask_notional_{pct}pct"] = (
            float((asks[:, 0] * asks[:, 1])[asks[:, 0] <= high].sum())
            if asks[:, 0].max() >= high else math.nan)
    if all(math.isnan(v) for v in row.values()):
        raise CascadeError(f"the order book's {len(bids)} bid / {len(asks)} ask levels reach "
                           f"less than {DEPTH_BANDS[0]}% from the mid on both sides", where,
                           hint="fetch more levels (limit)")
    return to_canonical(pd.DataFrame([{"timestamp": int(stamp), **row}]), "depth", where)


def fetch_depth(exchange: ccxt.Exchange, symbol: str, *, interval: str = "1h",
                limit: int | None = None, now_ms: int | None = None, retries: int = 4,
                backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> Loaded:
    """One order-book snapshot of ``symbol`` summed into depth bands, keyed by ``interval``
    (the cadence snapshots are taken at)."""
    interval_to_timedelta(interval)
    market = market_symbol(exchange, symbol)
    where = f"{exchange.id} {market} depth"
    levels = limit or DEPTH_LIMIT.get(exchange.id)
    book = call_with_retries(lambda: exchange.fetch_order_book(market, levels), where,
                             retries=retries, backoff=backoff, sleep=sleep)
    now = now_ms if now_ms is not None else exchange.milliseconds()
    frame = depth_from_order_book(book, where, now_ms=now)
    key = PartitionKey("depth", venue_of(exchange), normalize_symbol(symbol), interval)
    return Loaded(key, frame, where)


def ingest_depth(store: MarketStore, exchange: ccxt.Exchange, symbols: Sequence[str], *,
                 interval: str = "1h", on_conflict: ConflictRule = "replace",
                 limit: int | None = None, now_ms: int | None = None, retries: int = 4,
                 backoff: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> IngestReport:
    """One depth snapshot per symbol into the store; one report entry per symbol."""
    report = IngestReport()
    for symbol in symbols:
        name = f"{exchange.id}:{normalize_symbol(symbol)}:depth"
        if not exchange.has.get("fetchOrderBook"):
            report.outcomes.append(FileOutcome(
                name, "skipped", f"ccxt does not support fetchOrderBook on {exchange.id}"))
            continue
        try:
            loaded = fetch_depth(exchange, symbol, interval=interval, limit=limit,
                                 now_ms=now_ms, retries=retries, backoff=backoff, sleep=sleep)
        except CascadeError as exc:
            report.outcomes.append(FileOutcome(name, "failed", exc.message))
            continue
        outcome = FileOutcome(name, "loaded")
        report.outcomes.append(outcome)
        write_loaded(store, outcome, [loaded], on_conflict)
    return report
