"""Losses and tests behave as their definitions say."""

from __future__ import annotations

import numpy as np

from cascade_ml.models.metrics import (
    cascade_metrics,
    diebold_mariano,
    mincer_zarnowitz,
    newey_west_var,
    qlike_loss,
    volatility_metrics,
)


def test_qlike_is_zero_for_perfect_and_penalises_under_forecasts_more():
    rv = np.array([1.0, 2.0, 3.0])
    assert np.allclose(qlike_loss(rv, rv), 0)
    assert qlike_loss(np.array([2.0]), np.array([1.0]))[0] > qlike_loss(np.array([1.0]),
                                                                        np.array([2.0]))[0]
    assert np.isclose(qlike_loss(np.array([2.0]), np.array([1.0]))[0], 2 - np.log(2) - 1)


def test_mincer_zarnowitz_recovers_a_linear_relation():
    rng = np.random.default_rng(0)
    f = rng.uniform(1, 2, 500)
    mz = mincer_zarnowitz(0.5 + 2 * f, f)
    assert np.isclose(mz["mz_intercept"], 0.5) and np.isclose(mz["mz_slope"], 2)
    assert np.isclose(mz["mz_r2"], 1)
    assert volatility_metrics(f, f)["mse_log"] == 0


def test_newey_west_reduces_to_sample_variance_without_lags():
    d = np.random.default_rng(1).normal(size=200)
    assert np.isclose(newey_west_var(d, 0), np.var(d))


def test_diebold_mariano_detects_a_better_forecast_and_not_an_equal_one():
    rng = np.random.default_rng(2)
    rv = rng.lognormal(0, 0.5, 2000)
    good = rv * rng.lognormal(0, 0.1, 2000)
    bad = rv * rng.lognormal(0.3, 0.5, 2000)
    res = diebold_mariano(qlike_loss(rv, good), qlike_loss(rv, bad), 24)
    assert res["dm_stat"] < 0 and res["dm_pvalue"] < 0.01
    same = diebold_mariano(qlike_loss(rv, good), qlike_loss(rv, good[::-1][::-1]), 24)
    assert np.isnan(same["dm_pvalue"])  # zero loss differential: no test possible


def test_cascade_metrics_of_a_perfect_and_a_constant_forecast():
    y = np.array([0, 0, 0, 1, 0, 1, 0, 0, 0, 0], float)
    perfect = cascade_metrics(y, y, 0.2, threshold=0.5)
    assert perfect["pr_auc"] == 1 and perfect["roc_auc"] == 1 and perfect["bss"] > 0.99
    assert perfect["precision_at_threshold"] == 1 and perfect["recall_at_threshold"] == 1
    const = cascade_metrics(y, np.full(10, 0.2), 0.2)
    assert np.isclose(const["bss"], 0) and np.isclose(const["base_rate"], 0.2)
