"""Walk-forward evaluation: same rows for everyone, out of sample, nothing fitted on test data."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import near_dataset

from cascade_ml.errors import CascadeError
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.estimators import CascadeClassifier
from cascade_ml.models.evaluate import fit_predict, make_models, walk_forward


@pytest.fixture(scope="module")
def result(near_small):
    cfg = ModelConfig(n_folds=3, lgbm={"n_estimators": 40, "num_leaves": 7,
                                       "min_child_samples": 20},
                      quantiles=[0.9], garch_window=800, num_threads=1)
    return walk_forward(near_small, cfg), cfg


def test_oos_frame_has_the_contract_columns_and_only_test_rows(result, near_small):
    res, cfg = result
    oos = res.oos
    for col in ("fold", "var_forecast", "vol_forecast", "var_q90", "cascade_prob", "var_ewma",
                "var_har", "var_garch", "var_naive", "prob_logistic", "prob_rules"):
        assert col in oos.columns
    assert oos.index.is_monotonic_increasing and oos.index.is_unique
    assert sorted(oos["fold"].unique()) == [0, 1, 2, 3]  # 3 walk-forward folds + final (3)
    assert oos.index.isin(near_small.rows).all()
    assert not oos.index.isin(near_small.rows[: int(len(res.dev_rows) * 0.4)]).any()
    assert np.allclose(oos["vol_forecast"] ** 2, oos["var_forecast"])
    assert (oos["var_forecast"] > 0).all() and oos["cascade_prob"].between(0, 1).all()
    assert oos.notna().all().all()
    assert len(res.final_rows) == oos["fold"].eq(3).sum()


def test_metrics_cover_model_and_every_baseline(result):
    res, _ = result
    wf = res.metrics["walk_forward"]
    assert set(wf["volatility"]["baselines"]) >= {"ewma", "har", "garch", "naive"}
    assert 0 <= wf["volatility"]["dm_pvalue_vs_best"] <= 1
    assert set(wf["cascade"]["baselines"]) == {"logistic", "rules", "climatology"}
    assert wf["cascade"]["baselines"]["climatology"]["bss"] == pytest.approx(0)
    assert len(res.metrics["folds"]) == 3
    assert res.metrics["final"]["rows"] == len(res.final_rows)


def test_test_labels_never_reach_any_fitted_part(near_small):
    """Flip every test label: no test prediction (models, calibration, baselines) changes, except
    the rolling HAR's after its first refit inside the test span: it re-estimates every 24 rows
    on the labels public by then (tests/models/test_models_har_roll.py), so its first 24
    forecasts are unchanged and the later ones learn from the flipped outcomes."""
    ds = near_small
    cfg = ModelConfig(n_folds=2, lgbm={"n_estimators": 30, "num_leaves": 7}, quantiles=[],
                      garch_window=500, num_threads=1)
    train, test = ds.rows[:1800], ds.rows[1824:2200]
    a, _, clf = fit_predict(ds, train, test, cfg)
    saved = ds.labels.copy()
    try:
        ds.labels.loc[test, "cascade"] = 1 - ds.labels.loc[test, "cascade"]
        ds.labels.loc[test, "fwd_rv"] = ds.labels.loc[test, "fwd_rv"] * 10
        b, _, _ = fit_predict(ds, train, test, cfg)
    finally:
        ds.labels = saved
    roll = "var_har_roll"
    assert np.allclose(a.drop(columns=roll).to_numpy(), b.drop(columns=roll).to_numpy())
    assert np.array_equal(a[roll].to_numpy()[:24], b[roll].to_numpy()[:24])
    assert not np.allclose(a[roll].to_numpy()[48:], b[roll].to_numpy()[48:])
    # the calibrator saw only the last rows of the training window, after a gap of H rows
    assert clf.calibration_.method == "platt"  # the default calibration map
    assert clf.calibration_rows_.max() == len(train) - 1
    assert clf.calibration_rows_.min() >= int(len(train) * 0.8) - 1


def test_calibration_fits_on_a_later_slice_of_training_rows(near_small):
    X = near_small.X()[:2000]
    y = near_small.labels.loc[near_small.rows[:2000], "cascade"].to_numpy(int)
    clf = CascadeClassifier(lgbm={"n_estimators": 30}, calibration="platt", calib_gap=24,
                            n_jobs=1).fit(X, y)
    assert clf.calibration_.method == "platt"
    assert clf.calibration_rows_[0] == 1600
    p = clf.predict_proba(X)[:, 1]
    assert abs(p.mean() - y[1600:].mean()) < 0.05  # calibrated toward observed frequencies


def test_too_little_data_is_a_clear_error():
    ds = near_dataset(1000)  # 720-bar warm-up leaves ~250 usable rows
    with pytest.raises(CascadeError, match="usable rows"):
        walk_forward(ds, ModelConfig(num_threads=1))


def test_deterministic(near_small):
    cfg = ModelConfig(n_folds=1, lgbm={"n_estimators": 20}, quantiles=[], num_threads=2)
    train, test = near_small.rows[:1500], near_small.rows[1530:1700]
    a, _, _ = fit_predict(near_small, train, test, cfg, baselines=False)
    b, _, _ = fit_predict(near_small, train, test, cfg, baselines=False)
    assert np.array_equal(a.to_numpy(), b.to_numpy())


def test_cascade_classifier_uses_only_its_feature_set(near_small):
    X = near_small.X()[:2000]
    y = near_small.labels.loc[near_small.rows[:2000], "cascade"].to_numpy(int)
    clf = CascadeClassifier(lgbm={"n_estimators": 30}, calib_gap=24, features=(0, 3),
                            n_jobs=1).fit(X, y)
    gain = clf.forecast_.booster.feature_importance("split")
    assert set(np.flatnonzero(gain)) <= {0, 3} and gain.sum() > 0
    assert not clf.used_features_[[1, 2]].any()


def test_volatility_shrink_is_chosen_on_training_rows_and_bounded(near_small):
    ds = near_small
    cfg = ModelConfig(lgbm={"n_estimators": 30}, quantiles=[], num_threads=1)
    train = ds.rows[:2000]
    y = np.log(ds.labels.loc[train, "fwd_rv"].to_numpy())
    vol, _ = make_models(cfg, ds.feature_names, ds.horizon)
    # the defaults: the last 20 % of the window, after a gap of H = 24 rows
    assert vol.shrink_frac == 0.2 and vol.shrink_gap == ds.horizon == 24
    vol.fit(ds.X(train), y)
    assert 0.0 <= vol.shrink_ <= 1.0
    x = ds.X(ds.rows[2100:2300])
    raw = vol.forecast_.booster.predict(vol.tree_inputs(x), raw_score=True)
    assert np.allclose(vol.predict(x), vol.offset(x) + vol.shrink_ * raw)
    # no inner slice: the full tree correction, as before the option existed
    full, _ = make_models(cfg.model_copy(update={"vol_shrink_frac": 0.0}), ds.feature_names,
                          ds.horizon)
    assert full.fit(ds.X(train), y).shrink_ == 1.0
