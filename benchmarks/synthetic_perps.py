"""Synthetic perps for the backtest benchmarks, built from the real 1h bars of data/sample.

Each perp is one of the sample's three real paths (NEAR, BTC, ETH, 2023-01 .. 2026-03) shifted
in time by its own offset (wrapped around), so prices are real but the perps are not the same
series; its 'forecasts' are trailing realised variances and a cascade score from the trailing
drawdown, its labels come from the bars (as in the tests). The benchmarks measure the engine,
not the forecasts. Imported by ``bench_backtest.py`` and ``bench_universe_backtest.py`` (run as
scripts from any folder: Python puts this folder first on their path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
VARANUS = SAMPLE / "yagokhan-varanus-neo-flow-hybrid-extended" / "data"
BASES = ("NEAR", "BTC", "ETH")
SHIFT = 997  # bars between the paths of perp k and perp k + 3
WARMUP = 800  # bars before the span: the 720-bar HAR variance needs them


def sample_bars(name: str) -> pd.DataFrame:
    """The sample's 1h bars of ``name``USDT (OHLCV) on a UTC index named ``timestamp``."""
    df = pd.read_parquet(VARANUS / f"{name}USDT_1h.parquet")
    df = df[["open", "high", "low", "close", "volume"]]
    df.index = pd.DatetimeIndex(df.index).tz_convert("UTC").as_unit("ns").rename("timestamp")
    return df


def bases() -> list[pd.DataFrame]:
    """The three real paths, in :data:`BASES` order (perp k is built from ``bases()[k % 3]``)."""
    return [sample_bars(name) for name in BASES]


def perp(base: pd.DataFrame, k: int, hours: int
         ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(bars, out-of-sample predictions, labels) of perp ``k``: ``base`` shifted by
    ``SHIFT x k`` bars (wrapped) on its last ``hours`` bars plus the warm-up. The last 15 % of
    the prediction rows are fold 1 (the final period), the rest fold 0."""
    vals = np.roll(base.to_numpy(float), SHIFT * k, axis=0)
    bars = pd.DataFrame(vals, index=base.index, columns=base.columns).iloc[-hours - WARMUP:]
    r = np.log(bars["close"]).diff()
    var24 = (r ** 2).rolling(168).mean() * 24
    dd = 1 - bars["close"] / bars["close"].rolling(24).max()
    n = len(bars)
    preds = pd.DataFrame({"fold": np.where(np.arange(n) > 0.85 * n, 1, 0),
                          "var_forecast": var24, "vol_forecast": np.sqrt(var24),
                          "cascade_prob": (dd / 0.15).clip(0, 1) * 0.5 + 0.02,
                          "var_har": (r ** 2).rolling(720).mean() * 24,
                          "var_ewma": (r ** 2).ewm(halflife=24).mean() * 24,
                          "prob_climatology": 0.04}, index=bars.index).iloc[WARMUP:].dropna()
    low = bars["low"][::-1].rolling(24).min()[::-1].shift(-1)
    labels = pd.DataFrame({"cascade": (np.log(low / bars["close"]) < -0.08).astype(float),
                           "fwd_rv": (r ** 2)[::-1].rolling(24).sum()[::-1].shift(-1)})
    return bars, preds, labels
