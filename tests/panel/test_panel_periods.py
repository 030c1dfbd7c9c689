"""An explicit final-period start and a held-out period inside the history (issue 17 item 2).

The held-out period's rows must reach no choice: the test gives them a huge label shift and shows
every fold's choices (linear panel, shrinkage, HAR weights, adverse multipliers, cascade
stacking, Optuna's data) and every other fold's forecasts are identical with and without it,
while the same shift does move the choices when the period is not held out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from panel_data import REPO

from cascade_ml.compute import Engine
from cascade_ml.errors import ConfigError
from cascade_ml.models.splits import holdout_exclusion, in_period
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.dataset import Panel
from cascade_ml.panel.evaluate import evaluate_panel, time_folds
from cascade_ml.panel.fold import fold_masks, run_fold, usable
from cascade_ml.panel.report import periods, score_panel
from cascade_ml.panel.tune import tuning_data

HOUR = pd.Timedelta("1h")
H = 24
FINAL_START = pd.Timestamp("2026-03-01", tz="UTC")
CRASH = {"name": "crash", "start": "2025-09-01", "end": "2025-10-01"}


def with_periods(cfg: PanelConfig, **update) -> PanelConfig:
    """``cfg`` with ``update`` applied through validation (as a pipeline file would be)."""
    return PanelConfig(**{**cfg.model_dump(), **update})


@pytest.fixture(scope="module")
def cfg(panel_cfg) -> PanelConfig:
    return with_periods(panel_cfg, final_start="2026-03-01", holdout_periods=[CRASH])


def shifted(panel: Panel, cfg: PanelConfig) -> Panel:
    """The same panel with wildly wrong outcomes inside the held-out period."""
    frame = panel.frame.copy()
    inside = in_period(frame["timestamp"], cfg.holdout_periods[0])
    assert inside.sum() > 1000
    frame.loc[inside, "y"] += 3.0
    frame.loc[inside, "fwd_rv"] *= np.exp(3.0)
    frame.loc[inside, "adverse"] *= 4.0
    frame.loc[inside, "cascade"] = 1.0 - frame.loc[inside, "cascade"]
    return Panel(frame, panel.inputs, panel.horizon, panel.symbols)


@pytest.fixture(scope="module")
def runs(small_panel, cfg):
    """The whole evaluation on the panel and on its shifted copy."""
    return (evaluate_panel(Engine(), small_panel, cfg, bar=HOUR),
            evaluate_panel(Engine(), shifted(small_panel, cfg), cfg, bar=HOUR))


def test_final_start_is_the_first_final_bar_and_the_frac_path_is_unchanged(small_panel, cfg,
                                                                            panel_cfg):
    folds = time_folds(small_panel, cfg, HOUR)
    final = folds[-1]
    assert final.k == 2 and final.test_start == FINAL_START  # small_panel_config: 2 folds
    _, test = fold_masks(small_panel.frame, final, cfg, H, HOUR)
    times = small_panel.frame["timestamp"]
    assert times[test].min() == FINAL_START
    before = small_panel.frame.loc[times < FINAL_START, "timestamp"].max()
    assert before == FINAL_START - HOUR  # the bar just before is development time ...
    assert final.train_end == FINAL_START - H * HOUR  # ... purged by H bars
    # without final_start the last 15 % of the calendar (usable times), as before
    calendar = np.sort(times[usable(small_panel.frame)].unique())
    plain = time_folds(small_panel, panel_cfg, HOUR)[-1]
    assert plain.test_start == calendar[len(calendar) - int(round(len(calendar) * 0.15))]
    assert [f.k for f in time_folds(small_panel, panel_cfg, HOUR)] == [0, 1, 2]


def test_holdout_is_its_own_fold_and_in_no_other_training_or_test_rows(small_panel, cfg):
    folds = time_folds(small_panel, cfg, HOUR)
    assert [f.k for f in folds] == [-1, 0, 1, 2]
    frame, held = small_panel.frame, folds[0]
    assert held.period == "crash"
    assert held.test_start == pd.Timestamp("2025-09-01", tz="UTC")
    assert held.test_end == pd.Timestamp("2025-09-30 23:00", tz="UTC")
    assert held.train_end + H * HOUR <= held.test_start
    zone = holdout_exclusion(frame["timestamp"], cfg.holdout_periods, H, HOUR)
    assert frame.loc[zone, "timestamp"].min() == pd.Timestamp("2025-08-31 01:00", tz="UTC")
    assert frame.loc[zone, "timestamp"].max() == pd.Timestamp("2025-10-01 23:00", tz="UTC")
    for fold in folds:
        for everyone in (False, True):
            train, test = fold_masks(frame, fold, cfg, H, HOUR, all_symbols=everyone)
            assert not (train & zone).any()
            assert (test & zone).any() == (fold.k < 0)
    _, test = fold_masks(frame, held, cfg, H, HOUR)
    inside = in_period(frame["timestamp"], cfg.holdout_periods[0]) & usable(frame)
    assert test.equals(inside)


def test_holdout_outcomes_reach_no_choice(runs, cfg, small_panel):
    base, moved = runs
    for a, b in zip(base.choices, moved.choices, strict=True):
        assert a["fold"] == b["fold"]
        for key in ("linear", "shrink", "val_qlike", "har_weight", "har_weights",
                    "multipliers", "cascade_stack", "train_rows", "val_start"):
            assert a[key] == b[key], (a["fold"], key)
    # the forecasts of every row, held-out ones included, are the same
    for col in ("var_forecast", "cascade_prob", "adv_q99", "var_har"):
        np.testing.assert_allclose(moved.oos[col], base.oos[col], rtol=1e-12, err_msg=col)
    # nor does Optuna's data move
    folds = time_folds(small_panel, cfg, HOUR)
    t0 = tuning_data(small_panel, cfg, folds, HOUR, max_rows=500)
    t1 = tuning_data(shifted(small_panel, cfg), cfg, folds, HOUR, max_rows=500)
    assert sorted(t0) == [0, 1]
    for k in t0:
        for name, arr in t0[k].items():
            np.testing.assert_array_equal(arr, t1[k][name], err_msg=f"{k} {name}")


def test_the_same_shift_moves_choices_when_the_period_is_not_held_out(small_panel, panel_cfg,
                                                                     cfg):
    """The check above could fail: without holdout_periods the shifted rows are in fold 1's
    training span and change what is chosen there."""
    plain = with_periods(panel_cfg, final_start="2026-03-01")
    fold = [f for f in time_folds(small_panel, plain, HOUR) if f.k == 1][0]
    assert fold.train_end > pd.Timestamp("2025-10-01", tz="UTC")
    _, a = run_fold(fold, small_panel.frame, small_panel.inputs, plain, H, bar=HOUR)
    _, b = run_fold(fold, shifted(small_panel, cfg).frame, small_panel.inputs, plain, H,
                    bar=HOUR)
    assert a["multipliers"] != b["multipliers"] or a["shrink"] != b["shrink"] \
        or a["val_qlike"] != b["val_qlike"]


def test_holdout_is_reported_beside_the_final_period(runs, cfg, small_panel):
    doc = score_panel(runs[0].oos, small_panel.frame, cfg, H)
    assert periods(doc) == ["walk_forward", "final", "crash"]
    assert doc["holdout_periods"] == [{"name": "crash", "start": "2025-09-01T00:00:00+00:00",
                                       "end": "2025-10-01T00:00:00+00:00"}]
    for group in ("universe", "core", "left_out"):
        assert doc["panel"]["crash"][group]["symbols"] >= 1
    block = doc["per_symbol"]["BTC"]["crash"]
    assert block["start"] >= "2025-09-01" and block["end"] < "2025-10-01"
    assert "qlike_ratio_vs_best" in block["volatility"]
    oos = runs[0].oos
    zone = holdout_exclusion(oos["timestamp"], cfg.holdout_periods, H, HOUR)
    assert set(oos.loc[zone, "fold"]) == {-1}  # scored once, by its own fold only


def test_bad_periods_are_config_errors(small_panel, panel_cfg):
    with pytest.raises(ConfigError, match="empty final period"):
        time_folds(small_panel, with_periods(panel_cfg, final_start="2027-01-01"), HOUR)
    with pytest.raises(ConfigError, match="development rows"):
        time_folds(small_panel, with_periods(panel_cfg, final_start="2025-04-03"), HOUR)
    early = {"name": "early", "start": "2025-04-01", "end": "2025-05-01"}
    with pytest.raises(ConfigError, match="bars before it"):
        time_folds(small_panel, with_periods(panel_cfg, holdout_periods=[early]), HOUR)
    with pytest.raises(ValueError, match="after final_start"):
        with_periods(panel_cfg, final_start="2025-09-15", holdout_periods=[CRASH])
    with pytest.raises(ValueError, match="cannot be called"):
        with_periods(panel_cfg, holdout_periods=[{**CRASH, "name": "final"}])


def test_pipeline_file_dates_are_validated_by_name(tmp_path):
    from cascade_ml.config import load_pipeline

    text = (REPO / "pipelines" / "universe.yaml").read_text()
    config = load_pipeline(REPO / "pipelines" / "universe.yaml")
    assert config.panel.final_start == pd.Timestamp("2025-11-09 12:00", tz="UTC")
    assert [(p.name, p.start.year, p.end.year) for p in config.panel.holdout_periods] == [
        ("crash_2022", 2022, 2023)]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("final_start: 2025-11-09T12:00:00Z", "final_start: 2025-13-40"))
    with pytest.raises(ConfigError, match="month must be in 1..12"):
        load_pipeline(bad)
    bad.write_text(text.replace("final_start: 2025-11-09T12:00:00Z", "final_start: '18 Nov'"))
    with pytest.raises(ConfigError, match="final_start.*not an ISO date"):
        load_pipeline(bad)
    bad.write_text(text.replace("end: 2023-01-01", "end: 2021-06-01"))
    with pytest.raises(ConfigError, match="end .* is not after start"):
        load_pipeline(bad)


def test_train_serves_the_final_fold_and_reports_the_holdout(tmp_path, small_panel, cfg):
    import json

    from cascade_ml.contracts.layout import panel_path, predictions_path
    from cascade_ml.contracts.task import TaskConfig
    from cascade_ml.data.store import MarketStore
    from cascade_ml.panel.run import train_panel

    store = MarketStore(tmp_path / "store")
    frame = small_panel.frame[small_panel.frame["timestamp"]
                              >= pd.Timestamp("2025-06-01", tz="UTC")]
    store.write_table(panel_path(24), frame, {"kind": "panel", "horizon": 24})
    run_cfg = with_periods(cfg, n_folds=1, bundle_dir=tmp_path / "bundle",
                           report_dir=tmp_path / "reports")
    doc = train_panel(Engine(), store, TaskConfig(symbols=list(small_panel.symbols)), run_cfg)
    assert [f["fold"] for f in doc["folds"]] == [-1, 0, 1]
    meta = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert set(meta["metrics"]) == {"final", "walk_forward", "crash"}
    assert meta["metrics"]["crash"] == doc["panel"]["crash"]["universe"]["median_qlike_ratio"]
    saved = json.loads((tmp_path / "reports" / "evaluation.json").read_text())
    assert "crash" in saved["panel"] and "crash" in saved["per_symbol"]["NEAR"]
    # the served models are the final fold's: trained up to H bars before final_start
    start, end = meta["training_span"]
    assert pd.Timestamp(end) == FINAL_START - H * HOUR
    preds = store.read_table(predictions_path("NEAR", 24))
    assert set(preds["fold"]) == {-1, 0, 1}
    crash = preds.index[preds["fold"] == -1]
    assert crash.min() == pd.Timestamp("2025-09-01", tz="UTC")
