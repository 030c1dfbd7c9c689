"""Real NEAR prices and funding (shared raw data) with simple trailing forecasts built here,
so the backtest tests do not depend on the features or models layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

RAW = Path("/work/shared/data/raw")
OHLCV = RAW / "yagokhan-varanus-neo-flow-hybrid-extended/data/NEARUSDT_1h.parquet"
FUNDING = RAW / "roshan7869-algotrading/user_data/data/binance/futures/" \
    "NEAR_USDT_USDT-1h-funding_rate.feather"
START, END = "2025-09-01", "2025-12-01"  # includes the 2025-10-10 cascade, Binance funding


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
    from the trailing 24 h drawdown. Indexed like the OOS table over START..END."""
    r = np.log(near_ohlcv["close"]).diff()
    var24 = (r ** 2).rolling(168).mean() * 24
    dd = 1 - near_ohlcv["close"] / near_ohlcv["close"].rolling(24).max()
    prob = (dd / 0.15).clip(0, 1) * 0.5 + 0.02
    out = pd.DataFrame({"fold": 0, "var_forecast": var24, "vol_forecast": np.sqrt(var24),
                        "cascade_prob": prob}).loc[START:END]
    return out.dropna()


@pytest.fixture(scope="session")
def labels(near_ohlcv: pd.DataFrame) -> pd.DataFrame:
    low = near_ohlcv["low"][::-1].rolling(24).min()[::-1].shift(-1)
    fwd_min = np.log(low / near_ohlcv["close"])
    return pd.DataFrame({"cascade": (fwd_min < -0.08).astype(float).where(fwd_min.notna())})
