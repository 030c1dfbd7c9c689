"""The replay exchange: point-in-time answers, ccxt shapes, and the ingestion code running on it."""

from __future__ import annotations

from pathlib import Path

import ccxt
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascade_ml.data.config import ExchangeSourceConfig
from cascade_ml.data.sources.exchange import ingest_exchange
from cascade_ml.data.sources.replay import ReplayExchange
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.live.clock import SimClock

HOUR = 3_600_000
NEAR = "NEAR/USDT:USDT"


def ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


@pytest.fixture(scope="module")
def near(sample_store: MarketStore) -> dict[str, pd.DataFrame]:
    return {d: sample_store.read(d, "NEAR", venue="binance", interval=i)
            for d, i in (("ohlcv", "1h"), ("funding", "8h"), ("open_interest", "4h"))}


def test_a_bar_appears_exactly_when_it_closes(sample_store: MarketStore) -> None:
    bar = pd.Timestamp("2026-03-10T11:00:00Z")
    clock = SimClock(ms(bar) + HOUR - 1)  # one millisecond before the 11:00 bar closes
    ex = ReplayExchange(sample_store, clock)
    assert ex.fetch_ohlcv(NEAR, "1h", limit=1)[0][0] == ms(bar) - HOUR
    assert ex.fetch_ohlcv(NEAR, "1h", since=ms(bar)) == []
    clock.advance(1)
    assert ex.fetch_ohlcv(NEAR, "1h", limit=1)[0][0] == ms(bar)
    assert ex.milliseconds() == ms(bar) + HOUR
    # funding settles at 08:00: invisible a millisecond before, visible at the settlement time
    settle = pd.Timestamp("2026-03-10T08:00:00Z")
    later = ReplayExchange(sample_store, SimClock(ms(settle) - 1))
    assert later.fetch_funding_rate_history(NEAR, limit=1)[0]["timestamp"] < ms(settle)
    later.clock.advance(1)
    assert later.fetch_funding_rate_history(NEAR, limit=1)[0]["timestamp"] == ms(settle)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(now_frac=st.floats(-0.01, 1.01), since_frac=st.one_of(st.none(), st.floats(-0.01, 1.01)),
       limit=st.one_of(st.none(), st.integers(1, 2000)),
       jitter=st.one_of(st.sampled_from([-1, 0, 1]), st.integers(-HOUR, HOUR)))
def test_replay_never_shows_anything_before_it_is_known(
        sample_store: MarketStore, near: dict[str, pd.DataFrame], now_frac: float,
        since_frac: float | None, limit: int | None, jitter: int) -> None:
    bars = near["ohlcv"]
    lo, hi = ms(bars.index[0]), ms(bars.index[-1]) + HOUR
    now = (lo + int(now_frac * (hi - lo)) // HOUR * HOUR) + jitter  # often 1 ms off a close
    since = None if since_frac is None else int(lo + since_frac * (hi - lo))
    ex = ReplayExchange(sample_store, SimClock(now))

    rows = ex.fetch_ohlcv(NEAR, "1h", since=since, limit=limit)
    stamps = np.array([r[0] for r in rows], dtype=np.int64)
    assert (stamps + HOUR <= now).all()  # every bar shown has closed
    closed = bars[bars.index + pd.Timedelta("1h") <= pd.Timestamp(now, unit="ms", tz="UTC")]
    want = closed if since is None else closed[closed.index >= pd.Timestamp(since, unit="ms",
                                                                             tz="UTC")]
    n = min(limit or 500, 1500)
    want = want.tail(n) if since is None else want.head(n)
    assert stamps.tolist() == [ms(t) for t in want.index]  # ... and nothing closed is missing
    assert [r[4] for r in rows] == want["close"].tolist()

    for dataset, fetch in (("funding", lambda: ex.fetch_funding_rate_history(NEAR, since, limit)),
                           ("open_interest",
                            lambda: ex.fetch_open_interest_history(NEAR, "4h", since, limit))):
        got = [r["timestamp"] for r in fetch()]
        assert all(t <= now for t in got), dataset  # settled / taken by now, never later
        known = near[dataset][near[dataset].index <= pd.Timestamp(now, unit="ms", tz="UTC")]
        if got:
            assert got == sorted(got) and set(got) <= {ms(t) for t in known.index}
        if since is None and len(known):
            assert got[-1] == ms(known.index[-1])  # the newest known row is served


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dataset=st.sampled_from(["funding", "open_interest"]), pick=st.floats(0, 1),
       offset=st.one_of(st.sampled_from([-1, 0, 1]), st.integers(-8 * HOUR, 8 * HOUR)),
       limit=st.one_of(st.none(), st.integers(1, 50)))
def test_funding_and_open_interest_only_once_settled_or_taken(
        sample_store: MarketStore, near: dict[str, pd.DataFrame], dataset: str, pick: float,
        offset: int, limit: int | None) -> None:
    frame = near[dataset]
    stamp = ms(frame.index[int(pick * (len(frame) - 1))])
    now = stamp + offset  # around a settlement / snapshot time, often 1 ms either side
    ex = ReplayExchange(sample_store, SimClock(now))
    rows = (ex.fetch_funding_rate_history(NEAR, None, limit) if dataset == "funding"
            else ex.fetch_open_interest_history(NEAR, "4h", None, limit))
    known = frame[frame.index <= pd.Timestamp(now, unit="ms", tz="UTC")].tail(limit or 30)
    assert [r["timestamp"] for r in rows][-len(known):] == [ms(t) for t in known.index]
    assert all(r["timestamp"] <= now for r in rows)
    assert bool(rows and rows[-1]["timestamp"] >= stamp) == (offset >= 0)


def _rows_up_to(store: MarketStore, key, now: pd.Timestamp, since: pd.Timestamp):  # noqa: ANN001
    frame = store.read_partition(key)
    frame = frame[frame.index >= since]
    if key.dataset == "ohlcv":
        return frame[frame.index + pd.Timedelta(key.interval) <= now]
    return frame[frame.index <= now]


def test_ingestion_on_replay_writes_exactly_the_store_up_to_the_clock(
        sample_store: MarketStore, tmp_path: Path) -> None:
    since = pd.Timestamp("2025-06-01T00:00:00Z")
    clock = SimClock("2026-03-01T12:30:00Z")
    replay = ReplayExchange(sample_store, clock)
    out = MarketStore(tmp_path)

    def ingest():  # noqa: ANN202 - the ingestion function, unchanged, reading the clock itself
        reports = []
        for tf, datasets in (("1h", ["ohlcv", "funding"]), ("4h", ["open_interest"])):
            cfg = ExchangeSourceConfig(exchange="binanceusdm", datasets=datasets, timeframe=tf,
                                       since=since.isoformat())
            reports.append(ingest_exchange(out, cfg, ["NEAR", "BTC"], exchange=replay,
                                           sleep=lambda s: None))
        return reports

    def check(now: pd.Timestamp) -> None:
        keys = out.partitions()
        assert {str(k) for k in keys} == {f"{d}/binance/{s}/{i}" for s in ("NEAR", "BTC")
                                          for d, i in (("ohlcv", "1h"), ("funding", "8h"),
                                                       ("open_interest", "4h"))}
        for key in keys:
            got = out.read_partition(key)
            want = _rows_up_to(sample_store, key, now, since)[got.columns]
            assert len(want) > 0 and got.equals(want), str(key)

    first = ingest()
    assert not any(r.failed for r in first), [r.format() for r in first]
    check(clock.now)
    clock.advance("30h")
    second = ingest()
    check(clock.now)
    added = {str(w.key): w.added for r in second for w in r.writes}
    assert added["ohlcv/binance/NEAR/1h"] == 30  # exactly the bars that closed meanwhile
    assert added["funding/binance/NEAR/8h"] in (3, 4)
    assert all(w.replaced == 0 for r in second for w in r.writes)


def test_hyperliquid_venue_names_markets_like_the_ingestion_code(
        sample_store: MarketStore, tmp_path: Path) -> None:
    clock = SimClock("2024-06-01T00:00:00Z")
    replay = ReplayExchange(sample_store, clock, venue="hyperliquid")
    assert "NEAR/USDC:USDC" in replay.load_markets()
    assert replay.has["fetchFundingRateHistory"] and not replay.has["fetchOpenInterestHistory"]
    out = MarketStore(tmp_path)
    cfg = ExchangeSourceConfig(exchange="hyperliquid", datasets=["funding"],
                               since="2024-05-01T00:00:00Z")
    report = ingest_exchange(out, cfg, ["NEAR"], exchange=replay, sleep=lambda s: None)
    assert not report.failed, report.format()
    got = out.read("funding", "NEAR", venue="hyperliquid", interval="1h")
    want = _rows_up_to(sample_store, out.resolve("funding", "NEAR"), clock.now,
                       pd.Timestamp("2024-05-01T00:00:00Z"))
    assert len(got) == 31 * 24 + 1 and got["funding_rate"].equals(want["funding_rate"])


def test_ccxt_structures_markets_ticker_and_errors(sample_store: MarketStore) -> None:
    clock = SimClock("2026-03-10T12:30:00Z")
    ex = ReplayExchange(sample_store, clock)
    assert isinstance(ex, ccxt.Exchange) and ex.id == "binance"
    markets = ex.load_markets()
    assert sorted(markets) == ["BTC/USDT:USDT", "ETH/USDT:USDT", "NEAR/USDT:USDT"]
    m = markets[NEAR]
    assert (m["swap"], m["linear"], m["base"], m["settle"], m["id"]) == (True, True, "NEAR",
                                                                          "USDT", "NEARUSDT")
    ticker = ex.fetch_ticker(NEAR)
    last_bar = ex.fetch_ohlcv(NEAR, "1h", limit=24)
    assert ticker["last"] == last_bar[-1][4] and ticker["timestamp"] == last_bar[-1][0] + HOUR
    assert ticker["high"] == max(r[2] for r in last_bar)
    assert ticker["timestamp"] <= clock.now_ms
    funding = ex.fetch_funding_rate_history(NEAR, limit=3)
    assert set(funding[0]) >= {"symbol", "fundingRate", "timestamp", "datetime", "info"}
    assert funding[-1]["datetime"] == "2026-03-10T08:00:00.000Z"
    oi = ex.fetch_open_interest_history(NEAR, "4h", limit=2)
    assert oi[-1]["openInterestAmount"] > 0 and oi[-1]["openInterestValue"] > 0
    with pytest.raises(ccxt.BadSymbol):
        ex.fetch_ohlcv("DOGE/USDT:USDT", "1h")
    with pytest.raises(ccxt.BadRequest, match=r"no 4h candles .* stored: \['1h'\]"):
        ex.fetch_ohlcv(NEAR, "4h")
    with pytest.raises(CascadeError, match="cannot go back"):
        clock.set("2026-03-01")
    assert len(ex.fetch_ohlcv(NEAR, "1h", limit=5000)) == 1500  # Binance's cap


# ---------------------------------------------------------------------------- order-book depth
def _book(mid: float, bid_levels: int, ask_levels: int, stamp: int) -> dict:
    """A ccxt order book with 0.2%-spaced levels (how far each side reaches is the point)."""
    bids = [[mid * (1 - 0.001 - 0.002 * i), 500.0 + 40.0 * i] for i in range(bid_levels)]
    asks = [[mid * (1 + 0.001 + 0.002 * i), 450.0 + 35.0 * i] for i in range(ask_levels)]
    return {"bids": bids, "asks": asks, "timestamp": stamp}


@pytest.fixture(scope="module")
def depth_store(sample_store: MarketStore, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """NEAR candles from the sample plus three hourly depth rows summed from order books by the
    ingestion code's own ``depth_from_order_book`` (the last one reaches only 3% on the ask)."""
    from cascade_ml.data.sources.exchange import depth_from_order_book
    from cascade_ml.data.store import PartitionKey

    store = MarketStore(tmp_path_factory.mktemp("depth_store"))
    bars = sample_store.read("ohlcv", "NEAR", venue="binance", start="2026-03-09",
                             end="2026-03-11")
    store.write(PartitionKey("ohlcv", "binance", "NEAR", "1h"), bars)
    stamps = [ms(pd.Timestamp(f"2026-03-10T{h:02d}:00:07Z")) for h in (10, 11, 12)]
    rows = []
    for stamp, asks in zip(stamps, (40, 40, 16), strict=True):
        mid = float(bars[bars.index + pd.Timedelta("1h") <= pd.Timestamp(stamp, unit="ms",
                                                                         tz="UTC")]["close"].iloc[-1])
        rows.append(depth_from_order_book(_book(mid, 40, asks, stamp), "fixture"))
    store.write(PartitionKey("depth", "binance", "NEAR", "1h"), pd.concat(rows))
    return store, stamps


def test_order_book_is_rebuilt_from_depth_and_ingests_back_to_the_same_rows(
        depth_store, tmp_path: Path) -> None:  # noqa: ANN001
    from cascade_ml.data.sources.exchange import ingest_depth

    store, stamps = depth_store
    stored = store.read("depth", "NEAR")
    clock = SimClock(stamps[0] - 1)
    replay = ReplayExchange(store, clock)
    assert replay.has["fetchOrderBook"]
    with pytest.raises(ccxt.ExchangeNotAvailable):  # the first snapshot is not taken yet
        replay.fetch_order_book(NEAR)
    out = MarketStore(tmp_path)
    for stamp in stamps:
        clock.set(stamp + 30 * 60_000)
        book = replay.fetch_order_book(NEAR)
        assert book["timestamp"] == stamp <= clock.now_ms
        assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
        assert book["bids"][0][0] < book["asks"][0][0]
        report = ingest_depth(out, replay, ["NEAR"], sleep=lambda s: None)
        assert not report.failed, report.format()
    got = out.read("depth", "NEAR")
    assert got.index.equals(stored.index)
    assert np.allclose(got.to_numpy(), stored[got.columns].to_numpy(), rtol=1e-9, equal_nan=True)
    assert got["ask_notional_4pct"].isna().iloc[-1] and got["ask_notional_3pct"].notna().iloc[-1]
    clock.advance("2h")  # the newest snapshot is now older than its 1h cadence
    with pytest.raises(ccxt.ExchangeNotAvailable, match="no NEAR/USDT:USDT depth snapshot"):
        replay.fetch_order_book(NEAR)


def test_no_depth_data_means_no_order_book(sample_store: MarketStore) -> None:
    replay = ReplayExchange(sample_store, SimClock("2026-03-10T12:30:00Z"))
    assert replay.has["fetchOrderBook"] is False
    with pytest.raises(ccxt.NotSupported, match="no order-book depth data"):
        replay.fetch_order_book(NEAR)
