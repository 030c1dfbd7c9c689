"""The policy's trailing vol reference: point in time, the number written out by hand, and the
same for a bar whether the backtest computes it from closes or the scorer / service / live loop
read it from the feature row (and so the same hedge)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cascade_ml.backtest.data import align
from cascade_ml.backtest.strategies import policy_targets
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.stats import log_return
from cascade_ml.features.volatility import realized
from cascade_ml.forecasting.inputs import context_columns, trailing_vol, trailing_vol_annual
from cascade_ml.forecasting.scores import decision_columns
from cascade_ml.policy import PolicyConfig

HOUR = pd.Timedelta("1h")
POLICY = PolicyConfig(forecast_halflife_bars=0.0)  # objective rule, trailing reference over
# 720 bars; each bar's forecast read as it is (smoothing has tests of its own), so the ramp
# below reaches the policy unlagged


def _closes(n: int, seed: int = 3) -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2026-01-01", periods=n, freq="1h", tz="UTC")
    return pd.Series(5.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), index=index)


def test_trailing_vol_by_hand_and_point_in_time() -> None:
    close = _closes(900)
    got = trailing_vol_annual(close, 720, HOUR)
    # 720 log returns need 721 closes: NaN before bar 720
    assert got.iloc[:720].isna().all() and np.isfinite(got.iloc[720:]).all()
    # bar 800: the returns of bars 81..800, sqrt(sum r^2 / 720 * 8760)
    c = close.to_numpy()
    s = sum(math.log(c[i] / c[i - 1]) ** 2 for i in range(81, 801))
    assert got.iloc[800] == pytest.approx(math.sqrt(s / 720 * 8760), rel=1e-12)
    # 1 % per hour is about 94 % a year
    assert 0.8 < got.iloc[800] < 1.1
    # rows after t (a crash) do not move the value at t
    future = pd.Series(close.iloc[-1] * np.exp(np.cumsum(np.full(50, -0.2))),
                       index=close.index[-1] + HOUR * np.arange(1, 51))
    longer = trailing_vol_annual(pd.concat([close, future]), 720, HOUR)
    pd.testing.assert_series_equal(longer.iloc[:900], got, check_freq=False)
    assert longer.iloc[-1] > 2 * got.iloc[-1]
    # two-hour bars: half as many bars a year
    two = trailing_vol_annual(close, 720, 2 * HOUR)
    assert two.iloc[800] == pytest.approx(got.iloc[800] / math.sqrt(2), rel=1e-12)


def test_feature_row_gives_the_backtest_number() -> None:
    close = _closes(800, seed=4)
    rv = realized(log_return(close), FeatureConfig(rv_windows=[720]))["rv_720h"]
    columns = context_columns([], POLICY, HOUR)
    assert columns.rv == "rv_720h"
    want = trailing_vol_annual(close, 720, HOUR)
    for t in (720, 750, 799):
        assert trailing_vol({"rv_720h": rv.iloc[t]}, columns) == pytest.approx(want.iloc[t],
                                                                            rel=1e-12)
    # no full window yet, or no column: unknown (the policy then uses the fixed reference)
    assert trailing_vol({"rv_720h": rv.iloc[700]}, columns) is None
    assert trailing_vol({}, columns) is None


def test_scorer_and_backtest_give_the_same_hedge_for_a_bar() -> None:
    close = _closes(800, seed=5)
    ohlcv = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999,
                          "close": close})
    span = close.index[720:]
    trailing = trailing_vol_annual(close, 720, HOUR)[span].to_numpy()
    # 24 h forecasts from 0.5x to 1.7x the bar's own trailing vol (24 h-scaled)
    ratio = np.linspace(0.5, 1.7, len(span))
    preds = pd.DataFrame({"vol_forecast": ratio * trailing * math.sqrt(24 / 8760),
                          "cascade_prob": 0.04}, index=span)
    data = align(ohlcv, preds, horizon=24, bar=HOUR, vol_window=720)
    backtest = policy_targets(data.signals, "long", 10_000.0, POLICY.tiers_for("NEAR"), POLICY,
                              trailing_vol_annual=data.trailing_vol_annual)["hedge"]
    features = pd.DataFrame(
        {"rv_720h": realized(log_return(close), FeatureConfig(rv_windows=[720]))["rv_720h"]})
    task = TaskConfig(symbols=["NEAR"], references=[])
    scored = decision_columns("NEAR", preds, features, task, POLICY, 10_000.0)["hedge_ratio"]
    np.testing.assert_allclose(scored.to_numpy(), backtest, rtol=0, atol=1e-9)
    # the reference matters: a forecast well under the perp's own vol hedges at the band's
    # 30 % floor, one well over it at the 70 % top, and the hedges spread in between
    assert scored.iloc[0] == pytest.approx(0.3) and scored.iloc[-1] == pytest.approx(0.7)
    assert scored.nunique() > 10
    # without the trailing vol (the fixed 80 %/yr reference) the same bars hedge differently
    fixed = policy_targets(data.signals, "long", 10_000.0, POLICY.tiers_for("NEAR"), POLICY,
                           trailing_vol_annual=None)["hedge"]
    assert np.abs(fixed - backtest).max() > 0.05
