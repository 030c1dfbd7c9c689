"""The live callers' smoothed forecast (forecasting.smoothing) over the stored scores table: the
backtest's ``policy_targets`` sigma to the stated tolerance, no look-ahead, by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cascade_ml.backtest.strategies import Signals, policy_targets
from cascade_ml.contracts.columns import VOL_FORECAST
from cascade_ml.data.store import MarketStore
from cascade_ml.forecasting.scores import merge_scores, vol_history
from cascade_ml.forecasting.smoothing import (
    UNSMOOTHED,
    smoothed_forecast,
    smoothed_sigma,
    tolerance,
    window_bars,
)
from cascade_ml.policy import PolicyConfig
from cascade_ml.policy.schemas import Forecast

HOUR = pd.Timedelta("1h")


def _store(tmp_path: Path, vols: np.ndarray, start: str = "2026-01-01") -> MarketStore:
    """A scores table of ``vols`` on consecutive hourly bars, written as the scorer writes it."""
    store = MarketStore(tmp_path / "store")
    index = pd.date_range(start, periods=len(vols), freq="1h", tz="UTC", name="timestamp")
    rows = pd.DataFrame({VOL_FORECAST: vols, "model_version": "1"}, index=index)
    merge_scores(store, "NEAR", rows, horizon=24, model_version="1")
    return store


def test_window_covers_ten_halflives_and_tolerance_is_half_to_the_tenth() -> None:
    assert window_bars(72) == 721 and window_bars(2.5) == 26 and window_bars(1) == 11
    assert tolerance(2.0) == pytest.approx(2.0 / 1024)


def test_live_smoothed_sigma_equals_the_backtests_on_the_same_stored_forecasts(
        tmp_path: Path) -> None:
    halflife, n = 3.0, 120  # window 31 bars: the first 31 bars see the whole history
    rng = np.random.default_rng(7)
    vols = np.exp(rng.normal(np.log(0.05), 0.6, n))
    vols[[40, 41]] = 0.5, 0.004  # a wide log gap just before a window start
    store = _store(tmp_path, vols)
    history = vol_history(store, "NEAR")
    live = np.array([smoothed_sigma(history, ts, float(v), halflife, HOUR)[0]
                     for ts, v in history.items()])

    cfg = PolicyConfig(forecast_halflife_bars=halflife)
    sig = Signals(sigma_h=vols, cascade_prob=np.full(n, 0.05), n_fired=np.zeros(n),
                  horizon_hours=24.0)
    backtest = policy_targets(sig, "long", 10_000.0, cfg.tiers_for("NEAR"), cfg)["sigma_h"]

    w = window_bars(halflife)
    gap = float(np.log(vols).max() - np.log(vols).min())
    diff = np.abs(np.log(live) - np.log(backtest))
    assert np.array_equal(live[:w], backtest[:w])  # the window reaches the first stored bar
    assert diff.max() <= tolerance(gap)  # the EWMA's start weighs at most 0.5**10 after that
    assert diff[w:].max() > 0  # ... and does weigh: the bound is not vacuous
    # unsmoothed differs by far more than the tolerance: the comparison can fail
    assert np.abs(np.log(vols) - np.log(backtest)).max() > 100 * tolerance(gap)


def test_appending_future_forecasts_leaves_past_bars_unchanged(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vols = np.exp(rng.normal(np.log(0.05), 0.5, 60))
    short = vol_history(_store(tmp_path / "a", vols[:40]), "NEAR")
    longer = vol_history(_store(tmp_path / "b", np.r_[vols[:40], vols[40:] * 50]), "NEAR")
    for ts, v in short.items():
        before = smoothed_sigma(short, ts, float(v), 4.0, HOUR)
        assert smoothed_sigma(longer, ts, float(v), 4.0, HOUR) == before


def test_half_life_one_bar_by_hand_and_first_bar_unsmoothed() -> None:
    ts = pd.date_range("2026-01-01", periods=3, freq="1h", tz="UTC")
    history = pd.Series([0.02, 0.08, 1.0], index=ts)  # the 1.0 is a later bar: never read
    forecast = Forecast(sigma_h=0.08, horizon_hours=24.0, cascade_prob=0.1)
    got, note = smoothed_forecast(forecast, history, ts[1], 1.0, HOUR)
    # weights 1/2 and 1/2 on the logs: the geometric mean sqrt(0.02 x 0.08) = 0.04
    assert got.sigma_h == pytest.approx(0.04, rel=1e-12) and note is None
    assert got.cascade_prob == 0.1  # the cascade probability is not smoothed
    first, note = smoothed_forecast(forecast, history, ts[0], 1.0, HOUR)
    assert first.sigma_h == 0.08 and note == UNSMOOTHED  # a first bar: read as it is, said so
    off, note = smoothed_forecast(forecast, history, ts[1], 0.0, HOUR)
    assert off.sigma_h == 0.08 and note is None  # half-life 0: the forecast as it is
    # a bar just past the window (11 bars for half-life 1) does not enter it
    far = pd.Series([0.02], index=[ts[1] - 11 * HOUR])
    assert smoothed_forecast(forecast, far, ts[1], 1.0, HOUR) == (forecast, UNSMOOTHED)
    near = pd.Series([0.02], index=[ts[1] - 10 * HOUR])
    assert math.isclose(smoothed_forecast(forecast, near, ts[1], 1.0, HOUR)[0].sigma_h, 0.04)
