"""Leave-symbols-out and purged time splits; the bundle reproduces the fold's forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.contracts.task import TaskConfig
from cascade_ml.models.config import HarRollConfig
from cascade_ml.panel.bundle import export_panel_bundle, is_panel_bundle, load_panel_bundle
from cascade_ml.panel.evaluate import time_folds
from cascade_ml.panel.fold import (
    Fold,
    _split_val,
    fit_fold,
    fold_masks,
    min_symbol_rows,
    run_fold,
)
from cascade_ml.panel.report import score_panel
from cascade_ml.panel.run import symbol_har

HOUR = pd.Timedelta("1h")


@pytest.fixture(scope="module")
def final_fold(small_panel, panel_cfg):
    folds = time_folds(small_panel, panel_cfg)
    return folds[-1]


@pytest.fixture(scope="module")
def fold_run(small_panel, panel_cfg, final_fold):
    return run_fold(final_fold, small_panel.frame, small_panel.inputs, panel_cfg, 24,
                    keep=True, bar=HOUR)


def test_folds_are_ordered_and_purged(small_panel, panel_cfg):
    folds = time_folds(small_panel, panel_cfg)
    assert len(folds) == 2 + 1  # small_panel_config: 2 folds, then the final period
    frame = small_panel.frame
    for fold in folds:
        train, test = fold_masks(frame, fold, panel_cfg, 24, HOUR)
        assert "ADA" not in set(frame.loc[train, "symbol"])  # the left-out symbol never trains
        assert "ADA" in set(frame.loc[test, "symbol"])       # ... but is scored
        last_label = frame.loc[train, "timestamp"].max() + pd.Timedelta(hours=24)
        assert last_label <= frame.loc[test, "timestamp"].min()
    assert all(a.test_end < b.test_start for a, b in zip(folds, folds[1:], strict=False))


def test_held_out_labels_cannot_move_panel_forecasts(small_panel, panel_cfg, final_fold,
                                                     fold_run):
    frame = small_panel.frame.copy()
    ada = frame["symbol"] == "ADA"
    frame.loc[ada, "y"] = frame.loc[ada, "y"] + 3.0        # wildly wrong held-out outcomes
    frame.loc[ada, "cascade"] = 1.0 - frame.loc[ada, "cascade"]
    out, _ = run_fold(final_fold, frame, small_panel.inputs, panel_cfg, 24, bar=HOUR)
    base = fold_run[0]
    for col in ("var_panel", "var_panel_har", "prob_lgbm", "prob_logistic"):
        np.testing.assert_allclose(out[col], base[col], rtol=1e-10, err_msg=col)
    # nor the core symbols' HAR weights, adverse multipliers and cascade stacking
    core = (out["symbol"] != "ADA").to_numpy()
    for col in ("var_forecast", "adv_q99", "cascade_prob"):
        np.testing.assert_allclose(out.loc[core, col], base.loc[core, col], rtol=1e-10,
                                   err_msg=col)


def test_bundle_reproduces_the_fold(tmp_path, small_panel, panel_cfg, final_fold, fold_run):
    out, choices = fold_run
    state = choices.pop("state")
    path = export_panel_bundle(tmp_path / "panel", state, choices, version="t1",
                               symbols=small_panel.symbols, horizon=24, interval="1h",
                               side="long",
                               inputs=small_panel.inputs, cold_start_days=30,
                               symbol_har=symbol_har(small_panel, final_fold.train_end),
                               metrics={})
    choices["state"] = state
    assert is_panel_bundle(path)
    bundle = load_panel_bundle(path)
    assert bundle.symbols == small_panel.symbols and bundle.serves("ADA")
    rows = small_panel.frame.loc[out.index]
    x = rows.reindex(columns=bundle.feature_names).to_numpy(float)
    pred = bundle.predict(x)
    np.testing.assert_allclose(pred["var_forecast"], out["var_panel"], rtol=1e-5)
    near = (rows["symbol"] == "NEAR").to_numpy()
    own = bundle.for_symbol("NEAR").forecast(x[near])  # all keys, adverse quantiles included
    np.testing.assert_allclose(own["var_forecast"], out.loc[near, "var_forecast"], rtol=1e-5)
    np.testing.assert_allclose(own["cascade_prob"], out.loc[near, "cascade_prob"], rtol=1e-4)
    np.testing.assert_allclose(own["adverse_q99"], out.loc[near, "adv_q99"], rtol=1e-5)
    with pytest.raises(Exception, match="not served"):
        bundle.for_symbol("DOGE")


def test_report_keeps_per_symbol_keys(small_panel, panel_cfg, fold_run):
    out = fold_run[0]
    doc = score_panel(out, small_panel.frame, panel_cfg, 24)
    near = doc["per_symbol"]["NEAR"]["final"]
    assert near["volatility"]["model"]["qlike"] > 0
    assert set(near["volatility"]["baselines"]) == {"har", "ewma", "naive"}
    assert {"model", "baselines", "base_rate"} <= set(near["cascade"])
    assert 0.9 < near["adverse"]["q95"]["coverage_model"] <= 1.0
    assert doc["panel"]["final"]["left_out"]["symbols"] == 1
    assert doc["panel"]["final"]["mcs"]["included"]
    # a served forecast identical to the panel (every HAR weight 0) is reported, not a crash
    twin = score_panel(out.assign(var_forecast=out["var_panel"]), small_panel.frame, panel_cfg, 24)
    mcs = twin["panel"]["final"]["mcs"]
    assert mcs["same_as"] == {"panel": "forecast"}
    assert ("panel" in mcs["included"]) == ("forecast" in mcs["included"])


def test_purge_is_h_bars_of_the_task_interval(small_panel, panel_cfg):
    """On 4h bars the purge is 24 x 4h: a 1h assumption would leak label windows into the test."""
    frame = small_panel.frame.copy()
    t0 = frame["timestamp"].min()
    frame["timestamp"] = t0 + (frame["timestamp"] - t0) * 4  # the same rows as 4h bars
    bar = TaskConfig(symbols=["NEAR"], interval="4h").bar
    times = frame["timestamp"].drop_duplicates().sort_values().reset_index(drop=True)
    cut = len(times) // 2  # a fold whose training times run right up to its test window
    fold = Fold(0, times[cut - 1], times[cut], times[cut + 500])
    train, test = fold_masks(frame, fold, panel_cfg, 24, bar)
    label_end = frame.loc[train, "timestamp"].max() + 24 * bar
    assert label_end <= frame.loc[test, "timestamp"].min()
    early, val, val_start = _split_val(frame, train, panel_cfg, 24, bar)
    assert frame.loc[early, "timestamp"].max() + 24 * bar <= val_start
    hourly, _ = fold_masks(frame, fold, panel_cfg, 24, HOUR)
    leaked = frame.loc[hourly & ~train, "timestamp"] + 24 * bar
    assert len(leaked) == 18 * 4 and (leaked > fold.test_start).all()  # 18 bars x 4 core
    assert min_symbol_rows(panel_cfg, bar) == 180  # 30 days of 4h bars for a symbol's own HAR


def test_har_reference_har_roll_is_the_hars_the_blend_reads(small_panel, panel_cfg, final_fold):
    """panel.har_reference har_roll: the test rows' HAR in the blend is the rolling HAR
    (reported as var_har_roll beside the configured baselines), and it differs from the HAR
    refitted once per span."""
    cfg = panel_cfg.model_copy(update={"har_reference": "har_roll",
                                       "har_roll": HarRollConfig(windows=[720, 0])})
    fit = fit_fold(final_fold, small_panel.frame, small_panel.inputs, cfg, 24, HOUR)
    assert {"var_har", "var_har_roll"} <= set(fit.out.columns)
    warm = np.isfinite(fit.test["log_har"].to_numpy())
    assert warm.sum() > 1000
    np.testing.assert_allclose(fit.test["log_har"].to_numpy()[warm],
                               np.log(fit.out["var_har_roll"].to_numpy()[warm]), rtol=1e-12)
    assert not np.allclose(fit.out["var_har_roll"].to_numpy()[warm],
                           fit.out["var_har"].to_numpy()[warm])
