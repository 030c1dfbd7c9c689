"""The panel branch of the pipeline steps: build, evaluate, export (I/O at the edges).

Scoring and serving the exported bundle go through ``cascade_ml.forecasting`` like a per-symbol
bundle's (the panel bundle is one kind of ``Forecaster``).

Each function takes the store, the task and its sections (never the whole pipeline config);
``cascade_ml.pipeline`` calls them when ``panel.enabled`` is set.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.atomic import write_json
from cascade_ml.contracts.layout import (
    panel_path,
    panel_predictions_path,
    predictions_path,
)
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.features.config import FeatureConfig
from cascade_ml.labels.config import LabelConfig
from cascade_ml.models.baselines import volatility_baselines
from cascade_ml.models.splits import bar_interval, holdout_exclusion
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.dataset import SYMBOL, TIMESTAMP, Panel, build_panel, build_symbol
from cascade_ml.panel.evaluate import PanelResult, evaluate_panel
from cascade_ml.panel.fold import baseline_frame, min_symbol_rows, usable

log = logging.getLogger(__name__)


def _features_task(symbol: str, store_root: str, task: TaskConfig, cfg: FeatureConfig) -> str:
    from cascade_ml.features.build import build_and_store

    return build_and_store(MarketStore(store_root), symbol, task, cfg,
                           short_history=True).line()


def _labels_task(symbol: str, store_root: str, task: TaskConfig, cfg: LabelConfig,
                 oi_venues: list[str]) -> str:
    from cascade_ml.labels.build import build_and_store_labels

    return build_and_store_labels(MarketStore(store_root), symbol, task, cfg,
                                  oi_venues=oi_venues).line()


def build_features_all(engine, store: MarketStore, task: TaskConfig,
                       cfg: FeatureConfig) -> list[str]:
    """Every symbol's feature table, one engine task each; the report lines in task order."""
    return engine.map(_features_task, task.symbols, str(store.root), task, cfg)


def build_labels_all(engine, store: MarketStore, task: TaskConfig, cfg: LabelConfig,
                     oi_venues: list[str]) -> list[str]:
    """Every symbol's labels, one engine task each."""
    return engine.map(_labels_task, task.symbols, str(store.root), task, cfg, list(oi_venues))


def write_panel(engine, store: MarketStore, task: TaskConfig, features: FeatureConfig,
                labels: LabelConfig, cfg: PanelConfig, oi_venues: list[str]) -> Panel:
    """Stack the stored per-symbol tables into the panel table (written atomically)."""
    panel = build_panel(engine, str(store.root), task, features, labels, cfg, oi_venues)
    store.write_table(panel_path(task.horizon), panel.frame,
                      {"kind": "panel", "horizon": task.horizon, "symbols": panel.symbols,
                       "inputs": panel.inputs})
    return panel


def read_panel(store: MarketStore, task: TaskConfig, cfg: PanelConfig) -> Panel:
    """The stored panel of the task's horizon, with its input list recomputed from columns."""
    from cascade_ml.panel.dataset import stack

    path = store.root / panel_path(task.horizon)
    if not path.exists():
        raise CascadeError("no panel table", str(path), hint="run the features and labels steps")
    frame = store.read_table(panel_path(task.horizon))
    frames = [g.drop(columns=[c for c in g.columns if c.startswith("mkt_")])
              for _, g in frame.groupby(SYMBOL, sort=False)]
    return stack(frames, cfg, task.horizon)


def symbol_har(panel: Panel, train_end: pd.Timestamp, min_rows: int = 720,
               cfg: PanelConfig | None = None, bar: pd.Timedelta | None = None) -> dict:
    """Per-symbol HAR coefficients on each symbol's rows up to ``train_end`` (for the bundle);
    ``min_rows``: fewest rows (``min_symbol_rows`` of the task's bar). With
    ``cfg.har_reference`` ``har_roll`` the fit on the last chosen window of those rows. Rows of
    the held-out periods (and H bars around them) are left out, as from every panel fit."""
    cfg = cfg or PanelConfig()
    out = {}
    frame = panel.frame
    bar = bar if bar is not None else bar_interval(pd.DatetimeIndex(
        np.sort(frame[TIMESTAMP].unique())))
    held = holdout_exclusion(frame[TIMESTAMP], cfg.holdout_periods, panel.horizon, bar)
    ok = usable(frame) & frame["raw_rv_720h"].notna() & ~held
    for sym, part in panel.frame[ok & (panel.frame[TIMESTAMP] <= train_end)].groupby(SYMBOL):
        if len(part) < min_rows:
            continue
        feats = baseline_frame(part)
        har = volatility_baselines(panel.horizon, har_roll=cfg.har_roll)[cfg.har_reference]
        har.fit(feats, part.set_index(TIMESTAMP)["fwd_rv"], feats.index)
        out[str(sym)] = {"coef": [float(c) for c in har.coef_], "smearing": har.smearing_}
    return out


def _write_predictions(store: MarketStore, result: PanelResult, panel: Panel,
                       cfg: PanelConfig) -> None:
    """All forecasts in one table, and per symbol where the backtest reads them."""
    oos = result.oos
    store.write_table(panel_predictions_path(panel.horizon), oos.reset_index(drop=True),
                      {"kind": "panel_oos", "horizon": panel.horizon})
    for sym, part in oos.groupby(SYMBOL, sort=False):
        frame = part.drop(columns=[SYMBOL]).set_index(TIMESTAMP).sort_index()
        frame.index = pd.DatetimeIndex(frame.index, name="timestamp")
        frame["fold"] = frame["fold"].astype("int64")
        frame = frame[["fold", *[c for c in frame.columns if c != "fold"]]]
        store.write_table(predictions_path(str(sym), panel.horizon), frame,
                          {"symbol": str(sym), "horizon": panel.horizon, "folds": cfg.n_folds,
                           "final_fold": cfg.n_folds, "model": "panel"})


def evaluate_doc(engine, store: MarketStore, task: TaskConfig, cfg: PanelConfig, *,
                 alert_threshold: float = 0.2, params: dict | None = None,
                 tune_trials: int | None = None) -> tuple[dict, PanelResult, Panel]:
    """Tune (``tune_trials``, default ``panel.tune_trials``), then evaluate the panel
    (walk-forward, final period, left-out symbols); returns the evaluation document."""
    from cascade_ml.panel.evaluate import time_folds
    from cascade_ml.panel.report import score_panel

    started = time.perf_counter()
    panel = read_panel(store, task, cfg)
    folds = time_folds(panel, cfg, task.bar)
    trials = cfg.tune_trials if tune_trials is None else tune_trials
    tuning = None
    if trials > 0:
        from cascade_ml.panel.tune import tune_panel

        tuning = tune_panel(engine, panel, cfg, folds, task.bar, trials)
        params = {**(params or {}), **tuning["params"]}
    result = evaluate_panel(engine, panel, cfg, task.side, params, folds=folds, bar=task.bar)
    doc = score_panel(result.oos, panel.frame, cfg, panel.horizon, alert_threshold)
    doc["attribution"] = final_attribution(result, panel, cfg, task)
    doc.update(horizon=panel.horizon, side=task.side, interval=task.interval,
               symbols=panel.symbols, lgbm_params={**cfg.lgbm.model_dump(), **(params or {})},
               tuning=tuning,
               folds=[{k: v for k, v in c.items() if k != "state"} for c in result.choices],
               timings={"evaluate_s": result.timings["evaluate_s"],
                        "fold_s": [c["seconds"] for c in result.choices],
                        "total_s": time.perf_counter() - started})
    return doc, result, panel


def final_attribution(result: PanelResult, panel: Panel, cfg: PanelConfig,
                      task: TaskConfig) -> dict | None:
    """SHAP per feature family of the served models on the final period's rows (pooled over
    symbols; ``cascade_ml.panel.attribution``)."""
    from cascade_ml.panel.attribution import input_families, shap_family_shares

    state = result.choices[-1].get("state") if result.choices else None
    rows = result.oos.index[result.oos["fold"] == cfg.n_folds]
    if state is None or not len(rows):
        return None
    x = panel.frame.loc[rows, panel.inputs]
    families = input_families(panel.inputs, list(task.references))
    return {"period": "final", "families": families,
            "volatility_correction": shap_family_shares(state["tree"], x, families,
                                                        seed=cfg.seed),
            "cascade": shap_family_shares(state["classifier"], x, families, seed=cfg.seed)}


def train_panel(engine, store: MarketStore, task: TaskConfig, cfg: PanelConfig, *,
                alert_threshold: float = 0.2, params: dict | None = None,
                version: str | None = None, model_name: str = "") -> dict:
    """Evaluate the panel (walk-forward, final period, left-out symbols), export the bundle,
    write predictions and the evaluation JSON; returns the evaluation document.

    ``version`` / ``model_name``: the registered model version the bundle is exported as
    (``cascade_ml.forecasting.registry``); default a UTC time stamp and no registered name."""
    from cascade_ml.panel.bundle import export_panel_bundle

    doc, result, panel = evaluate_doc(engine, store, task, cfg, alert_threshold=alert_threshold,
                                      params=params)
    state = result.choices[-1].pop("state", None)
    if state is None:
        raise CascadeError("the panel has no final period to fit the served models on",
                           "panel.final_frac",
                           hint="set panel.final_start or panel.final_frac > 0")
    version = version or time.strftime("%Y%m%d%H%M%S", time.gmtime())
    final_fold = result.folds[-1]
    metrics = {"final": doc["panel"].get("final", {}).get("universe", {}).get("median_qlike_ratio"),
               "walk_forward": doc["panel"]["walk_forward"]["universe"]["median_qlike_ratio"]}
    for p in cfg.holdout_periods:  # the held-out periods' scores, beside the final period's
        metrics[p.name] = doc["panel"].get(p.name, {}).get("universe", {}).get(
            "median_qlike_ratio")
    bundle = export_panel_bundle(
        cfg.bundle_dir, state, result.choices[-1], version=version, symbols=panel.symbols,
        horizon=panel.horizon, interval=task.interval, side=task.side, inputs=panel.inputs,
        cold_start_days=cfg.cold_start_days, model_name=model_name,
        symbol_har=symbol_har(panel, final_fold.train_end, min_symbol_rows(cfg, task.bar), cfg,
                              task.bar),
        metrics=metrics)
    doc["bundle"] = {"path": str(bundle), "version": version}
    _write_predictions(store, result, panel, cfg)
    write_json(Path(cfg.report_dir) / "evaluation.json", doc)
    from cascade_ml.panel.page import write_page

    write_page(doc, Path(cfg.report_dir) / "evaluation.html")
    return doc


def build_symbol_panel(symbol: str, store: MarketStore, task: TaskConfig, features: FeatureConfig,
                       labels: LabelConfig, cfg: PanelConfig,
                       oi_venues: list[str]) -> pd.DataFrame:
    """One symbol's panel rows from the store (without market state); for tests and tools."""
    return build_symbol(symbol, str(store.root), task, features, labels, cfg, oi_venues,
                        write=False)
