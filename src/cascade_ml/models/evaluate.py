"""Purged walk-forward evaluation of the models against the baselines, on the same rows.

Rows are split into a development span and an untouched final period (every row from
``final_start`` on, else the last ``final_frac``). The walk-forward runs over the development
span only (this is all tuning ever sees); then the models are fitted on all development rows
and scored once on the final period. Rows of ``holdout_periods`` (and H bars around each) are
not development rows: each period is scored once by models fitted on the rows before it.
Every fold refits models, baselines, imputers, scalers and calibrators on its training rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import (
    CASCADE,
    CASCADE_PROB,
    FOLD,
    FWD_RV,
    HAR_COLUMNS,
    HAR_WINDOWS,
    LEVEL_PATTERN,
    LOG_LEVEL_PATTERN,
    VAR_FORECAST,
    VOL_FORECAST,
    baseline_prob,
    baseline_var,
    rv_hours,
)
from cascade_ml.errors import CascadeError, ConfigError
from cascade_ml.models.baselines import cascade_baselines, volatility_baselines
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.dataset import Dataset
from cascade_ml.models.estimators import CascadeClassifier, VolatilityForecaster
from cascade_ml.models.forecast import LevelTransform
from cascade_ml.models.metrics import (
    cascade_metrics,
    diebold_mariano,
    non_overlapping,
    qlike_loss,
    volatility_metrics,
)
from cascade_ml.models.splits import (
    PurgedWalkForward,
    bar_interval,
    final_split,
    holdout_exclusion,
    in_period,
)

log = logging.getLogger(__name__)
VOL_BASELINES = ("ewma", "har", "har_roll", "garch", "gjr", "naive")
CASCADE_BASELINES = ("logistic", "rules", "climatology")


@dataclass
class EvalResult:
    """Out-of-sample predictions, their metrics and the models fitted on the development span."""

    oos: pd.DataFrame
    metrics: dict
    vol_model: VolatilityForecaster | None = None
    cascade_model: CascadeClassifier | None = None
    dev_rows: pd.DatetimeIndex | None = None
    final_rows: pd.DatetimeIndex | None = None
    timings: dict = field(default_factory=dict)


def _hours(name: str) -> int:
    return int(LEVEL_PATTERN.search(name).group(3))


def make_models(cfg: ModelConfig, feature_names: list[str], horizon: int,
                params: dict | None = None) -> tuple[VolatilityForecaster, CascadeClassifier]:
    """Fresh estimators for horizon H from the config (``params``, e.g. tuned, override the
    volatility model's LightGBM settings)."""
    common = dict(random_state=cfg.seed, n_jobs=cfg.num_threads, min_coverage=cfg.min_coverage)
    vol = VolatilityForecaster(lgbm={**cfg.lgbm.model_dump(), **(params or {})},
                               levels=level_transform(cfg, feature_names, horizon),
                               quantiles=tuple(cfg.quantiles) or None, objective=cfg.objective,
                               shrink_frac=cfg.vol_shrink_frac, shrink_gap=horizon, **common)
    clf = CascadeClassifier(lgbm=cfg.cascade_lgbm.model_dump(), calibration=cfg.calibration,
                            calibration_frac=cfg.calibration_frac, calib_gap=horizon,
                            features=cascade_columns(cfg, feature_names), **common)
    return vol, clf


def level_transform(cfg: ModelConfig, feature_names: list[str], horizon: int) -> LevelTransform:
    """The volatility level (HAR columns, else the anchor scaled to H) and which columns enter
    the trees as log ratios to it (variance levels by name; ``log_rv_*`` by difference)."""
    anchor = feature_names.index(cfg.anchor) if cfg.anchor in feature_names else None
    hours = rv_hours(cfg.anchor) if anchor is not None else 1
    har = {}
    if cfg.har_offset:
        har = {"har": tuple(feature_names.index(c) for c in HAR_COLUMNS),
               "har_scale": tuple(1.0 / h for h in HAR_WINDOWS)}
    levelled = anchor is not None or bool(har)
    rel = [(j, n) for j, n in enumerate(feature_names)
           if levelled and LEVEL_PATTERN.search(n) and not LOG_LEVEL_PATTERN.search(n)]
    rel_log = [j for j, n in enumerate(feature_names) if levelled and LOG_LEVEL_PATTERN.search(n)]
    return LevelTransform(anchor=anchor, anchor_scale=horizon / hours,
                          relative=tuple(j for j, _ in rel),
                          relative_scale=tuple(horizon / _hours(n) for _, n in rel),
                          relative_log=tuple(rel_log), **har)


def cascade_columns(cfg: ModelConfig, feature_names: list[str]) -> tuple[int, ...] | None:
    """Positions of the cascade inputs among the model features (None = all of them, also when
    the table holds none of ``cascade_features``, e.g. a reduced feature set)."""
    if cfg.cascade_features is None:
        return None
    wanted = set(cfg.cascade_features)
    cols = tuple(j for j, n in enumerate(feature_names) if n in wanted)
    if not cols:
        log.warning("none of models.cascade_features is a model feature; the cascade models "
                    "use all %d features", len(feature_names))
        return None
    return cols


def split_rows(ds: Dataset, cfg: ModelConfig) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """Development and final rows; refuses a symbol with too little data for one fold. The
    held-out periods' rows and the H bars around each are in neither."""
    need = max(cfg.min_rows, ds.horizon * 4)
    if len(ds.rows) < need:
        raise CascadeError(
            f"{ds.symbol} has {len(ds.rows)} usable rows at h={ds.horizon}; at least {need} are "
            "needed for one walk-forward fold", hint="ingest more history or lower models.min_rows")
    dev, final = final_split(ds.rows, cfg.final_frac, ds.horizon, cfg.final_start,
                             min_dev=need, where="models.final_start")
    dev_rows = ds.rows[dev]
    held = holdout_exclusion(dev_rows, cfg.holdout_periods, ds.horizon, bar_interval(ds.rows))
    return dev_rows[~held], ds.rows[final]


def holdout_folds(ds: Dataset, cfg: ModelConfig, dev: pd.DatetimeIndex
                  ) -> list[tuple[str, pd.DatetimeIndex, pd.DatetimeIndex]]:
    """Per held-out period: its name, the development rows before it (labels purged) and its
    own rows."""
    step = bar_interval(ds.rows)
    out = []
    for period in cfg.holdout_periods:
        rows = ds.rows[in_period(ds.rows, period)]
        train = dev[dev + ds.horizon * step <= rows[0]] if len(rows) else dev[:0]
        if len(rows) == 0 or len(train) < cfg.min_rows:
            raise ConfigError(f"{ds.symbol}: holdout period {period.name} has {len(rows)} rows "
                              f"and {len(train)} development rows before it",
                              "models.holdout_periods",
                              hint=f"both need data (at least {cfg.min_rows} rows before it)")
        out.append((period.name, train, rows))
    return out


def splitter(cfg: ModelConfig, horizon: int) -> PurgedWalkForward:
    """The purged walk-forward of the development rows (purge = label window H)."""
    return PurgedWalkForward(cfg.n_folds, horizon, cfg.embargo, cfg.min_train_frac)


def fit_predict(ds: Dataset, train: pd.Index, test: pd.Index, cfg: ModelConfig,
                params: dict | None = None, baselines: bool = True
                ) -> tuple[pd.DataFrame, VolatilityForecaster, CascadeClassifier]:
    """Fit everything on ``train`` rows and forecast ``test`` rows (one fold)."""
    y_log = np.log(ds.labels.loc[train, FWD_RV].to_numpy(float))
    y_cas = ds.labels.loc[train, CASCADE].to_numpy(float).astype(int)
    if len(np.unique(y_cas)) < 2:
        raise CascadeError(f"{ds.symbol}: training rows {train[0]}..{train[-1]} hold only one "
                           "cascade class", hint="use more history or a looser cascade label")
    vol, clf = make_models(cfg, ds.feature_names, ds.horizon, params)
    vol.fit(ds.X(train), y_log)
    Xt = ds.X(test)
    var = vol.predict_variance(Xt)
    out = {VAR_FORECAST: var, VOL_FORECAST: np.sqrt(var)}
    out.update(vol.predict_quantiles(Xt))
    if baselines:
        clf.fit(ds.X(train), y_cas)
        out[CASCADE_PROB] = clf.predict_proba(Xt)[:, 1]
        y_rv = ds.labels[FWD_RV]
        for name, base in volatility_baselines(ds.horizon, cfg.ewma_lambda, cfg.garch_window,
                                               cfg.har_roll).items():
            out[baseline_var(name)] = base.fit(ds.features, y_rv, train).predict(ds.features, test)
        y_c = ds.labels[CASCADE]
        cas_cols = [ds.feature_names[j] for j in
                    (cascade_columns(cfg, ds.feature_names) or range(len(ds.feature_names)))]
        for name, base in cascade_baselines(ds.horizon, cas_cols, cfg.seed,
                                            cfg.min_coverage).items():
            out[baseline_prob(name)] = base.fit(ds.features, y_c, train).predict(ds.features, test)
    frame = pd.DataFrame(out, index=pd.DatetimeIndex(test, name="timestamp"))
    return frame, vol, clf


def walk_forward(ds: Dataset, cfg: ModelConfig, params: dict | None = None) -> EvalResult:
    """Walk-forward over the development span, then the final period; predictions + metrics."""
    started = time.perf_counter()
    dev, final = split_rows(ds, cfg)
    frames = []
    for k, (tr, te) in enumerate(splitter(cfg, ds.horizon).split(dev)):
        frame, _, _ = fit_predict(ds, dev[tr], dev[te], cfg, params)
        frames.append(frame.assign(fold=k))
        log.info("%s fold %d: train %d rows, test %s..%s", ds.symbol, k, len(tr), dev[te[0]],
                 dev[te[-1]])
    t_wf = time.perf_counter() - started
    vol = clf = None
    if len(final):
        frame, vol, clf = fit_predict(ds, dev, final, cfg, params)
        frames.append(frame.assign(fold=cfg.n_folds))
    else:
        vol, clf = make_models(cfg, ds.feature_names, ds.horizon, params)
        vol.fit(ds.X(dev), np.log(ds.labels.loc[dev, FWD_RV].to_numpy(float)))
        clf.fit(ds.X(dev), ds.labels.loc[dev, CASCADE].to_numpy(int))
    held = {}
    for i, (name, train, rows) in enumerate(holdout_folds(ds, cfg, dev)):
        frame, _, _ = fit_predict(ds, train, rows, cfg, params)  # scored once: fold -1, -2, ..
        frames.append(frame.assign(fold=-1 - i))
        held[name] = frame
    oos = pd.concat(frames).sort_index()
    oos[FOLD] = oos[FOLD].astype("int64")
    oos = oos[[FOLD, *[c for c in oos.columns if c != FOLD]]]
    wf = oos[(oos[FOLD] >= 0) & (oos[FOLD] < cfg.n_folds)]
    metrics = {"walk_forward": score(wf, ds.labels, cfg, ds.horizon),
               "final": (score(oos[oos[FOLD] == cfg.n_folds], ds.labels, cfg, ds.horizon)
                         if len(final) else None),
               "folds": [score(g, ds.labels, cfg, ds.horizon, dm=False)
                         for _, g in wf.groupby(FOLD, sort=True)],
               "holdout": {name: score(f, ds.labels, cfg, ds.horizon) for name, f in held.items()}}
    timings = {"walk_forward_s": t_wf, "total_s": time.perf_counter() - started}
    return EvalResult(oos, metrics, vol, clf, dev, final, timings)


def score(pred: pd.DataFrame, labels: pd.DataFrame, cfg: ModelConfig, horizon: int,
          dm: bool = True) -> dict:
    """Volatility and cascade metrics of the model and every baseline on ``pred``'s rows."""
    lab = labels.loc[pred.index]
    rv = lab[FWD_RV].to_numpy(float)
    windows = non_overlapping(pred.index, horizon)  # realised utility: one row per H bars
    vol = {"model": volatility_metrics(rv, pred[VAR_FORECAST].to_numpy(), windows)}
    vol["baselines"] = {b: volatility_metrics(rv, pred[baseline_var(b)].to_numpy(), windows)
                        for b in VOL_BASELINES if baseline_var(b) in pred}
    vol["utility_windows"] = len(windows)
    if "har" in vol["baselines"]:
        vol["utility_gain_vs_har"] = (vol["model"]["realised_utility"]
                                      - vol["baselines"]["har"]["realised_utility"])
    if vol["baselines"]:
        best = min(vol["baselines"], key=lambda b: vol["baselines"][b]["qlike"])
        vol["best_baseline"] = best
        vol["qlike_gain_vs_best"] = 1 - vol["model"]["qlike"] / vol["baselines"][best]["qlike"]
        if dm:
            res = diebold_mariano(qlike_loss(rv, pred[VAR_FORECAST].to_numpy()),
                                  qlike_loss(rv, pred[baseline_var(best)].to_numpy()), horizon)
            vol["dm_stat_vs_best"] = res["dm_stat"]
            vol["dm_pvalue_vs_best"] = res["dm_pvalue"]
    out = {"rows": len(pred), "start": str(pred.index[0]), "end": str(pred.index[-1]),
           "volatility": vol}
    if CASCADE_PROB in pred:
        y = lab[CASCADE].to_numpy(float)
        clim = pred[baseline_prob("climatology")].to_numpy(float)
        ref = float(np.mean((y - clim) ** 2))

        def cm(p: np.ndarray) -> dict:
            m = cascade_metrics(y, p, float(np.mean(y)), cfg.alert_threshold)
            m["bss"] = 1 - m["brier"] / ref if ref > 0 else float("nan")
            m.pop("base_rate")
            return m

        out["cascade"] = {"base_rate": float(np.mean(y)), "model": cm(pred[CASCADE_PROB]),
                          "baselines": {b: cm(pred[baseline_prob(b)].to_numpy())
                                        for b in CASCADE_BASELINES}}
    return out
