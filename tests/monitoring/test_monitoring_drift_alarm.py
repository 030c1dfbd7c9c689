"""The drift alarm's limits are calibrated on the training span: it fires on at most 2 % of the
training bars (counted here window by window, apart from the code's own bookkeeping), stays
near that on more of the same series, and fires on a shifted one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.drift import fit_profile
from cascade_ml.monitoring.health import health
from cascade_ml.monitoring.psi import bin_shares, psi_from_shares

WINDOW = 48
CFG = MonitoringConfig(recent_rows=WINDOW)
N = 1200  # training bars; as many again after them from the same law


def _series(seed: int, phi: float = 0.5) -> pd.DataFrame:
    """Three stationary AR(1) inputs over 2N hourly bars."""
    e = np.random.default_rng(seed).normal(size=(2 * N, 3))
    x = np.zeros_like(e)
    for t in range(1, 2 * N):
        x[t] = phi * x[t - 1] + e[t]
    index = pd.date_range("2024-01-01", periods=2 * N, freq="h", tz="UTC", name="timestamp")
    return pd.DataFrame(x, index=index, columns=["a", "b", "c"])


def _alarm_share(profile, frame: pd.DataFrame, shift: float = 0.0) -> float:  # noqa: ANN001
    """Share of the windows ending at each bar of ``frame`` on which any input's PSI is above
    its limit, each window's PSI computed on its own."""
    x, alarms = frame.to_numpy() + shift, 0
    for end in range(WINDOW - 1, len(frame)):
        window = x[end - WINDOW + 1:end + 1]
        alarms += any(
            psi_from_shares(fp.shares, bin_shares(window[:, j], fp.cuts)[0]) > fp.psi_limit
            for j, fp in enumerate(profile.features.values()))
    return alarms / (len(frame) - WINDOW + 1)


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, object]:
    frame = _series(1)
    return frame, fit_profile(frame, (frame.index[0], frame.index[N - 1]), cfg=CFG)


def test_the_alarm_fires_on_at_most_2_percent_of_the_training_bars(fitted) -> None:  # noqa: ANN001
    frame, profile = fitted
    share = _alarm_share(profile, frame.iloc[:N])
    assert 0.01 < share <= 0.02  # calibrated to the 2 % rule, not switched off
    assert profile.alarm_rate == pytest.approx(share)
    # an AR(1) window's PSI is noisy: the limits sit far above the common 0.25 reading
    assert all(fp.psi_limit > 0.5 for fp in profile.features.values())


def test_more_of_the_same_series_rarely_alarms_and_a_shift_does(fitted) -> None:  # noqa: ANN001
    frame, profile = fitted
    # the bins and shares are estimated on the training sample, so fresh bars of the same law
    # read a little further off (measured 2.5 %); far from the fifth of the bars of issue 18
    assert _alarm_share(profile, frame.iloc[N:]) <= 0.04
    assert _alarm_share(profile, frame.iloc[N:], shift=1.0) >= 0.8


def test_a_shifted_input_is_a_drift_reason_and_not_a_fail_safe_one(fitted) -> None:  # noqa: ANN001
    frame, profile = fitted
    recent = frame.iloc[N:N + WINDOW].copy()
    now = recent.index[-1] + pd.Timedelta("1h")
    calm = health("X", recent, profile, pd.DataFrame(columns=["dataset", "venue", "symbol",
                  "interval", "last", "age_s", "max_age_s"]), CFG, now)
    recent["a"] += 3.0
    shifted = health("X", recent, profile, calm.sources, CFG, now)
    assert "a" in shifted.drifted
    assert shifted.drift_reasons and shifted.drift_reasons[0].startswith("input a (unknown) "
                                                                         "has drifted")
    assert shifted.fail_safe_reasons == [] and shifted.degrade_reasons == shifted.drift_reasons
