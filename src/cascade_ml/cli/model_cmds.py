"""`cascade-ml train`, `cascade-ml evaluate`, `cascade-ml promote`: the forecast models."""

from __future__ import annotations

from pathlib import Path

import typer

from cascade_ml.errors import CascadeError


def _config(pipeline: Path | None):
    from cascade_ml.config import load_pipeline

    return load_pipeline(pipeline)


def train(
    symbol: str = typer.Option(..., "--symbol", help="Base asset, e.g. NEAR."),
    tune: int = typer.Option(0, "--tune", min=0, help="Optuna trials before training."),
    force: bool = typer.Option(False, "--force", help="Promote even if the rule says no."),
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
) -> None:
    """Walk-forward evaluate, fit on the development span, log to MLflow, register, promote by
    rule, export the champion bundle to models/<SYMBOL>/ and write OOS predictions."""
    from cascade_ml.data.store import MarketStore
    from cascade_ml.forecasting.pyfunc import log_forecast_model
    from cascade_ml.models.train import print_report, train_symbol

    config = _config(pipeline)
    cfg = config.models
    report = train_symbol(MarketStore(config.store.root), symbol, config.task.horizon, cfg,
                          config.tracking, log_model=log_forecast_model,
                          tune_trials=tune or cfg.tune_trials, force=force)
    print_report(report)


def evaluate(
    symbol: str = typer.Option(..., "--symbol", help="Base asset, e.g. NEAR."),
    json_path: Path = typer.Option(..., "--json", help="Where to write the metrics JSON."),
    report_dir: Path | None = typer.Option(
        None, "--report-dir",
        help="Folder of the HTML report and its plots (default: models.reports_dir/<SYMBOL>)."),
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
) -> None:
    """Out-of-sample metrics of the models and every baseline (walk-forward + final period)."""
    from cascade_ml.atomic import write_json
    from cascade_ml.data.store import MarketStore
    from cascade_ml.models.train import (
        evaluate_symbol,
        log_evaluation,
        summary,
        table,
    )

    config = _config(pipeline)
    cfg = config.models
    ds, result = evaluate_symbol(MarketStore(config.store.root), symbol, config.task.horizon, cfg)
    out = summary(ds, cfg, result)
    out["mlflow_run_id"], report = log_evaluation(ds, cfg, config.tracking, result, report_dir)
    write_json(json_path, out)
    typer.echo(table(result.metrics["walk_forward"], f"{symbol} walk-forward"))
    if result.metrics["final"]:
        typer.echo(table(result.metrics["final"], f"{symbol} final period"))
    typer.echo(f"metrics: {json_path}; report: {report}")


def promote(
    symbol: str = typer.Option(..., "--symbol", help="Base asset, e.g. NEAR."),
    version: str | None = typer.Option(None, "--version", help="Registered version (default: "
                                       "the latest)."),
    force: bool = typer.Option(False, "--force", help="Promote even if the rule says no."),
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
) -> None:
    """Make a registered version the champion if it passes the rule, and export its bundle."""
    from cascade_ml.models.train import promote as do_promote

    config = _config(pipeline)
    ok, reason, path = do_promote(symbol, config.task.horizon, config.models, config.tracking,
                                  version, force)
    if not ok:
        raise CascadeError(f"not promoted: {reason}", hint="use --force to override")
    typer.echo(f"promoted {reason}; bundle exported to {path}")


def register(app: typer.Typer) -> None:
    """Attach the model commands to the top-level app."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("promote")(promote)
