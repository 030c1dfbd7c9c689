"""What each cycle collects: Fear & Greed behind one interface (the API offline, or the store),
and open interest that accumulates beyond the exchange's window."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest

from cascade_ml.data.collect import CollectPlan, collect
from cascade_ml.data.sources.fear_greed import (
    KEY,
    AlternativeMe,
    StoredFearGreed,
    collect_fear_greed,
)
from cascade_ml.data.sources.replay import ReplayExchange
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.errors import CascadeError
from cascade_ml.live.clock import SimClock

BODY = Path(__file__).parent / "fixtures" / "alternative_me" / "fng_limit_10.json"
NOW = pd.Timestamp("2026-03-29T12:00:00Z")


def api(requests: list[httpx.Request], fail_first: int = 0) -> AlternativeMe:
    """The API client answered from the recorded body (``fail_first`` answers are 503s)."""
    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) <= fail_first:
            return httpx.Response(503, text="Service Unavailable")
        return httpx.Response(200, json=json.loads(BODY.read_text()))

    return AlternativeMe(transport=httpx.MockTransport(answer), sleep=lambda s: None)


def test_alternative_me_rows_become_the_stores_sentiment_partition(
        sample_store: MarketStore, tmp_path: Path) -> None:
    requests: list[httpx.Request] = []
    since = pd.Timestamp("2026-03-22T00:00:00Z")
    rows = api(requests, fail_first=2).fetch(since, NOW)
    assert len(requests) == 3  # two 503s retried
    assert requests[-1].url.params["limit"] == "9" and requests[-1].url.params["format"] == "json"
    assert list(rows.index) == list(pd.date_range("2026-03-22", "2026-03-29", tz="UTC"))
    # the same numbers the sample's CSV ingests for those days
    stored = sample_store.read_partition(KEY).loc[rows.index, "score"]
    assert rows["score"].tolist() == stored.tolist()
    store = MarketStore(tmp_path)
    assert collect_fear_greed(store, api([]), NOW, "2026-03-25") == 5
    assert collect_fear_greed(store, api([]), NOW, "2026-03-25") == 0  # nothing new
    assert store.read_partition(KEY).index[0] == pd.Timestamp("2026-03-25", tz="UTC")


def test_alternative_me_failures_are_cascade_errors() -> None:
    with pytest.raises(CascadeError, match="no answer after 4 attempt"):
        api([], fail_first=10).fetch(None, NOW)
    bad = AlternativeMe(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={"data": [{"value": "x"}]})), sleep=lambda s: None)
    with pytest.raises(CascadeError, match="lacks a numeric timestamp/value"):
        bad.fetch(None, NOW)


def test_stored_fear_greed_shows_a_day_once_it_has_ended(sample_store: MarketStore) -> None:
    source = StoredFearGreed(sample_store)
    day = pd.Timestamp("2026-03-28T00:00:00Z")
    assert source.fetch(day, day + pd.Timedelta("1d") - pd.Timedelta("1ms")).empty
    assert list(source.fetch(day, day + pd.Timedelta("1d")).index) == [day]


class RetainedReplay(ReplayExchange):
    """The replay exchange keeping open interest only 30 days back, as Binance does."""

    def fetch_open_interest_history(self, symbol, timeframe="1h", since=None, limit=None,  # noqa: ANN001
                                    params=None):  # noqa: ANN001, ANN201
        rows = super().fetch_open_interest_history(symbol, timeframe, since, limit, params)
        return [r for r in rows if r["timestamp"] >= self.milliseconds() - 30 * 86_400_000]


def test_open_interest_collected_every_cycle_outlives_the_exchanges_window(
        sample_store: MarketStore, tmp_path: Path) -> None:
    clock = SimClock("2025-03-01T00:00:10Z")
    exchange = RetainedReplay(sample_store, clock, venue="binance_coinm")
    store = MarketStore(tmp_path)
    plan = CollectPlan(exchange=exchange, symbols=("BTC",), timeframe="1d",
                       since="2025-01-01", open_interest_timeframe="1d")
    for _ in range(75):  # one cycle a day for 75 days
        result = collect(store, plan, clock.now)
        assert "open_interest/binance_coinm/BTC/1d" not in result.failed
        clock.advance("1d")
    held = store.read_partition(PartitionKey("open_interest", "binance_coinm", "BTC", "1d"))
    served = exchange.fetch_open_interest_history("BTC/USDT:USDT", "1d", limit=500)
    assert len(served) <= 31  # what the exchange still shows
    assert held.index[0] <= pd.Timestamp("2025-01-31", tz="UTC")  # what the store kept
    assert (held.index[-1] - held.index[0]).days >= 100 and held.index.is_unique


def test_live_collection_through_ccxt_binance_offline(recorded_binance, tmp_path: Path) -> None:  # noqa: ANN001
    """The live path: a real ccxt.binanceusdm (answered from recorded bodies) into the store
    under the task's venue; a repeat adds nothing."""
    exchange, _ = recorded_binance()
    now = pd.Timestamp("2026-03-19T21:00:10Z")  # 10 s after the last recorded candle closed
    plan = CollectPlan(exchange=exchange, symbols=("NEAR", "BTC"), timeframe="1h",
                       since="2026-03-10T00:00:00Z", open_interest_timeframe="4h")
    store = MarketStore(tmp_path)
    first = collect(store, plan, now)
    assert first.failed == {}
    assert {k for k, v in first.added.items() if v} == {
        f"{d}/binance/{s}/{i}" for s in ("NEAR", "BTC")
        for d, i in (("ohlcv", "1h"), ("funding", "8h"), ("open_interest", "4h"))}
    bars = store.read_partition(PartitionKey("ohlcv", "binance", "NEAR", "1h"))
    assert bars.index[0] == pd.Timestamp("2026-03-10", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2026-03-19T20:00Z") and bars.index.is_unique
    again = collect(store, plan, now)
    assert again.rows == 0 and again.failed == {}
