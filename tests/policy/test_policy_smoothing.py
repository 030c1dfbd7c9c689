"""The smoothed log-vol forecast (rules.smooth_log_vol): by hand, monotone, no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cascade_ml.policy import rules


def test_half_life_one_bar_halves_the_step_in_logs() -> None:
    # half-life 1: weight 1/2 on the new log vol; exp((ln 1 + ln 4) / 2) = 2, then
    # exp((ln 2 + ln 4) / 2) = sqrt(8)
    out = rules.smooth_log_vol(np.array([1.0, 4.0, 4.0]), 1.0)
    assert out.tolist() == pytest.approx([1.0, 2.0, math.sqrt(8.0)])


def test_half_life_zero_is_the_forecast_and_missing_values_pass_through() -> None:
    s = np.array([0.02, np.nan, 0.08, -1.0, 0.08])
    assert np.array_equal(rules.smooth_log_vol(s, 0.0), s, equal_nan=True)
    out = rules.smooth_log_vol(s, 1.0)
    assert math.isnan(out[1]) and out[3] == -1.0  # not averaged, not averaged into the rest
    assert out[2] == pytest.approx(0.04)  # exp((ln 0.02 + ln 0.08) / 2): the NaN is skipped
    assert out[4] == pytest.approx(math.exp((math.log(0.04) + math.log(0.08)) / 2))


def test_monotone_in_every_input_and_blind_to_the_future() -> None:
    rng = np.random.default_rng(3)
    s = rng.uniform(0.01, 0.1, 200)
    base = rules.smooth_log_vol(s, 24.0)
    for k in (0, 57, 199):
        up = s.copy()
        up[k] *= 1.5
        moved = rules.smooth_log_vol(up, 24.0)
        assert (moved >= base - 1e-15).all()  # raising one forecast never lowers any output
        assert np.array_equal(moved[:k], base[:k])  # nor changes an output before it
        assert moved[k] > base[k]
