"""The pooled strong HAR (``panel_har_roll``): refits read only closed labels, a forecast at t
moves with no later row, the fit is the OLS of its window by hand, and the window is chosen on
the validation slice (the final period's outcomes never decide it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.estimators import RollingPanelHAR
from cascade_ml.panel.evaluate import time_folds
from cascade_ml.panel.fold import fit_fold

H = 24
HOUR = pd.Timedelta("1h")


def pooled(n: int, symbols: tuple[str, ...] = ("A", "B"), seed: int = 0) -> pd.DataFrame:
    """Pooled rows: y = -0.5 + 0.6 d + 0.2 w + 0.1 m + noise, same law for every symbol."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, sym in enumerate(symbols):
        ts = pd.date_range("2021-01-01", periods=n, freq="1h", tz="UTC")
        d, w, m = rng.normal(0, .5, n), rng.normal(0, .3, n), rng.normal(0, .2, n)
        y = -0.5 + 0.6 * d + 0.2 * w + 0.1 * m + rng.normal(0, .3, n) + 0.05 * i
        parts.append(pd.DataFrame({"symbol": sym, "timestamp": ts, "d": d, "w": w, "m": m,
                                   "y": y, "lvl": rng.normal(-9, .1, n)}))
    return with_rv(pd.concat(parts, ignore_index=True))


def with_rv(frame: pd.DataFrame) -> pd.DataFrame:
    """The H-bar variance the standardised label stands for: exp(y + lvl) * H."""
    return frame.assign(fwd_rv=np.exp(frame["y"] + frame["lvl"]) * H)


def test_a_forecast_at_t_moves_with_no_row_after_it() -> None:
    """Forecasts of rows up to hour 1200, then the same with 400 more hours appended to the
    source and the targets: the earlier forecasts are unchanged (to float rounding)."""
    frame = pooled(1600)
    early = frame[frame["timestamp"] < pd.Timestamp("2021-01-01", tz="UTC") + 1200 * HOUR]
    target = early[early["timestamp"] >= pd.Timestamp("2021-01-01", tz="UTC") + 900 * HOUR]
    roll = RollingPanelHAR(H, HOUR, refit_every=24, min_rows=50)
    before = roll.forecast(early, target, 480)
    full_target = frame[frame["timestamp"] >= target["timestamp"].min()]
    after = roll.forecast(frame, full_target, 480)
    assert np.isfinite(before).all()
    same = pd.Series(after, index=full_target.index).loc[target.index].to_numpy()
    np.testing.assert_allclose(same, before, rtol=1e-12, atol=0)  # float summation order only


def test_a_label_is_read_once_closed_and_never_before() -> None:
    """One refit at tau (refit_every longer than the target span): the label of a row at
    tau - 23 h (window ends after tau) may be anything; that of a row at tau - 24 h (closed at
    tau) moves the forecast, so the test could fail."""
    frame = pooled(1200, seed=1)
    tau = pd.Timestamp("2021-01-01", tz="UTC") + 1000 * HOUR
    target = frame[frame["timestamp"] >= tau]
    roll = RollingPanelHAR(H, HOUR, refit_every=10_000, min_rows=50)
    base = roll.forecast(frame, target, 0)
    late = frame.copy()
    late.loc[late["timestamp"] == tau - (H - 1) * HOUR, "y"] = 50.0
    assert np.array_equal(roll.forecast(late, target, 0), base)
    public = frame.copy()
    public.loc[public["timestamp"] == tau - H * HOUR, "y"] = 50.0
    assert not np.allclose(roll.forecast(public, target, 0), base)


def test_the_refit_is_the_ols_of_its_window_by_hand() -> None:
    """The first target row's forecast = x'beta + log mean(exp(residual)) of an OLS of y on
    (1, d, w, m) over exactly the rows whose labels closed in (tau - 300 h, tau]."""
    frame = pooled(1000, seed=2)
    tau = pd.Timestamp("2021-01-01", tz="UTC") + 800 * HOUR
    target = frame[frame["timestamp"] == tau]
    got = RollingPanelHAR(H, HOUR, refit_every=24, min_rows=50).forecast(frame, target, 300)
    end = frame["timestamp"] + H * HOUR
    rows = frame[(end <= tau) & (end > tau - 300 * HOUR)]
    assert len(rows) == 2 * 300
    x = np.column_stack([np.ones(len(rows)), rows[["d", "w", "m"]].to_numpy()])
    beta, *_ = np.linalg.lstsq(x, rows["y"].to_numpy(), rcond=None)
    smear = np.mean(np.exp(rows["y"].to_numpy() - x @ beta))
    xt = np.column_stack([np.ones(len(target)), target[["d", "w", "m"]].to_numpy()])
    assert got == pytest.approx(xt @ beta + np.log(smear), rel=1e-10)


def test_a_break_is_followed_by_the_short_window() -> None:
    """The law changes 600 h before the selection rows: the 240 h window adapts and wins over
    the expanding one (the choice is made on what it is given)."""
    frame = pooled(3000, seed=3)
    t0 = pd.Timestamp("2021-01-01", tz="UTC")
    late = frame["timestamp"] >= t0 + 2000 * HOUR
    frame.loc[late, "y"] = 1.5 + 1.2 * frame.loc[late, "d"]
    frame = with_rv(frame)
    select = frame[frame["timestamp"] >= t0 + 2600 * HOUR]
    roll = RollingPanelHAR(H, HOUR, windows=(0, 240), min_rows=50).choose(frame, select)
    assert roll.window_ == 240
    assert roll.losses_[240] < roll.losses_[0]


def test_the_final_periods_outcomes_never_choose_the_window(small_panel, panel_cfg):
    """The final fold's window (and its validation losses) with the final period's labels
    multiplied by 20: unchanged; the forecasts of those rows are still made (finite)."""
    cfg = panel_cfg.model_copy(update={"baselines": [*panel_cfg.baselines, "panel_har_roll"],
                                       "har_roll": panel_cfg.har_roll.model_copy(
                                           update={"windows": [720, 2160, 0]})})
    fold = time_folds(small_panel, cfg, HOUR)[-1]
    a = fit_fold(fold, small_panel.frame, small_panel.inputs, cfg, H, HOUR)
    frame = small_panel.frame.copy()
    final = frame["timestamp"] >= fold.test_start
    frame.loc[final, "fwd_rv"] *= 20
    frame.loc[final, "y"] += np.log(20)
    b = fit_fold(fold, frame, small_panel.inputs, cfg, H, HOUR)
    assert a.choices["panel_har_roll"] == b.choices["panel_har_roll"]
    assert a.choices["panel_har_roll"]["window"] in (720, 2160, 0)
    assert np.isfinite(a.out["var_panel_har_roll"]).mean() > 0.9


def test_unknown_baseline_is_refused_by_name():
    with pytest.raises(ValueError, match="panel_har_rol"):
        PanelConfig(baselines=["har", "panel_har_rol"])
