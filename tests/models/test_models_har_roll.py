"""The strong HAR (rolling window, frequent refits): purged refits, the window chosen on
training rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from cascade_ml.models.baselines import HAR, RollingHAR, volatility_baselines
from cascade_ml.models.config import HarRollConfig, ModelConfig

H = 24


def table(n: int, seed: int = 0, break_at: int | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """HAR inputs and an H-bar variance label following log y = c + b log(rv_24h / 24) + noise,
    with (c, b) switching from (-1, 0.2) to (1, 1.0) at ``break_at``."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2020-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    d = rng.normal(-9.0, 0.6, n)
    feats = pd.DataFrame({"rv_24h": np.exp(d) * 24, "rv_168h": np.exp(rng.normal(-9, .3, n)) * 168,
                          "rv_720h": np.exp(rng.normal(-9, .2, n)) * 720}, index=idx)
    c = np.where(np.arange(n) < (break_at or n), -1.0, 1.0)
    b = np.where(np.arange(n) < (break_at or n), 0.2, 1.0)
    y = pd.Series(np.exp(c + b * d + rng.normal(0, 0.3, n)), index=idx, name="fwd_rv")
    return feats, y


def test_a_label_not_complete_at_the_refit_is_never_used() -> None:
    """One refit at the first test row tau: the label of row tau - 23 bars (its window ends
    after tau) may be anything; the label of row tau - 24 bars (closed exactly at tau) is used,
    so changing it changes the forecast (the test could fail)."""
    feats, y = table(2000)
    train, test = feats.index[:1500], feats.index[1500:1600]
    tau = test[0]
    model = RollingHAR(H, windows=(720,), refit_every=1000)
    base = model.fit(feats, y, train).predict(feats, test)
    late = y.copy()
    late.loc[tau - pd.Timedelta(hours=H - 1):tau] = 1e3  # incomplete at tau: 24 rows
    assert np.array_equal(RollingHAR(H, (720,), 1000).fit(feats, late, train)
                          .predict(feats, test), base)
    public = y.copy()
    public.loc[tau - pd.Timedelta(hours=H)] = 1e3  # its window (s, s+H] closed at tau
    moved = RollingHAR(H, (720,), 1000).fit(feats, public, train).predict(feats, test)
    assert not np.allclose(moved, base)


def test_refits_inside_the_test_span_learn_outcomes_once_public() -> None:
    """refit_every=24: the first block (tau .. tau+23) cannot see the label of test row tau
    (public at tau + 24 bars); the second block, refitted at tau + 24, does."""
    feats, y = table(2000, seed=1)
    train, test = feats.index[:1500], feats.index[1500:1600]
    base = RollingHAR(H, (720,), 24).fit(feats, y, train).predict(feats, test)
    shocked = y.copy()
    shocked.loc[test[0]] = 1e3
    out = RollingHAR(H, (720,), 24).fit(feats, shocked, train).predict(feats, test)
    assert np.array_equal(out[:24], base[:24])
    assert not np.allclose(out[24:48], base[24:48])


def test_the_rolling_fit_matches_ols_on_its_window_by_hand() -> None:
    """The forecast of the first test row = exp(x' beta) * mean(exp(residual)) of an OLS on
    exactly the 720 rows whose labels closed by then (rows 1500-24-720+1 .. 1500-24)."""
    feats, y = table(2000, seed=2)
    train, test = feats.index[:1500], feats.index[1500:1501]
    got = RollingHAR(H, (720,), 24).fit(feats, y, train).predict(feats, test)
    rows = feats.index[1500 - H - 720 + 1:1500 - H + 1]
    ref = HAR(H).fit(feats, y, rows).predict(feats, test)
    assert got == pytest.approx(ref, rel=1e-12)


def test_the_window_is_chosen_on_training_rows_only() -> None:
    """A break 2000 rows before the end of training: the shortest window adapts and wins. Labels
    of the rows after training (a final period) rewritten to any value change neither the
    choice nor the coefficients of the fit at the end of training."""
    feats, y = table(9000, seed=3, break_at=5000)
    train = feats.index[:7000]
    model = RollingHAR(H, (720, 4320, 0), 24).fit(feats, y, train)
    assert model.window_ == 720
    assert model.losses_[720] < model.losses_[4320] < model.losses_[0]
    final = y.copy()
    final.iloc[7000:] = np.exp(-1.0 + 0.2 * np.log(feats["rv_24h"].iloc[7000:] / 24))
    again = RollingHAR(H, (720, 4320, 0), 24).fit(feats, final, train)
    assert again.window_ == 720 and again.losses_ == model.losses_
    assert np.array_equal(again.coef_, model.coef_)
    stationary = RollingHAR(H, (720, 4320, 0), 24).fit(*table(9000, seed=3)[:2], train)
    assert stationary.window_ != 720  # without a break the long windows are not worse


def test_config_keys_reach_the_baseline() -> None:
    cfg = ModelConfig(har_roll={"windows": [2160, 0], "refit_every": 12, "select_frac": 0.25})
    base = volatility_baselines(H, har_roll=cfg.har_roll)["har_roll"]
    assert (base.windows, base.refit_every, base.select_frac) == ((2160, 0), 12, 0.25)
    assert volatility_baselines(H)["har_roll"].windows == (720, 2160, 4320, 8760, 0)
    with pytest.raises(ValidationError, match="0 .expanding. or >= 24"):
        HarRollConfig(windows=[12])
