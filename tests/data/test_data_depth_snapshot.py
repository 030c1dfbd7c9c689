"""Order-book depth through ccxt: one snapshot summed into 1..5% bands, offline.

The recorded response below was written by hand in ccxt's documented order-book structure
(``{'symbol', 'bids': [[price, amount], ...], 'asks': ..., 'timestamp', 'datetime', 'nonce'}``,
bids best first, asks best first) for a NEAR-like book around 2.000 USDT: bids reach 6% below
the mid, asks only 3.5% above it (as a level-limited REST answer would).
"""

from __future__ import annotations

import math
from pathlib import Path

import ccxt
import pandas as pd
import pytest

from cascade_ml.data.sources.exchange import depth_from_order_book, fetch_depth, ingest_depth
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError

STAMP = 1_709_251_207_000  # 2024-03-01 00:00:07 UTC
BIDS = [[round(1.999 - 0.004 * i, 3), 1000.0 + 150.0 * i] for i in range(30)]  # 1.999 .. 1.883
ASKS = [[round(2.001 + 0.005 * i, 3), 900.0 + 120.0 * i] for i in range(14)]   # 2.001 .. 2.066
RECORDED = {"symbol": "NEAR/USDT:USDT", "bids": BIDS, "asks": ASKS, "timestamp": STAMP,
            "datetime": "2024-03-01T00:00:07.000Z", "nonce": 4242424242}


class BookExchange:
    """The parts of a ccxt exchange ``fetch_depth`` uses, answering with a recorded book."""

    id = "binanceusdm"

    def __init__(self, book: dict, fail_first: int = 0, supported: bool = True) -> None:
        self.book = book
        self.fail_first = fail_first
        self.has = {"fetchOrderBook": supported}
        self.calls: list[tuple[str, int | None]] = []

    def load_markets(self) -> dict:
        return {"NEAR/USDT:USDT": {}, "BTC/USDT:USDT": {}}

    def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict:
        self.calls.append((symbol, limit))
        if len(self.calls) <= self.fail_first:
            raise ccxt.NetworkError("recorded timeout")
        return self.book

    def milliseconds(self) -> int:
        return STAMP + 5_000


def expected(pct: int, side: str) -> float:
    """Band notional by a plain loop over the recorded levels (NaN when not reached)."""
    mid = (BIDS[0][0] + ASKS[0][0]) / 2
    if side == "bid":
        edge = mid * (1 - pct / 100)
        if BIDS[-1][0] > edge:
            return math.nan
        return sum(p * a for p, a in BIDS if p >= edge)
    edge = mid * (1 + pct / 100)
    if ASKS[-1][0] < edge:
        return math.nan
    return sum(p * a for p, a in ASKS if p <= edge)


def test_bands_are_summed_within_each_distance_of_the_mid() -> None:
    row = depth_from_order_book(RECORDED, "recorded")
    assert row.index[0] == pd.Timestamp("2024-03-01 00:00:07", tz="UTC")
    for pct in range(1, 6):
        for side in ("bid", "ask"):
            got, want = row[f"{side}_notional_{pct}pct"].iloc[0], expected(pct, side)
            assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)
    assert row["bid_notional_5pct"].iloc[0] > row["bid_notional_1pct"].iloc[0] > 0
    assert row[["ask_notional_4pct", "ask_notional_5pct"]].isna().all(axis=None)  # not reached
    assert row["ask_notional_3pct"].notna().iloc[0]


def test_fetch_depth_asks_for_the_deepest_book_and_keys_by_cadence() -> None:
    exchange = BookExchange(RECORDED)
    item = fetch_depth(exchange, "NEAR", interval="1h")  # type: ignore[arg-type]
    assert exchange.calls == [("NEAR/USDT:USDT", 1000)]
    assert str(item.key) == "depth/binance/NEAR/1h"


def test_ingest_depth_writes_retries_and_is_idempotent(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store")
    waits: list[float] = []
    exchange = BookExchange(RECORDED, fail_first=2)
    report = ingest_depth(store, exchange, ["NEAR"], sleep=waits.append)  # type: ignore[arg-type]
    assert not report.failed and waits == [1.0, 2.0]
    stored = store.read("depth", "NEAR")
    assert len(stored) == 1 and stored["bid_notional_2pct"].iloc[0] == pytest.approx(
        expected(2, "bid"))
    again = ingest_depth(store, BookExchange(RECORDED), ["NEAR"])  # type: ignore[arg-type]
    assert [(w.added, w.unchanged) for w in again.writes] == [(0, 1)]


@pytest.mark.parametrize("book, message", [
    ({**RECORDED, "bids": [[2.5, 10.0]]}, "crossed order book"),
    ({**RECORDED, "asks": []}, "order book has no asks"),
    ({**RECORDED, "bids": [[1.999, -1.0]]}, "negative amount"),
    ({**RECORDED, "bids": BIDS[:3], "asks": ASKS[:3]}, "reach less than 1% from the mid"),
])
def test_bad_books_fail_and_write_nothing(tmp_path: Path, book: dict, message: str) -> None:
    with pytest.raises(CascadeError, match=message):
        depth_from_order_book(book, "recorded")
    store = MarketStore(tmp_path / "store")
    report = ingest_depth(store, BookExchange(book), ["NEAR"])  # type: ignore[arg-type]
    assert len(report.failed) == 1 and message.split()[0] in report.failed[0].reason
    assert store.partitions() == []


def test_missing_timestamp_uses_the_fetch_time_and_unsupported_is_skipped(tmp_path) -> None:
    item = fetch_depth(BookExchange({**RECORDED, "timestamp": None}), "NEAR")  # type: ignore
    assert item.frame.index[0] == pd.Timestamp(STAMP + 5_000, unit="ms", tz="UTC")
    report = ingest_depth(MarketStore(tmp_path), BookExchange(RECORDED, supported=False),
                          ["NEAR"])  # type: ignore[arg-type]
    assert report.skipped and "fetchOrderBook" in report.skipped[0].reason
