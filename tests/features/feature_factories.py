"""Synthetic but realistic inputs for the feature tests: every dataset, on a small span.

(A plain module, not a conftest: test files import it by name.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.features.inputs import EventSeries, FeatureInputs

START = pd.Timestamp("2024-01-01", tz="UTC")


def make_bars(n: int, seed: int, start: pd.Timestamp = START, price: float = 5.0) -> pd.DataFrame:
    """Random-walk 1h candles with consistent high/low and positive volume."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n, freq="1h", name="timestamp")
    ret = rng.standard_t(4, n) * 0.008
    close = price * np.exp(np.cumsum(ret))
    open_ = np.r_[price, close[:-1]]
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    volume = rng.lognormal(10, 0.5, n)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=idx)


def make_events(index: pd.DatetimeIndex, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = pd.DataFrame(columns, index=index)
    frame.index.name = "timestamp"
    return frame


def make_inputs(n: int = 1200, seed: int = 0,
                refs: tuple[str, ...] = ("BTC", "ETH")) -> FeatureInputs:
    """NEAR plus references with funding on two venues, 4h+1d OI, liquidations and sentiment."""
    rng = np.random.default_rng(seed + 100)
    bars = make_bars(n, seed)
    ref_bars = {r: make_bars(n, seed + i + 1, price=100.0 * (i + 1)) for i, r in enumerate(refs)}
    end = bars.index[-1]
    f8 = pd.date_range(START, end, freq="8h")
    f1 = pd.date_range(START, end, freq="1h")
    funding: dict[str, dict[str, EventSeries]] = {"binance": {}, "hyperliquid": {}}
    for s in ("NEAR", *refs):
        funding["binance"][s] = EventSeries(
            make_events(f8, {"funding_rate": rng.normal(1e-4, 2e-4, len(f8))}), "8h", "binance")
        funding["hyperliquid"][s] = EventSeries(
            make_events(f1, {"funding_rate": rng.normal(1.2e-5, 2e-5, len(f1))}), "1h",
            "hyperliquid")
    oi4 = pd.date_range(START, end, freq="4h")
    d1 = pd.date_range(START, end, freq="1D")
    oi: dict[str, dict[str, list[EventSeries]]] = {"binance": {}}
    for i, s in enumerate(("NEAR", *refs)):
        level = 1e7 * (i + 1) * np.exp(np.cumsum(rng.normal(0, 0.02, len(oi4))))
        daily = 1e7 * (i + 1) * np.exp(np.cumsum(rng.normal(0, 0.03, len(d1))))
        oi["binance"][s] = [
            EventSeries(make_events(oi4, {"open_interest_value": level}), "4h", "binance"),
            EventSeries(make_events(d1, {"open_interest": daily / 5.0}), "1d", "binance"),
        ]
    liq = {s: EventSeries(make_events(d1, {"total_notional": rng.lognormal(12, 1, len(d1))}),
                          "1d", "hyperliquid") for s in ("NEAR", *refs)}
    sentiment = {
        "MARKET": EventSeries(make_events(d1, {"score": rng.integers(5, 95, len(d1)) * 1.0}),
                              "1d", "alternative.me"),
        "NEAR": EventSeries(make_events(d1, {"mentions": rng.poisson(200, len(d1)) * 1.0}),
                            "1d", "social"),
    }
    return FeatureInputs("NEAR", bars, pd.Timedelta("1h"), ref_bars, funding, oi, liq, sentiment,
                         depth={"NEAR": [make_depth(START, end, seed + 200)]})


def make_depth(start: pd.Timestamp, end: pd.Timestamp, seed: int, freq: str = "15min",
               interval: str = "15m") -> EventSeries:
    """Depth snapshots: 1% and 5% bid/ask notional around a random-walk liquidity level."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, end, freq=freq)
    level = 2e5 * np.exp(np.cumsum(rng.normal(0, 0.03, len(idx))))
    bid1 = level * rng.lognormal(0, 0.2, len(idx))
    ask1 = level * rng.lognormal(0, 0.2, len(idx))
    cols = {"bid_notional_1pct": bid1, "ask_notional_1pct": ask1,
            "bid_notional_5pct": bid1 * 6.0, "ask_notional_5pct": ask1 * 6.0}
    return EventSeries(make_events(idx, cols), interval, "binance")


def extreme_future(inputs: FeatureInputs, cutoff: pd.Timestamp) -> FeatureInputs:
    """The same inputs with every row after ``cutoff`` made extreme (prices x10 on every other
    bar, x1000 volume, 0.5% funding, OI x50, liquidations x1e4, sentiment 100, mentions x100,
    bid depth /1000 and ask depth x1000)."""
    def wild(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        late = frame.index > cutoff
        jumpy = late & (np.arange(len(frame)) % 2 == 0)
        for col in ("open", "high", "low", "close"):
            if col in frame:
                frame.loc[jumpy, col] = frame.loc[jumpy, col] * 10
        for col, factor in (
                            ("volume", 1000), ("open_interest", 50), ("open_interest_value", 50),
                            ("total_notional", 1e4), ("mentions", 100),
                            ("bid_notional_1pct", 1e-3), ("ask_notional_1pct", 1e3),
                            ("bid_notional_5pct", 1e-3), ("ask_notional_5pct", 1e3)):
            if col in frame:
                frame.loc[late, col] = frame.loc[late, col] * factor
        if "funding_rate" in frame:
            frame.loc[late, "funding_rate"] = 0.005
        if "score" in frame:
            frame.loc[late, "score"] = 100.0
        return frame

    return inputs.map_frames(wild)
