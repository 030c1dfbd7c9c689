"""Real NEAR prices and funding (the bundled sample, data/sample) with simple trailing forecasts
built here, so the backtest tests do not depend on the features or models layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
OHLCV = SAMPLE / "yagokhan-varanus-neo-flow-hybrid-extended/data/NEARUSDT_1h.parquet"
FUNDING = SAMPLE / "roshan7869-algotrading/user_data/data/binance/futures/" \
    "NEAR_USDT_USDT-1h-funding_rate.feather"
START, END = "2025-09-01", "2025-12-01"  # includes the 2025-10-10 cascade, Binance funding
FINAL = "2025-11-01"


@pytest.fixture(scope="session")
def near_ohlcv() -> pd.DataFrame:
    df = pd.read_parquet(OHLCV)[["open", "high", "low", "close", "volume"]]
    df.index = pd.DatetimeIndex(df.index).tz_convert("UTC").as_unit("ns").rename("timestamp")
    return df.loc["2025-07-01":END]


@pytest.fixture(scope="session")
def near_funding() -> pd.DataFrame:
    f = pd.read_feather(FUNDING)
    out = pd.DataFrame({"funding_rate": f["open"].to_numpy(float)},
                       index=pd.DatetimeIndex(f["date"]).tz_convert("UTC").as_unit("ns"))
    out.index.name = "timestamp"
    return out.loc["2025-07-01":END]


@pytest.fixture(scope="session")
def trailing_preds(near_ohlcv: pd.DataFrame) -> pd.DataFrame:
    """'Forecasts' from the past only: trailing 7-day RV scaled to 24 h, and a cascade score
    from the trailing 24 h drawdown; 'baselines': trailing 30-day RV (as HAR), a 24 h EWMA, a
    flat climatological probability. Indexed like the OOS table over START..END; the last
    month is the final period (fold 1)."""
    r = np.log(near_ohlcv["close"]).diff()
    var24 = (r ** 2).rolling(168).mean() * 24
    dd = 1 - near_ohlcv["close"] / near_ohlcv["close"].rolling(24).max()
    prob = (dd / 0.15).clip(0, 1) * 0.5 + 0.02
    out = pd.DataFrame({"fold": 0, "var_forecast": var24, "vol_forecast": np.sqrt(var24),
                        "cascade_prob": prob,
                        "var_har": (r ** 2).rolling(720).mean() * 24,
                        "var_ewma": (r ** 2).ewm(halflife=24).mean() * 24,
                        "prob_climatology": 0.04}).loc[START:END]
    out.loc[FINAL:, "fold"] = 1
    return out.dropna()


@pytest.fixture(scope="session")
def labels(near_ohlcv: pd.DataFrame) -> pd.DataFrame:
    low = near_ohlcv["low"][::-1].rolling(24).min()[::-1].shift(-1)
    fwd_min = np.log(low / near_ohlcv["close"])
    r2 = np.log(near_ohlcv["close"]).diff() ** 2
    fwd_rv = r2[::-1].rolling(24).sum()[::-1].shift(-1)
    return pd.DataFrame({"cascade": (fwd_min < -0.08).astype(float).where(fwd_min.notna()),
                         "fwd_rv": fwd_rv})


@pytest.fixture(scope="session")
def btc_ohlcv() -> pd.DataFrame:
    df = pd.read_parquet(str(OHLCV).replace("NEARUSDT", "BTCUSDT"))
    df = df[["open", "high", "low", "close", "volume"]]
    df.index = pd.DatetimeIndex(df.index).tz_convert("UTC").as_unit("ns").rename("timestamp")
    return df.loc["2025-07-01":END]
