"""Optuna search of the panel's LightGBM correction, one study on RDB storage shared by workers.

The study lives in ``panel.optuna_storage`` (SQLite by default; any SQLAlchemy URL, e.g.
``postgresql://...``, for a cluster). Each engine worker runs ``study.optimize(n_trials=k)`` as
one task against the same storage (``create_study(..., load_if_exists=True)``), so the trials of
every worker land in the one study and each worker's TPE sampler sees the others' finished
trials. The objective reads development folds only: on each walk-forward fold the correction is
fitted on the fold's early training rows and scored on its validation slice, both inside the
fold's training span, so the walk-forward test windows and the final period stay out of sample.
"""

from __future__ import annotations

import logging
import os
import socket

import lightgbm as lgb
import numpy as np
import pandas as pd

from cascade_ml.compute import worker_threads
from cascade_ml.models.lgbm import lgbm_params
from cascade_ml.models.metrics import qlike_loss
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.dataset import LVL, TIMESTAMP, Panel
from cascade_ml.panel.estimators import LinearPanel, strided
from cascade_ml.panel.fold import Fold, _split_val, fold_masks
from cascade_ml.sqlstore import rdb_storage

log = logging.getLogger(__name__)


def suggest(trial) -> dict:
    """The few settings searched (the rest stay as configured in ``panel.lgbm``)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 31, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 200, 5000, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
    }


def tuning_data(panel: Panel, cfg: PanelConfig, folds: list[Fold], bar: pd.Timedelta,
                max_rows: int | None = None) -> dict[int, dict[str, np.ndarray]]:
    """Per development fold: the correction's training arrays (early rows, strided) and its
    validation slice, around the pooled HAR base. Only walk-forward folds (``0 <= k < n_folds``)
    are read: the final period's and the held-out periods' folds never are. ``max_rows`` thins
    both sets evenly (for tiny test problems)."""
    frame, out = panel.frame, {}
    for fold in folds:
        if not 0 <= fold.k < cfg.n_folds:
            continue
        train, _ = fold_masks(frame, fold, cfg, panel.horizon, bar)
        early, val, _ = _split_val(frame, train, cfg, panel.horizon, bar)
        fe, fv = strided(frame[early], cfg.row_stride), frame[val]
        if max_rows:
            fe = fe.iloc[:: max(1, len(fe) // max_rows)]
            fv = fv.iloc[:: max(1, len(fv) // max_rows)]
        lin = LinearPanel("panel_har").fit(frame[early])
        out[fold.k] = {
            "x_early": fe[panel.inputs].to_numpy(np.float32),
            "resid_early": fe["y"].to_numpy(float) - lin.predict(fe),
            "x_val": fv[panel.inputs].to_numpy(np.float32), "base_val": lin.predict(fv),
            "lvl_val": fv[LVL].to_numpy(float), "rv_val": fv["fwd_rv"].to_numpy(float),
            "last_time": np.array([max(fe[TIMESTAMP].max(), fv[TIMESTAMP].max()).value]),
        }
    return out


def fold_loss(params: dict, data: dict[str, np.ndarray], horizon: int, seed: int,
              threads: int) -> float:
    """Validation QLIKE of the pooled HAR plus a correction trained with ``params``."""
    booster = lgb.train(lgbm_params(params, seed=seed, threads=threads, objective="regression"),
                        lgb.Dataset(data["x_early"], data["resid_early"]))
    std = data["base_val"] + booster.predict(data["x_val"])
    var = np.exp(std + data["lvl_val"]) * horizon
    return float(np.mean(qlike_loss(data["rv_val"], var)))


def _optimize_task(worker: int, storage_url: str, study_name: str, shares: list[int],
                   data: dict[int, dict[str, np.ndarray]], cfg: PanelConfig,
                   horizon: int) -> int:
    """One worker's share of the study (an engine task): its trials go to the shared storage."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    threads = worker_threads()
    who = f"{socket.gethostname()}:{os.getpid()}"
    study = optuna.create_study(
        study_name=study_name, storage=rdb_storage(storage_url), load_if_exists=True,
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=cfg.seed + worker),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1))

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", who)
        params = {**cfg.lgbm.model_dump(), **suggest(trial)}
        losses = []
        for step, k in enumerate(sorted(data)):
            losses.append(fold_loss(params, data[k], horizon, cfg.seed, threads))
            trial.report(float(np.mean(losses)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(losses))

    n_trials = shares[worker] if worker < len(shares) else 0
    if n_trials:
        study.optimize(objective, n_trials=n_trials)
    return n_trials


def tune_panel(engine, panel: Panel, cfg: PanelConfig, folds: list[Fold], bar: pd.Timedelta,
               n_trials: int, study_name: str | None = None,
               max_rows: int | None = None) -> dict:
    """Spread ``n_trials`` more trials over the engine's workers; returns the best settings
    (merged into ``panel.lgbm``), the study name and how many trials each worker ran."""
    import optuna

    name = study_name or f"panel-h{panel.horizon}-volatility"
    data = tuning_data(panel, cfg, folds, bar, max_rows)
    if not data:
        return {"study": name, "trials": 0, "params": {}}
    # created once here, so the workers' create_study(load_if_exists=True) never race on it
    optuna.create_study(study_name=name, storage=rdb_storage(cfg.optuna_storage),
                        load_if_exists=True, direction="minimize")
    workers = engine.n_workers
    shares = [n_trials // workers + (1 if i < n_trials % workers else 0) for i in range(workers)]
    engine.each_worker(_optimize_task, cfg.optuna_storage, name, shares, data, cfg,
                       panel.horizon)
    study = optuna.load_study(study_name=name, storage=rdb_storage(cfg.optuna_storage))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    per_worker: dict[str, int] = {}
    for t in study.trials:
        who = str(t.user_attrs.get("worker", "?"))
        per_worker[who] = per_worker.get(who, 0) + 1
    best = dict(study.best_params) if done else {}
    log.info("panel tuning: %d trials in study %s, best %s", len(study.trials), name, best)
    return {"study": name, "trials": len(study.trials), "complete": len(done),
            "per_worker": per_worker, "params": best,
            "best_value": float(study.best_value) if done else None}
