"""A ccxt exchange that serves the store's history as if live, under a simulated clock.

``ReplayExchange`` subclasses ``ccxt.Exchange`` and answers with ccxt's unified structures, so
code written for a real exchange (``data.sources.exchange.ingest_exchange`` and
``ingest_depth``, the paper loop) runs on history unchanged. It implements what that code
calls: ``id``, ``has``, ``load_markets`` / ``markets``, ``milliseconds``, ``fetch_ohlcv``,
``fetch_funding_rate_history``, ``fetch_open_interest_history``, ``fetch_order_book`` (rebuilt
from the ``depth`` dataset; ``ccxt.NotSupported`` without one), plus ``fetch_ticker`` for fill
prices.

The point-in-time rule, checked on every answer against ``clock.now_ms``:

- a candle appears only once it has closed: ``open_time + interval <= now``;
- a funding rate only once settled (settlement time ``<= now``), an open-interest or depth
  snapshot only once taken (snapshot time ``<= now``);
- nothing after ``now``, whatever ``since`` and ``limit`` ask for.

Pages follow Binance's behaviour: ``since`` given -> the oldest ``limit`` rows from ``since``;
no ``since`` -> the newest ``limit`` rows; ``limit`` is capped like Binance caps it.
"""

from __future__ import annotations

from typing import Any, Protocol

import ccxt
import numpy as np
import pandas as pd

from cascade_ml.data.schemas import DEPTH_BANDS
from cascade_ml.data.sources.base import interval_to_timedelta
from cascade_ml.data.sources.exchange import _SETTLE  # the ingestion code's market naming
from cascade_ml.data.store import MarketStore, PartitionKey

# Binance USD-M defaults and caps per endpoint (klines, fundingRate, openInterestHist).
DEFAULT_LIMIT = {"ohlcv": 500, "funding": 100, "open_interest": 30}
MAX_LIMIT = {"ohlcv": 1500, "funding": 1000, "open_interest": 500}


class _Table:
    """One store partition as sorted epoch-ms stamps plus its rows (read once, then sliced)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.ms = (frame.index.as_unit("ns").asi8 // 1_000_000).astype(np.int64)

    def window(self, last_ms: int, since: int | None, limit: int) -> pd.DataFrame:
        """Rows stamped <= last_ms: from ``since`` the first ``limit``, else the last ``limit``."""
        hi = int(np.searchsorted(self.ms, last_ms, side="right"))
        if since is None:
            lo = max(hi - limit, 0)
        else:
            lo = int(np.searchsorted(self.ms, since, side="left"))
            hi = min(hi, lo + limit)
        return self.frame.iloc[lo:hi] if lo < hi else self.frame.iloc[0:0]


def _depth_levels(row: pd.Series, side: str, mid: float) -> list[list[float]]:
    """Levels of one side rebuilt from cumulative band notionals (see ``fetch_order_book``)."""
    sign = -1.0 if side == "bid" else 1.0
    levels, below, reached = [], 0.0, 0
    for pct in DEPTH_BANDS:
        value = row.get(f"{side}_notional_{pct}pct")
        if value is None or not np.isfinite(value):
            break
        price = mid * (1 + sign * (pct - 0.5) / 100)
        levels.append([price, max(float(value) - below, 0.0) / price])
        below, reached = max(float(value), below), pct
    levels.append([mid * (1 + sign * (reached + 0.5) / 100), 0.0])  # the book ends here
    return levels


def _none_if_nan(value: Any) -> float | None:
    out = float(value)
    return None if np.isnan(out) else out



class ReplayClock(Protocol):
    """The simulated time the replay answers at (``cascade_ml.live.clock.SimClock``)."""

    @property
    def now_ms(self) -> int: ...

class ReplayExchange(ccxt.Exchange):
    """History from a ``MarketStore`` (one venue) served as a ccxt exchange at ``clock`` time.

    ``id`` is the venue itself (``binance``, ``hyperliquid``), so the ingestion code's
    ``venue_of`` maps it back to the same store venue and its market naming picks the same
    settle currency, while no live-exchange quirk (Binance's 29-day open-interest window) is
    applied to history.
    """

    def __init__(self, store: MarketStore, clock: ReplayClock, *, venue: str = "binance",
                 config: dict | None = None) -> None:
        self._store = store
        self._clock = clock
        self._venue = venue
        self._tables: dict[PartitionKey, _Table] = {}
        keys = store.partitions(venue=venue)
        self._keys = {d: [k for k in keys if k.dataset == d]
                      for d in ("ohlcv", "funding", "open_interest", "depth")}
        super().__init__({"enableRateLimit": False, **(config or {})})

    def describe(self) -> dict:
        intervals = sorted({k.interval for k in self._keys["ohlcv"]},
                           key=lambda i: interval_to_timedelta(i))
        return self.deep_extend(super().describe(), {
            "id": self._venue,
            "name": f"replay of {self._venue} from {self._store.root}",
            "countries": [],
            "rateLimit": 0,
            "has": {
                "spot": False, "margin": False, "swap": True, "future": False, "option": False,
                "fetchMarkets": True, "fetchCurrencies": False,
                "fetchOHLCV": True,
                "fetchFundingRateHistory": bool(self._keys["funding"]),
                "fetchOpenInterestHistory": bool(self._keys["open_interest"]),
                "fetchTicker": True, "fetchOrderBook": bool(self._keys["depth"]),
                "createOrder": False,
            },
            "timeframes": {i: i for i in intervals},
        })

    # ------------------------------------------------------------------ clock
    def milliseconds(self) -> int:  # type: ignore[override]  # ccxt's is a staticmethod
        """The simulated now (ccxt code asks this for "now")."""
        return self._clock.now_ms

    @property
    def clock(self) -> ReplayClock:
        return self._clock

    # ------------------------------------------------------------------ markets
    def fetch_markets(self, params: dict | None = None) -> list[dict]:
        """One linear perpetual per symbol with candles, funding or open interest at this venue
        (``NEAR/USDT:USDT``; ``/USDC:USDC`` on Hyperliquid, as the ingestion code names them)."""
        settle = _SETTLE.get(self._venue, "USDT")  # what ingestion's market_symbol expects
        markets = []
        bases = {k.symbol for keys in self._keys.values() for k in keys}
        for base in sorted(bases):
            markets.append(self.safe_market_structure({
                "id": f"{base}{settle}", "lowercaseId": f"{base}{settle}".lower(),
                "symbol": f"{base}/{settle}:{settle}", "base": base, "quote": settle,
                "settle": settle, "baseId": base, "quoteId": settle, "settleId": settle,
                "type": "swap", "spot": False, "margin": False, "swap": True, "future": False,
                "option": False, "index": False, "active": True, "contract": True,
                "linear": True, "inverse": False, "subType": "linear", "contractSize": 1.0,
                "taker": 0.0005, "maker": 0.0002,
                "precision": {"amount": 1e-8, "price": 1e-8},
                "limits": {name: {"min": None, "max": None}
                           for name in ("amount", "price", "cost", "leverage")},
                "info": {"venue": self._venue, "source": str(self._store.root)},
            }))
        return markets

    def _base(self, symbol: str) -> tuple[str, dict]:
        self.load_markets()
        market = self.market(symbol)  # raises ccxt.BadSymbol for unknown symbols
        return market["base"], market

    def _table(self, key: PartitionKey) -> _Table:
        if key not in self._tables:
            self._tables[key] = _Table(self._store.read_partition(key))
        return self._tables[key]

    def refresh(self) -> None:
        """Forget cached partitions (after the underlying store was written to)."""
        self._tables.clear()

    @staticmethod
    def _limit(dataset: str, limit: int | None) -> int:
        if limit is None:
            return DEFAULT_LIMIT[dataset]
        if limit <= 0:
            raise ccxt.BadRequest(f"limit must be positive, got {limit}")
        return min(int(limit), MAX_LIMIT[dataset])

    # ------------------------------------------------------------------ market data
    def fetch_ohlcv(self, symbol: str, timeframe: str = "1h", since: int | None = None,
                    limit: int | None = None, params: dict | None = None) -> list[list]:
        """Closed candles only: ``[[open_ms, open, high, low, close, volume], ...]``."""
        base, market = self._base(symbol)
        keys = [k for k in self._keys["ohlcv"] if k.symbol == base]
        key = next((k for k in keys if k.interval == timeframe), None)
        if key is None:
            raise ccxt.BadRequest(f"{self.id} replay has no {timeframe} candles for "
                                  f"{market['symbol']}; stored: {[k.interval for k in keys]}")
        step = int(interval_to_timedelta(timeframe).total_seconds() * 1000)
        rows = self._table(key).window(self.milliseconds() - step, since,
                                       self._limit("ohlcv", limit))
        cols = rows[["open", "high", "low", "close", "volume"]].to_numpy(dtype=float)
        stamps = rows.index.as_unit("ns").asi8 // 1_000_000
        return [[int(t), *map(float, v)] for t, v in zip(stamps, cols, strict=True)]

    def fetch_funding_rate_history(self, symbol: str | None = None, since: int | None = None,
                                   limit: int | None = None,
                                   params: dict | None = None) -> list[dict]:
        """Settled funding rates (settlement time <= now), ccxt funding-rate-history structures."""
        if symbol is None:
            raise ccxt.ArgumentsRequired(f"{self.id} fetchFundingRateHistory() needs a symbol")
        base, market = self._base(symbol)
        keys = [k for k in self._keys["funding"] if k.symbol == base]
        if not keys:
            return []
        frames = [self._table(k).frame for k in keys]
        if len(frames) > 1:  # several funding intervals over time: one merged history
            merged = pd.concat(frames).sort_index(kind="stable")
            table = _Table(merged[~merged.index.duplicated(keep="last")])
        else:
            table = self._table(keys[0])
        rows = table.window(self.milliseconds(), since, self._limit("funding", limit))
        out = []
        for ts, rate in zip(rows.index, rows["funding_rate"].to_numpy(dtype=float), strict=True):
            ms = int(ts.value // 1_000_000)
            out.append({"info": {"symbol": market["id"], "fundingTime": ms,
                                 "fundingRate": repr(float(rate))},
                        "symbol": market["symbol"], "fundingRate": float(rate),
                        "timestamp": ms, "datetime": self.iso8601(ms)})
        return out

    def fetch_open_interest_history(self, symbol: str, timeframe: str = "1h",
                                    since: int | None = None, limit: int | None = None,
                                    params: dict | None = None) -> list[dict]:
        """Open-interest snapshots taken by now, ccxt open-interest structures."""
        base, market = self._base(symbol)
        keys = [k for k in self._keys["open_interest"] if k.symbol == base]
        if not keys:
            return []
        key = next((k for k in keys if k.interval == timeframe), None)
        if key is None:
            raise ccxt.BadRequest(f"{self.id} replay has no {timeframe} open interest for "
                                  f"{market['symbol']}; stored: {[k.interval for k in keys]}")
        rows = self._table(key).window(self.milliseconds(), since,
                                       self._limit("open_interest", limit))
        amount = rows.get("open_interest", pd.Series(np.nan, index=rows.index))
        value = rows.get("open_interest_value", pd.Series(np.nan, index=rows.index))
        out = []
        for ts, oi, oiv in zip(rows.index, amount, value, strict=True):
            ms = int(ts.value // 1_000_000)
            oi, oiv = _none_if_nan(oi), _none_if_nan(oiv)
            out.append({"info": {"symbol": market["id"], "timestamp": ms},
                        "symbol": market["symbol"], "baseVolume": oi, "quoteVolume": oiv,
                        "openInterestAmount": oi, "openInterestValue": oiv,
                        "timestamp": ms, "datetime": self.iso8601(ms)})
        return out

    def _candles(self, base: str, symbol: str) -> tuple[_Table, int, str]:
        """The finest stored candles of ``base``: (table, step in ms, interval)."""
        keys = sorted((k for k in self._keys["ohlcv"] if k.symbol == base),
                      key=lambda k: interval_to_timedelta(k.interval))
        if not keys:
            raise ccxt.BadRequest(f"{self.id} replay has no candles for {symbol}")
        step = int(interval_to_timedelta(keys[0].interval).total_seconds() * 1000)
        return self._table(keys[0]), step, keys[0].interval

    def fetch_ticker(self, symbol: str, params: dict | None = None) -> dict:
        """Last price = close of the newest closed candle (finest stored interval); 24h stats
        over the closed candles of the last 24 hours."""
        base, market = self._base(symbol)
        table, step, interval = self._candles(base, market["symbol"])
        last_open = self.milliseconds() - step
        rows = table.window(last_open, None, max(int(86_400_000 // step), 1))
        rows = rows[rows.index.as_unit("ns").asi8 // 1_000_000 > last_open - 86_400_000]
        if rows.empty:
            raise ccxt.ExchangeNotAvailable(
                f"{self.id} replay: no {market['symbol']} candle has closed in the 24 h before "
                f"{self.iso8601(self.milliseconds())}")
        close_ms = int(rows.index[-1].value // 1_000_000) + step
        last = float(rows["close"].iloc[-1])
        return self.safe_ticker({
            "symbol": market["symbol"], "timestamp": close_ms, "datetime": self.iso8601(close_ms),
            "high": float(rows["high"].max()), "low": float(rows["low"].min()),
            "open": float(rows["open"].iloc[0]), "close": last, "last": last,
            "bid": None, "ask": None, "baseVolume": float(rows["volume"].sum()),
            "info": {"interval": interval, "bars": len(rows)},
        }, market)

    def fetch_order_book(self, symbol: str, limit: int | None = None,
                         params: dict | None = None) -> dict:
        """The newest depth snapshot taken by now (at most one snapshot interval old) as a ccxt
        order book; ``ccxt.NotSupported`` when the store has no depth data for the symbol.

        The store keeps only the quote notional within 1..5% of the mid, so the book is
        rebuilt from it: one level per band, half a percent inside the band's edge, holding
        that band's increment, around the mid = the last close at the snapshot time. A band
        the recorded book did not reach stays unreached: the side ends with an empty level
        just past the deepest known band. Summing this book into bands gives the stored row.
        """
        base, market = self._base(symbol)
        keys = [k for k in self._keys["depth"] if k.symbol == base]
        if not keys:
            raise ccxt.NotSupported(f"{self.id} replay has no order-book depth data for "
                                    f"{market['symbol']}")
        now = self.milliseconds()
        latest: tuple[int, pd.Series, PartitionKey] | None = None
        for key in keys:
            rows = self._table(key).window(now, None, 1)
            if len(rows):
                stamp = int(rows.index[-1].value // 1_000_000)
                if latest is None or stamp > latest[0]:
                    latest = (stamp, rows.iloc[-1], key)
        if latest is None or now - latest[0] > interval_to_timedelta(
                latest[2].interval).total_seconds() * 1000:
            raise ccxt.ExchangeNotAvailable(
                f"{self.id} replay: no {market['symbol']} depth snapshot in the interval before "
                f"{self.iso8601(now)}")
        stamp, row, _ = latest
        table, step, _ = self._candles(base, market["symbol"])
        closes = table.window(stamp - step, None, 1)
        if closes.empty:
            raise ccxt.ExchangeNotAvailable(f"{self.id} replay: no {market['symbol']} price "
                                            f"before the depth snapshot at {self.iso8601(stamp)}")
        mid = float(closes["close"].iloc[-1])
        book = {"bids": _depth_levels(row, "bid", mid), "asks": _depth_levels(row, "ask", mid)}
        if limit is not None:
            book = {side: levels[:max(int(limit), 1)] for side, levels in book.items()}
        return {"symbol": market["symbol"], **book, "timestamp": stamp,
                "datetime": self.iso8601(stamp), "nonce": None}
