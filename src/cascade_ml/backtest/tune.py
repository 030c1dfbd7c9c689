"""Tune the policy's maps for an outcome on the development period, then judge it elsewhere.

Objective (stated in every report): **maximise the Calmar ratio of the model-fed policy on the
development folds, subject to an upside capture at least that of the untuned policy on the same
bars** (so Calmar is not bought by simply holding less). Trials that break the constraint score
``calmar - 10 x shortfall``. Optuna's TPE sampler searches the vol reference mode (fixed or the
perp's own trailing vol) and, for the ``objective`` hedge rule (the default), the objective's
risk aversion, cascade jump size, holding time, tail quantile, the forecast's smoothing
half-life, the stop's re-anchoring interval and the weight of the objective's hedge against
the static one (``objective_weight``); for the ``score`` rule the
band mapping (vol ratios, cascade probabilities, vol weight), the trigger bumps and the vol
target; for both the sigmas to liquidation. Every map stays monotone (the objective's by its
form; the score map because the search keeps ``low < high`` and ``k_cascade >= k_base`` by
construction, and ``PolicyConfig`` rejects anything else). The hedge band (30-70 %), leverage
ceiling and risk budget are the brief's and are not tuned.

The tuner receives only the development bars (:func:`development_data`): the final period is
cut away before any simulation, so no trial can read it. The tuned policy is then scored once on
the final period, and on perps never used for tuning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import BacktestData
from cascade_ml.backtest.simulate_all import run_strategies
from cascade_ml.contracts.task import Side
from cascade_ml.errors import CascadeError
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.trading.config import TradingConfig

log = logging.getLogger(__name__)
OBJECTIVE = ("maximise the development-period Calmar of the model-fed policy subject to upside "
             "capture >= the untuned policy's on the same bars (shortfall penalised 10x)")
PENALTY = 10.0


@dataclass
class TuneResult:
    params: dict
    policy: PolicyConfig
    best_value: float
    default_value: float
    default_upside: float
    trials: int
    dev_start: str
    dev_end: str
    dev_bars: int
    objective: str = OBJECTIVE

    def summary(self) -> dict:
        return {"objective": self.objective, "params": self.params, "trials": self.trials,
                "development": {"start": self.dev_start, "end": self.dev_end,
                                "bars": self.dev_bars},
                "best_objective": self.best_value, "untuned_objective": self.default_value,
                "untuned_upside_capture": self.default_upside}


def development_data(data: BacktestData) -> BacktestData:
    """Only the development folds' bars: the final period is removed before tuning."""
    dev = data.development_mask()
    if dev.sum() < 24 * 30:
        raise CascadeError(f"only {int(dev.sum())} development bars: too few to tune on")
    return data.take(dev)


def suggest(trial, rule: str = "score") -> dict:
    """One point of the search space of the hedge ``rule`` (monotone maps by construction)."""
    k_base = trial.suggest_float("k_sigma_base", 2.0, 5.0)
    common = {
        "vol_reference": trial.suggest_categorical("vol_reference", ["fixed", "trailing"]),
        "k_sigma_base": k_base,
        "k_sigma_cascade": k_base + trial.suggest_float("k_sigma_extra", 0.0, 3.0),
    }
    if rule == "objective":
        return {**common,
                "risk_aversion": trial.suggest_float("risk_aversion", 0.02, 0.3, log=True),
                "jump_sigmas": trial.suggest_float("jump_sigmas", 1.0, 5.0),
                "holding_horizons": trial.suggest_float("holding_horizons", 1.0, 10.0),
                "size_k_sigma": trial.suggest_float("size_k_sigma", 2.5, 5.0),
                "forecast_halflife_bars": trial.suggest_float("forecast_halflife_bars", 0.0,
                                                              96.0),
                "stop_reset_bars": trial.suggest_int("stop_reset_bars", 0, 168),
                "objective_weight": trial.suggest_float("objective_weight", 0.0, 1.0)}
    vr_low = trial.suggest_float("vol_ratio_low", 0.3, 1.2)
    cp_low = trial.suggest_float("cascade_prob_low", 0.0, 0.10)
    return {
        **common,
        "vol_ratio_low": vr_low,
        "vol_ratio_high": vr_low + trial.suggest_float("vol_ratio_span", 0.3, 2.5),
        "cascade_prob_low": cp_low,
        "cascade_prob_high": cp_low + trial.suggest_float("cascade_prob_span", 0.02, 0.5),
        "vol_weight": trial.suggest_float("vol_weight", 0.0, 1.0),
        "trigger_bump": trial.suggest_float("trigger_bump", 0.0, 0.15),
        "trigger_bump_max": trial.suggest_float("trigger_bump_max", 0.0, 0.3),
        "target_vol_annual": trial.suggest_float("target_vol_annual", 1.0, 6.0),
    }


def start_point(policy: PolicyConfig) -> dict:
    """The untuned policy as a first trial (in :func:`suggest`'s parameter names)."""
    common = {"vol_reference": policy.vol_reference, "k_sigma_base": policy.k_sigma_base,
              "k_sigma_extra": policy.k_sigma_cascade - policy.k_sigma_base}
    if policy.hedge_rule == "objective":
        return {**common, "risk_aversion": policy.risk_aversion,
                "jump_sigmas": policy.jump_sigmas, "holding_horizons": policy.holding_horizons,
                "size_k_sigma": policy.size_k_sigma,
                "forecast_halflife_bars": policy.forecast_halflife_bars,
                "stop_reset_bars": policy.stop_reset_bars,
                "objective_weight": policy.objective_weight}
    return {**common, "vol_ratio_low": policy.vol_ratio_low,
            "vol_ratio_span": policy.vol_ratio_high - policy.vol_ratio_low,
            "cascade_prob_low": policy.cascade_prob_low,
            "cascade_prob_span": policy.cascade_prob_high - policy.cascade_prob_low,
            "vol_weight": policy.vol_weight, "trigger_bump": policy.trigger_bump,
            "trigger_bump_max": policy.trigger_bump_max,
            "target_vol_annual": policy.target_vol_annual}


def score(data: BacktestData, bt: BacktestConfig, policy: PolicyConfig, symbol: str,
          side: Side, trading: TradingConfig) -> tuple[float, float]:
    """(Calmar, upside capture) of the model-fed policy on ``data``."""
    only = bt.model_copy(update={"strategies": ["unhedged", "model_policy"]})
    m = run_strategies(data, only, policy, symbol, side, trading=trading)["model_policy"].metrics
    calmar = m["calmar"] if np.isfinite(m["calmar"]) else -10.0
    return float(calmar), float(m["upside_capture"])


def tune_policy(data: BacktestData, bt: BacktestConfig, policy: PolicyConfig, symbol: str,
                side: Side, *, trading: TradingConfig, trials: int, seed: int = 0
                ) -> TuneResult:
    """Search the policy's maps on the development bars of ``data`` only."""
    import optuna

    dev = development_data(data)
    base_calmar, base_up = score(dev, bt, policy, symbol, side, trading)

    def objective(trial) -> float:
        cfg = policy.model_copy(update=suggest(trial, policy.hedge_rule))
        cfg = PolicyConfig.model_validate(cfg.model_dump())  # re-check every constraint
        calmar, up = score(dev, bt, cfg, symbol, side, trading)
        trial.set_user_attr("upside_capture", up)
        return calmar - PENALTY * max(base_up - up, 0.0)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(start_point(policy))
    study.optimize(objective, n_trials=trials)
    params = suggest(optuna.trial.FixedTrial(study.best_params), policy.hedge_rule)
    tuned = PolicyConfig.model_validate({**policy.model_dump(), **params})
    return TuneResult(params, tuned, float(study.best_value), float(base_calmar), base_up,
                      len(study.trials), str(dev.index[0]), str(dev.index[-1]), len(dev.index))
