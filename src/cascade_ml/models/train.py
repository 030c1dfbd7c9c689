"""The train step: evaluate, track, register, promote by rule, export the bundle, write OOS.

What is fitted on what (see docs/models.md): the walk-forward scores models and baselines on
the development span; the models are then fitted on all development rows and scored once on
the untouched final period. That very model is what MLflow registers and the bundle carries, so
the bundle's metrics are honest out-of-sample figures of the exact artifact that serves.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import typer
from mlflow import MlflowClient

from cascade_ml.contracts.columns import FWD_RV
from cascade_ml.contracts.layout import predictions_path
from cascade_ml.data.store import MarketStore
from cascade_ml.models import tracking
from cascade_ml.models.bundle import export_bundle
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.dataset import Dataset, load_dataset
from cascade_ml.models.evaluate import EvalResult, walk_forward
from cascade_ml.tracking import TrackingConfig, connect

log = logging.getLogger(__name__)


@dataclass
class TrainReport:
    """What one train run produced."""

    symbol: str
    horizon: int
    result: EvalResult
    run_id: str | None = None
    version: str | None = None
    promoted: bool = False
    reason: str = ""
    bundle_path: Path | None = None
    predictions_path: Path | None = None
    report_path: Path | None = None
    params: dict = field(default_factory=dict)


def summary(ds: Dataset, cfg: ModelConfig, result: EvalResult) -> dict:
    """The evaluation JSON: walk-forward metrics at the top level, the final period beside."""
    wf = result.metrics["walk_forward"]
    out = {"symbol": ds.symbol, "horizon": ds.horizon, "folds": cfg.n_folds,
           "rows": {"development": len(result.dev_rows), "final": len(result.final_rows)},
           "span": {"start": ds.span[0], "end": ds.span[1],
                    "final_start": str(result.final_rows[0]) if len(result.final_rows) else None},
           "volatility": wf["volatility"], "cascade": wf.get("cascade"),
           "final": result.metrics["final"], "per_fold": result.metrics["folds"],
           "holdout_periods": result.metrics.get("holdout", {})}
    return json.loads(json.dumps(out, default=float))


def table(metrics: dict, title: str) -> str:
    """A short model-vs-baselines text table of one evaluation block."""
    vol = metrics["volatility"]
    lines = [f"{title} ({metrics['rows']} rows, {metrics['start'][:10]}..{metrics['end'][:10]})",
             f"  {'volatility':<12}{'QLIKE':>8}{'MSE log':>9}{'MZ R2':>8}{'utility':>9}"]
    rows = {"model": vol["model"], **vol["baselines"]}
    for name, m in rows.items():
        lines.append(f"  {name:<12}{m['qlike']:>8.4f}{m['mse_log']:>9.4f}{m['mz_r2']:>8.3f}"
                     f"{m.get('realised_utility', float('nan')):>9.4f}")
    if "dm_pvalue_vs_best" in vol:
        lines.append(f"  model vs {vol['best_baseline']}: QLIKE gain "
                     f"{100 * vol['qlike_gain_vs_best']:+.1f}%, "
                     f"DM p={vol['dm_pvalue_vs_best']:.3g}")
    if "utility_gain_vs_har" in vol:
        lines.append(f"  realised utility (share of the perfect forecast's, "
                     f"{vol['utility_windows']} non-overlapping windows): model minus HAR "
                     f"{vol['utility_gain_vs_har']:+.4f}")
    if metrics.get("cascade"):
        cas = metrics["cascade"]
        lines.append(f"  {'cascade':<12}{'PR-AUC':>8}{'ROC-AUC':>9}{'Brier':>8}{'BSS':>8}"
                     f"   base rate {cas['base_rate']:.4f}")
        for name, m in {"model": cas["model"], **cas["baselines"]}.items():
            lines.append(f"  {name:<12}{m['pr_auc']:>8.4f}{m['roc_auc']:>9.4f}{m['brier']:>8.4f}"
                         f"{m['bss']:>8.3f}")
    return "\n".join(lines)


def evaluate_symbol(store: MarketStore, symbol: str, horizon: int, cfg: ModelConfig,
                    params: dict | None = None) -> tuple[Dataset, EvalResult]:
    """Walk-forward and final-period evaluation of one symbol at horizon H (nothing logged)."""
    ds = load_dataset(store, symbol, horizon, cfg.features, cfg.exclude_features)
    return ds, walk_forward(ds, cfg, params)


def log_evaluation(ds: Dataset, cfg: ModelConfig, tracking_cfg: TrackingConfig,
                   result: EvalResult, report_dir: Path | None) -> tuple[str, Path]:
    """Log an evaluation run (metrics, plots; nothing registered) and write its HTML report
    with the plots to ``report_dir`` (default ``<reports_dir>/<SYMBOL>``).

    Returns the MLflow run id and the report's path."""
    client, exp_id = connect(tracking_cfg, cfg.experiment)
    with tempfile.TemporaryDirectory(prefix="cascade-eval-") as tmp:
        plots_dir = Path(tmp) / "plots"
        figures = write_plots(ds, cfg, result, plots_dir)
        logged = tracking.log_run(
            client, exp_id, cfg=cfg, symbol=ds.symbol, horizon=ds.horizon,
            ds_info={"feature_names": ds.feature_names, "hashes": ds.hashes,
                     "spans": {"data_start": ds.span[0], "data_end": ds.span[1]}},
            metrics=result.metrics, plots_dir=plots_dir, params=None)
        about = {**data_facts(ds, result),
                 "MLflow run": f"{logged['run_id']} (evaluation: nothing registered)"}
        folder = Path(report_dir) if report_dir is not None else cfg.reports_dir / ds.symbol
        path = publish_report(client, logged["run_id"], ds, cfg, result, figures, folder, about)
    return logged["run_id"], path


def write_plots(ds: Dataset, cfg: ModelConfig, result: EvalResult, folder: Path) -> list[Path]:
    """Every evaluation figure as PNG into ``folder``; returns the files."""
    from cascade_ml.models.plots import write_all

    rows = result.dev_rows
    take = rows[np.linspace(0, len(rows) - 1, min(cfg.shap_sample, len(rows))).astype(int)]
    best = result.metrics["walk_forward"]["volatility"].get("best_baseline")
    final_fold = cfg.n_folds if len(result.final_rows) else None
    return write_all(result.oos, ds.labels, result.vol_model, result.cascade_model, ds.X(take),
                     ds.feature_names, folder, best=best, final_fold=final_fold)


def data_facts(ds: Dataset, result: EvalResult) -> dict[str, str]:
    """What the evaluation ran on, for the report's summary."""
    final = result.final_rows
    return {"data": f"{ds.span[0]} .. {ds.span[1]}",
            "development rows": f"{len(result.dev_rows)} ({result.dev_rows[0]} .. "
                                f"{result.dev_rows[-1]})",
            "final-period rows": (f"{len(final)} ({final[0]} .. {final[-1]})" if len(final)
                                  else "none"),
            "features": str(len(ds.feature_names))}


def publish_report(client: MlflowClient, run_id: str, ds: Dataset, cfg: ModelConfig,
                   result: EvalResult, figures: list[Path], folder: Path,
                   about: dict[str, str]) -> Path:
    """Write the HTML report (and its PNGs) into ``folder`` and log it to the MLflow run."""
    from cascade_ml.models.report import write_evaluation_report

    path = write_evaluation_report(folder, ds.symbol, ds.horizon, result.metrics, result.oos,
                                   ds.labels, cfg.n_folds, cfg.alert_threshold, figures, about)
    client.log_artifact(run_id, str(path))
    return path


def train_symbol(store: MarketStore, symbol: str, horizon: int, cfg: ModelConfig,
                 tracking_cfg: TrackingConfig, *, log_model: tracking.LogModel,
                 tune_trials: int = 0, force: bool = False, plots: bool = True) -> TrainReport:
    """Evaluate, log, register, promote by rule, export the champion and write OOS predictions;
    with ``plots``, also the figures and ``<reports_dir>/<SYMBOL>/evaluation.html``.

    ``log_model``: logs the bundle as the registered pyfunc
    (``cascade_ml.forecasting.pyfunc.log_forecast_model``, above this layer)."""
    ds = load_dataset(store, symbol, horizon, cfg.features, cfg.exclude_features)
    params: dict = {}
    if tune_trials:
        from cascade_ml.models.tuning import tune

        params, study = tune(ds, cfg, tune_trials)
        log.info("tuning: best mean QLIKE %s with %s", study.best_value if params else None, params)
    result = walk_forward(ds, cfg, params or None)
    report = TrainReport(symbol, horizon, result, params=params)
    report.predictions_path = store.write_table(
        predictions_path(symbol, horizon), result.oos,
        {"symbol": symbol, "horizon": horizon, "folds": cfg.n_folds,
         "final_fold": cfg.n_folds, "inputs": ds.hashes})

    client, exp_id = connect(tracking_cfg, cfg.experiment)
    final = result.final_rows
    champ_q = tracking.champion_qlike(
        client, symbol, horizon, ds.X(final) if len(final) else None,
        ds.labels.loc[final, FWD_RV].to_numpy(float) if len(final) else None,
        ds.feature_names)
    with tempfile.TemporaryDirectory(prefix="cascade-train-") as tmp:
        tmp = Path(tmp)
        plots_dir = tmp / "plots"
        figures = write_plots(ds, cfg, result, plots_dir) if plots else []
        spans = {"data_start": ds.span[0], "data_end": ds.span[1],
                 "train_start": str(result.dev_rows[0]), "train_end": str(result.dev_rows[-1]),
                 "final_start": str(final[0]) if len(final) else "",
                 "final_end": str(final[-1]) if len(final) else ""}
        headline = result.metrics["final"] or result.metrics["walk_forward"]

        def make_bundle(version: str, model_name: str) -> Path:
            return export_bundle(
                tmp / "bundle", result.vol_model, result.cascade_model, version=version,
                model_name=model_name, symbol=symbol, horizon=horizon, interval=ds.interval,
                feature_names=ds.feature_names,
                training_span={"start": spans["train_start"], "end": spans["train_end"]},
                metrics={"final": headline, "walk_forward": result.metrics["walk_forward"]},
                config={**cfg.model_dump(mode="json"), "tuned": params})

        logged = tracking.log_run(
            client, exp_id, cfg=cfg, symbol=symbol, horizon=horizon,
            ds_info={"feature_names": ds.feature_names, "spans": spans, "hashes": ds.hashes},
            metrics=result.metrics, plots_dir=plots_dir if plots else None, params=params,
            make_bundle=make_bundle, log_model=log_model,
            example=ds.features.loc[result.dev_rows[-5:]])
        report.run_id, report.version = logged["run_id"], logged["version"]
        report.promoted, report.reason = tracking.decide_promotion(
            tracking.headline(headline), champ_q, force)
        if report.promoted:
            tracking.set_champion(client, symbol, horizon, report.version)
        if plots:
            about = {**data_facts(ds, result), "MLflow run": str(report.run_id),
                     "registered": f"{tracking.model_name(symbol, horizon)} v{report.version}",
                     "promotion": f"{'PROMOTED' if report.promoted else 'not promoted'}: "
                                  f"{report.reason}"}
            if params:
                about["tuned parameters"] = json.dumps(params, default=str)
            report.report_path = publish_report(client, report.run_id, ds, cfg, result,
                                                figures, cfg.reports_dir / symbol, about)
    if tracking.champion_version(client, tracking.model_name(symbol, horizon)):
        report.bundle_path = tracking.export_champion(client, symbol, horizon, cfg.models_dir)
    return report


def promote(symbol: str, horizon: int, cfg: ModelConfig, tracking_cfg: TrackingConfig,
            version: str | None = None, force: bool = False) -> tuple[bool, str, Path | None]:
    """Apply the promotion rule to a registered version (default: the latest) and export."""
    from cascade_ml.errors import CascadeError

    client, _ = connect(tracking_cfg, cfg.experiment)
    name = tracking.model_name(symbol, horizon)
    versions = client.search_model_versions(f"name='{name}'")
    if not versions:
        raise CascadeError(f"no registered model {name}", hint="run `cascade-ml train` first")
    if version is None:
        cand = max(versions, key=lambda v: int(v.version))
    else:
        match = [v for v in versions if str(v.version) == str(version)]
        if not match:
            raise CascadeError(f"{name} has no version {version}",
                               hint=f"versions: {sorted(int(v.version) for v in versions)}")
        cand = match[0]
    champ = tracking.champion_version(client, name)
    champ_q = None
    if champ is not None and str(champ.version) != str(cand.version) and "qlike" in champ.tags:
        champ_q = float(champ.tags["qlike"])
    head = {k: float(cand.tags[k]) for k in ("qlike", "best_baseline_qlike") if k in cand.tags}
    if len(head) < 2 and not force:
        raise CascadeError(f"{name} v{cand.version} has no evaluation tags to judge it by")
    ok, reason = tracking.decide_promotion(head, champ_q, force) if head or force else (False, "")
    path = None
    if ok:
        tracking.set_champion(client, symbol, horizon, cand.version)
        path = tracking.export_champion(client, symbol, horizon, cfg.models_dir)
    return ok, f"v{cand.version}: {reason}", path


def print_report(report: TrainReport) -> None:
    """The model-vs-baselines tables of a train run, then what was registered and exported."""
    m = report.result.metrics
    typer.echo(table(m["walk_forward"], f"{report.symbol} h={report.horizon} walk-forward "
                                        f"({len(m['folds'])} folds)"))
    if m["final"]:
        typer.echo(table(m["final"], f"{report.symbol} final period (untouched by tuning)"))
    for name, block in m.get("holdout", {}).items():
        typer.echo(table(block, f"{report.symbol} held-out period {name} (scored once)"))
    typer.echo(f"run {report.run_id}; registered "
               f"{tracking.model_name(report.symbol, report.horizon)} v{report.version}; "
               f"{'PROMOTED' if report.promoted else 'not promoted'}: {report.reason}")
    typer.echo(f"bundle: {report.bundle_path or 'none (no champion yet)'}; "
               f"OOS predictions: {report.predictions_path}")
    if report.report_path is not None:
        typer.echo(f"evaluation report: {report.report_path}")

