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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import ccxt
import pandas as pd
from tqdm import tqdm

from cascade_ml.data.sources.base import Loaded, infer_interval, interval_to_timedelta
from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.store import ConflictRule, MarketStore, PartitionKey
from cascade_ml.data.validate import to_canonical
from cascade_ml.errors import CascadeError

if TYPE_CHECKING:
    from cascade_ml.data.config import ExchangeSourceConfig
    from cascade_ml.data.ingest import IngestReport

VENUES = {"binanceusdm": "binance", "bybit": "bybit", "hyperliquid": "hyperliquid"}
_SETTLE = {"hyperliquid": "USDC"}
_PAGE_LIMIT = {"ohlcv": 1000, "funding": 1000, "open_interest": 500}
_DEFAULT_FUNDING_INTERVAL = {"hyperliquid": "1h"}
_OI_HISTORY_DAYS = {"binanceusdm": 29}
_CALLS = {"ohlcv": "fetchOHLCV", "funding": "fetchFundingRateHistory",
          "open_interest": "fetchOpenInterestHistory"}
DEFAULT_SINCE = "2023-01-01T00:00:00Z"


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
    from cascade_ml.data.ingest import FileOutcome, IngestReport, write_loaded

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
