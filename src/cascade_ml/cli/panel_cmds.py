"""`cascade-ml panel evaluate`, `tune` and `compare`: the universe panel outside a run.

Both read the stacked panel table the pipeline's features and labels steps wrote
(`panel/h=H/panel.parquet` in the store) and run on the pipeline's `compute` engine.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cascade_ml.errors import ConfigError

panel_app = typer.Typer(help="The universe panel: evaluation and tuning (pipelines with "
                        "panel.enabled).", no_args_is_help=True)


def _config(pipeline: Path | None):
    from cascade_ml.config import load_pipeline

    config = load_pipeline(pipeline)
    if not config.panel.enabled:
        raise ConfigError("this pipeline has no panel (panel.enabled is false)",
                          str(pipeline or "(defaults)"),
                          hint="e.g. --pipeline pipelines/universe.yaml")
    return config


@panel_app.command("evaluate")
def evaluate(
    json_path: Path = typer.Option(..., "--json", help="Where to write the evaluation JSON."),
    tune: int | None = typer.Option(None, "--tune", min=0, help="Optuna trials first "
                                    "(default: panel.tune_trials)."),
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
) -> None:
    """Walk-forward, final period and left-out symbols of the panel against the per-symbol
    baselines; writes the evaluation JSON and prints the per-symbol tables (no bundle export)."""
    from cascade_ml.atomic import write_json
    from cascade_ml.compute import engine
    from cascade_ml.data.store import MarketStore
    from cascade_ml.panel.report import periods, table
    from cascade_ml.panel.run import evaluate_doc

    config = _config(pipeline)
    with engine(config.compute) as eng:
        doc, _, _ = evaluate_doc(eng, MarketStore(config.store.root), config.task, config.panel,
                                 alert_threshold=config.models.alert_threshold,
                                 tune_trials=tune)
    from cascade_ml.panel.page import write_page
    from cascade_ml.panel.report import attribution_lines

    write_json(json_path, doc)
    page = write_page(doc, json_path.with_suffix(".html"))
    for period in periods(doc):
        typer.echo(table(doc, period))
    typer.echo(attribution_lines(doc))
    typer.echo(f"evaluation -> {json_path}, {page}")


@panel_app.command("tune")
def tune(
    trials: int = typer.Option(..., "--trials", min=1, help="Trials to add to the study."),
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
) -> None:
    """Optuna trials of the panel LightGBM correction on the development folds, spread over the
    compute workers; the study lives in panel.optuna_storage."""
    from cascade_ml.compute import engine
    from cascade_ml.data.store import MarketStore
    from cascade_ml.panel.evaluate import time_folds
    from cascade_ml.panel.run import read_panel
    from cascade_ml.panel.tune import tune_panel

    config = _config(pipeline)
    panel = read_panel(MarketStore(config.store.root), config.task, config.panel)
    folds = time_folds(panel, config.panel)
    with engine(config.compute) as eng:
        result = tune_panel(eng, panel, config.panel, folds, config.task.bar, trials)
    typer.echo(f"study {result['study']} ({config.panel.optuna_storage}): {result['trials']} "
               f"trials, {result.get('complete', 0)} complete, per worker "
               f"{result.get('per_worker', {})}; best {result.get('best_value')} with "
               f"{result['params']}")


@panel_app.command("compare")
def compare(
    old: Path = typer.Argument(..., help="The first evaluation JSON (e.g. without the long "
                               "history)."),
    new: Path = typer.Argument(..., help="The second evaluation JSON, on the same final rows."),
    period: list[str] = typer.Option(["walk_forward", "final"], "--period",
                                     help="Periods to print (repeat the option)."),
    html: Path | None = typer.Option(None, "--html", help="Also write NEW's evaluation page "
                                     "with the old/new table here."),
) -> None:
    """Two panel evaluations side by side per symbol: QLIKE against the best baseline and HAR,
    realised utility, cascade PR-AUC; the row counts show whether the rows are the same."""
    from cascade_ml.atomic import read_json
    from cascade_ml.errors import CascadeError
    from cascade_ml.panel.compare import compare_docs, format_compare

    docs = []
    for path in (old, new):
        doc = read_json(path)
        if not doc or "per_symbol" not in doc:
            raise CascadeError("not a panel evaluation JSON", str(path),
                               hint="write one with `cascade-ml panel evaluate --json`")
        docs.append(doc)
    for name in period:
        typer.echo(format_compare(compare_docs(docs[0], docs[1], name), name))
    if html is not None:
        from cascade_ml.panel.page import write_page

        typer.echo(f"page -> {write_page(docs[1], html, old=docs[0])}")


def register(app: typer.Typer) -> None:
    """Attach `cascade-ml panel ...` to the top-level app."""
    app.add_typer(panel_app, name="panel")
