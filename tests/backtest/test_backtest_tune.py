"""The policy tuner reads the development folds only and keeps every map monotone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import align
from cascade_ml.backtest.tune import development_data, tune_policy
from cascade_ml.errors import CascadeError
from cascade_ml.policy import PolicyConfig
from cascade_ml.trading.config import TradingConfig


@pytest.fixture(scope="module")
def data(near_ohlcv, near_funding, trailing_preds, labels):
    return align(near_ohlcv, trailing_preds, horizon=24, funding=near_funding, labels=labels)


def _poison_final(d):
    """The same data with every final-period value replaced by garbage."""
    final = d.final_mask()
    wild = {k: np.where(final, 1e6, getattr(d, k)) for k in ("open", "high", "low", "close")}
    feeds = {k: dataclasses.replace(f, sigma_h=np.where(final, np.nan, f.sigma_h),
                                    cascade_prob=np.where(final, 7.0, f.cascade_prob))
             for k, f in d.feeds.items()}
    return dataclasses.replace(d, **wild, funding_rate=np.where(final, 0.5, d.funding_rate),
                               signals=feeds["model"], feeds=feeds)


def test_the_tuner_never_reads_the_final_period(data) -> None:
    dev = development_data(data)
    assert dev.index[-1] < data.index[data.final_mask()][0]
    assert len(dev.index) == int(data.development_mask().sum())
    bt = BacktestConfig()
    a = tune_policy(data, bt, PolicyConfig(), "NEAR", "long", trading=TradingConfig(), trials=3,
                    seed=5)
    b = tune_policy(_poison_final(data), bt, PolicyConfig(), "NEAR", "long",
                    trading=TradingConfig(), trials=3, seed=5)
    assert a.params == b.params and a.best_value == b.best_value
    assert a.dev_end == b.dev_end == str(dev.index[-1])
    # the untuned policy is the first trial, so tuning never reports a worse objective
    assert a.best_value >= a.default_value
    p = a.policy
    assert p.vol_ratio_low < p.vol_ratio_high and p.cascade_prob_low < p.cascade_prob_high
    assert p.k_sigma_cascade >= p.k_sigma_base
    assert (p.hedge_min, p.hedge_max, p.max_risk_fraction) == (0.3, 0.7, 0.02)  # not tuned


def test_too_little_development_data_is_a_clear_error(data) -> None:
    short = data.take(np.arange(len(data.index)) >= len(data.index) - 24 * 40)
    with pytest.raises(CascadeError, match="development bars"):
        development_data(short)


def test_the_objective_search_covers_smoothing_and_the_stop_and_starts_untuned() -> None:
    """The objective rule's space includes the forecast half-life, the stop's re-anchoring and
    the objective's weight against the static hedge, and the untuned policy's point maps back
    onto itself (the first trial is the default)."""
    import optuna

    from cascade_ml.backtest.tune import start_point, suggest

    cfg = PolicyConfig(forecast_halflife_bars=24.0, stop_reset_bars=72, objective_weight=0.4)
    params = suggest(optuna.trial.FixedTrial(start_point(cfg)), "objective")
    assert params["forecast_halflife_bars"] == 24.0 and params["stop_reset_bars"] == 72
    assert params["objective_weight"] == 0.4
    assert PolicyConfig.model_validate({**cfg.model_dump(), **params}) == cfg
