"""Optuna search of the volatility model's LightGBM settings on the development span only.

TPE (seeded) proposes settings; each trial runs the purged walk-forward over development rows
and reports the running mean QLIKE after every fold, so the MedianPruner stops hopeless trials
early. The final period is cut off before the study sees any row. Studies persist in an RDB
(SQLite by default, or a server: ``postgresql://...``), so a second call with the same name
continues the search, from this machine or another.
"""

from __future__ import annotations

import logging

import numpy as np
import optuna

from cascade_ml.contracts.columns import FWD_RV, VAR_FORECAST
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.dataset import Dataset
from cascade_ml.models.evaluate import fit_predict, split_rows, splitter
from cascade_ml.models.metrics import qlike_loss
from cascade_ml.sqlstore import rdb_storage

log = logging.getLogger(__name__)


def suggest(trial: optuna.Trial) -> dict:
    """The search space (moderate sizes so a trial stays a few seconds)."""
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 600, step=50),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 31),
        "min_child_samples": trial.suggest_int("min_child_samples", 20, 400, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
    }


def tune(ds: Dataset, cfg: ModelConfig, n_trials: int, study_name: str | None = None
         ) -> tuple[dict, optuna.Study]:
    """Run ``n_trials`` more trials; returns the best LightGBM params and the study."""
    dev, _ = split_rows(ds, cfg)  # the final period is dropped here, before any trial
    folds = list(splitter(cfg, ds.horizon).split(dev))
    quiet = cfg.model_copy(update={"quantiles": []})

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial)
        losses = []
        for k, (tr, te) in enumerate(folds):
            frame, _, _ = fit_predict(ds, dev[tr], dev[te], quiet, params, baselines=False)
            rv = ds.labels.loc[frame.index, FWD_RV].to_numpy(float)
            losses.append(float(np.mean(qlike_loss(rv, frame[VAR_FORECAST].to_numpy()))))
            trial.report(float(np.mean(losses)), k)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(losses))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name or f"{ds.symbol}-h{ds.horizon}-volatility",
        storage=rdb_storage(cfg.optuna_storage), load_if_exists=True, direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
    study.optimize(objective, n_trials=n_trials)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return {}, study
    return dict(study.best_params), study
