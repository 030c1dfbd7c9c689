"""PSI: the reading on known cases, NaN and ties, and the training-window envelope."""

from __future__ import annotations

import numpy as np
import pytest

from cascade_ml.errors import CascadeError
from cascade_ml.monitoring.psi import (
    bin_shares,
    psi,
    psi_detail,
    psi_from_shares,
    quantile_cuts,
    reading,
    rolling_psis,
)

RNG = np.random.default_rng(7)
REF = RNG.normal(size=20_000)


def test_identical_samples_read_stable():
    assert psi(REF, REF) == pytest.approx(0.0, abs=1e-12)
    fresh = np.random.default_rng(8).normal(size=5_000)  # same law, other draw
    assert psi(REF, fresh) < 0.01
    assert reading(psi(REF, fresh)) == "stable"


def test_shifted_normal_reads_shifted_and_grows_with_the_shift():
    base = np.random.default_rng(9).normal(size=5_000)
    values = [psi(REF, base + shift) for shift in (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)]
    assert values[-2] > 0.25 and reading(values[-2]) == "shifted"
    assert all(b > a for a, b in zip(values, values[1:], strict=False)), values
    scale = [psi(REF, base * k) for k in (1.0, 1.5, 2.0, 5.0)]
    assert all(b > a for a, b in zip(scale, scale[1:], strict=False)), scale


def test_hand_computed_value():
    ref = np.arange(1.0, 11.0)  # ten values, two bins: <= 5.5 and above
    cur = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    cuts = quantile_cuts(ref, 2)
    assert cuts.tolist() == [5.5]
    # shares: ref (0.5, 0.5), cur (5/8, 3/8)
    expected = (0.625 - 0.5) * np.log(0.625 / 0.5) + (0.375 - 0.5) * np.log(0.375 / 0.5)
    assert psi(ref, cur, bins=2) == pytest.approx(expected)


def test_nan_values_are_left_out_and_reported_apart():
    cur = REF[:4000].copy()
    cur[:1000] = np.nan
    detail = psi_detail(REF, cur)
    assert detail.current_nan_share == pytest.approx(0.25)
    assert detail.reference_nan_share == 0.0
    assert detail.current_rows == 3000
    assert detail.psi == pytest.approx(psi(REF, REF[1000:4000]))
    assert np.isnan(psi(REF, np.full(10, np.nan)))  # nothing to compare
    assert np.isnan(psi(np.full(10, np.nan), REF))


def test_constant_and_binary_columns_get_merged_bins():
    const = np.full(1000, 3.0)
    assert quantile_cuts(const, 10).tolist() == [3.0]
    assert psi(const, np.full(50, 3.0)) == pytest.approx(0.0)
    assert psi(const, np.full(50, 4.0)) > 5  # all mass where the reference never was
    binary = np.r_[np.zeros(900), np.ones(100)]
    assert psi(binary, np.r_[np.zeros(90), np.ones(10)]) == pytest.approx(0.0)
    assert psi(binary, np.r_[np.zeros(50), np.ones(50)]) > 0.25


def test_bins_below_two_are_refused():
    with pytest.raises(CascadeError, match="at least 2 bins"):
        psi(REF, REF, bins=1)


def test_rolling_psis_match_one_window_at_a_time():
    x = np.cumsum(RNG.normal(size=1000))  # a slow, autocorrelated series
    x[::17] = np.nan
    x[500:560] = np.nan  # a gap: windows with fewer than 50 finite values are not judged
    cuts = quantile_cuts(x, 10)
    shares, _ = bin_shares(x, cuts)
    got = rolling_psis(x, cuts, shares, window=100, min_rows=50)
    assert len(got) == 901  # one per row from the first full window (row 99) on
    for end in (99, 100, 350, 560, 620, 999):
        w = x[end - 99:end + 1]
        finite = int(np.isfinite(w).sum())
        want = (float(psi_from_shares(shares, bin_shares(w, cuts)[0])) if finite >= 50
                else np.nan)
        assert got[end - 99] == pytest.approx(want, nan_ok=True), end
    assert np.isnan(got[560 - 99])  # 100 rows ending at 560: 60 in the gap, 40 left
    # an autocorrelated series is "shifted" in most of its own windows: why the limit is
    # calibrated on the training span's own windows
    assert np.nanmedian(got) > 0.25
    assert len(rolling_psis(x[:99], cuts, shares, window=100, min_rows=50)) == 0
