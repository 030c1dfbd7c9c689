"""The adapters from the pipeline file to the layers, and the runner that calls them in order.

This is the one place that reads a whole ``PipelineConfig``: each step hands its layer only the
store, the shared ``task`` and that layer's own section (plus ``tracking`` where runs are
logged). Layers never import this module or ``cascade_ml.config``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from cascade_ml.config import STEPS, PipelineConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError, ConfigError

if TYPE_CHECKING:
    from cascade_ml.scoring.score import ScoreResult

log = logging.getLogger(__name__)


def ingest_step(config: PipelineConfig) -> None:
    """Ingest every configured source, print the report, fail if any input did."""
    from cascade_ml.data.ingest import ingest_sources

    if not config.sources:
        typer.echo("no sources configured; nothing to ingest")
        return
    report = ingest_sources(MarketStore(config.store.root), config.sources,
                            config.task.all_symbols, config.store.on_conflict)
    typer.echo(report.format())
    if report.failed:
        raise CascadeError(f"{len(report.failed)} input(s) failed to ingest; see the report above")


def summary_step(config: PipelineConfig) -> None:
    """Print what the store holds."""
    from cascade_ml.data.summary import format_summary, summarize

    store = MarketStore(config.store.root)
    typer.echo(f"store: {store.root}")
    typer.echo(format_summary(summarize(store)))


def _engine(config: PipelineConfig):
    from cascade_ml.compute import engine

    return engine(config.compute)


def features_step(config: PipelineConfig) -> None:
    """Features for every symbol of the task, one report line each."""
    from cascade_ml.features.build import build_and_store

    store = MarketStore(config.store.root)
    if config.panel.enabled:  # the universe: one engine task per symbol
        from cascade_ml.panel.run import build_features_all

        with _engine(config) as eng:
            for line in build_features_all(eng, store, config.task, config.features):
                typer.echo(line)
        return
    for symbol in config.task.symbols:
        typer.echo(build_and_store(store, symbol, config.task, config.features).line())


def labels_step(config: PipelineConfig) -> None:
    """Labels at the task's horizon and side for every symbol, with the cascade base rate."""
    from cascade_ml.labels.build import build_and_store_labels

    store = MarketStore(config.store.root)
    if config.panel.enabled:  # per-symbol labels on the engine, then the stacked panel
        from cascade_ml.panel.run import build_labels_all, write_panel

        with _engine(config) as eng:
            for line in build_labels_all(eng, store, config.task, config.labels,
                                         config.features.oi_venues):
                typer.echo(line)
            panel = write_panel(eng, store, config.task, config.features, config.labels,
                                config.panel, config.features.oi_venues)
        typer.echo(f"panel: {len(panel.frame)} rows x {len(panel.inputs)} inputs, "
                   f"{len(panel.symbols)} symbols")
        return
    for symbol in config.task.symbols:
        typer.echo(build_and_store_labels(store, symbol, config.task, config.labels,
                                          oi_venues=config.features.oi_venues).line())


def train_step(config: PipelineConfig) -> None:
    """Evaluate, track, register, promote and export every symbol's models (the universe: one
    panel model, registered as ``cascade-ml-panel-h<H>`` and aliased champion)."""
    from cascade_ml.forecasting.pyfunc import log_forecast_model
    from cascade_ml.models.train import print_report, train_symbol

    store = MarketStore(config.store.root)
    if config.panel.enabled:
        from cascade_ml.forecasting.registry import train_and_register_panel
        from cascade_ml.panel.report import attribution_lines, periods, table

        with _engine(config) as eng:
            doc = train_and_register_panel(eng, store, config.task, config.panel,
                                           config.tracking, config.models.experiment,
                                           alert_threshold=config.models.alert_threshold)
        for period in periods(doc):
            typer.echo(table(doc, period))
        typer.echo(attribution_lines(doc))
        reg = doc["registered"]
        typer.echo(f"panel bundle {doc['bundle']['version']} -> {doc['bundle']['path']}; "
                   f"registered {reg['name']} v{reg['version']} @{reg['alias']}; "
                   f"evaluation -> {config.panel.report_dir / 'evaluation.json'}")
        return
    for symbol in config.task.symbols:
        report = train_symbol(store, symbol, config.task.horizon, config.models, config.tracking,
                              log_model=log_forecast_model,
                              tune_trials=config.models.tune_trials)
        print_report(report)


def backtest_step(config: PipelineConfig) -> None:
    """Backtest the task: one symbol alone (then the book when ``backtest.book.symbols`` is
    set), or, with several, the universe backtest of every symbol (the one-book view inside,
    per ``backtest.universe.book``); JSON, plots and the HTML report into the backtest report
    folder."""
    from cascade_ml.backtest.run import run_backtest, run_book_backtest

    store = MarketStore(config.store.root)
    out = config.backtest.report_dir
    symbols = list(config.task.symbols)
    if len(symbols) > 1:
        from cascade_ml.backtest.universe import run_universe_backtest

        holdout = config.panel.holdout_symbols if config.panel.enabled else []
        run_universe_backtest(store, symbols, config.task, config.backtest, config.trading,
                              config.policy, config.tracking, holdout=holdout,
                              compute=config.compute, json_path=out / "universe_backtest.json",
                              report_dir=out, symbol_json=True)
        if config.backtest.universe.book:
            return
    else:
        run_backtest(store, symbols[0], config.task, config.backtest, config.trading,
                     config.policy, config.tracking, json_path=out / f"{symbols[0]}_backtest.json",
                     report_dir=out)
    if config.backtest.book.symbols:
        run_book_backtest(store, config.backtest.book.symbols, config.task, config.backtest,
                          config.trading, config.policy, config.tracking,
                          json_path=out / "BOOK_backtest.json",
                          report_dir=out)


def refresh_for_scoring(config: PipelineConfig, symbols: list[str], *, ingest: bool,
                        features: bool) -> None:
    """Bring data and features up to date before scoring, for what this run does not do itself
    (a scheduled `cascade-ml score`, or a pipeline whose steps leave them out)."""
    from cascade_ml.features.build import build_and_store

    if ingest and config.sources:
        ingest_step(config)
    if features and config.panel.enabled:  # the panel table holds the universe's input rows
        from cascade_ml.panel.run import write_panel

        with _engine(config) as eng:
            write_panel(eng, MarketStore(config.store.root), config.task, config.features,
                        config.labels, config.panel, config.features.oi_venues)
    elif features:
        store = MarketStore(config.store.root)
        for symbol in symbols:
            if store.partitions("ohlcv", symbol):  # without bars the stored table is scored
                typer.echo(build_and_store(store, symbol, config.task, config.features).line())


def score_symbols(config: PipelineConfig, symbols: list[str] | None = None, *,
                  ingest: bool = False, features: bool = False) -> list[ScoreResult]:
    """Score ``symbols`` (default: every task symbol) after the refreshes asked for."""
    from cascade_ml.scoring.score import score

    wanted = symbols or list(config.task.symbols)
    refresh_for_scoring(config, wanted, ingest=ingest, features=features)
    return score(MarketStore(config.store.root), config.task, config.scoring, config.policy,
                 config.forecasters_dir, wanted)


def score_step(config: PipelineConfig) -> None:
    """Score the newest bars of every task symbol; raise if any symbol failed.

    Data and features are refreshed first only when this pipeline has no ingest / features step
    of its own (they already ran before this step otherwise). In universe mode the panel bundle
    scores every symbol through the same code (``config.forecasters_dir``).
    """
    results = score_symbols(config, ingest="ingest" not in config.steps,
                            features=("labels" if config.panel.enabled else "features")
                            not in config.steps)
    for result in results:
        typer.echo(result.summary())
    failed = [r.symbol for r in results if not r.ok]
    if failed:
        raise CascadeError(f"scoring failed for {failed}", "step score")


STEP_FUNCTIONS: dict[str, Callable[[PipelineConfig], None]] = {
    "ingest": ingest_step, "summary": summary_step, "features": features_step,
    "labels": labels_step, "train": train_step, "backtest": backtest_step, "score": score_step,
}
assert tuple(STEP_FUNCTIONS) == STEPS


def run_pipeline(config: PipelineConfig, only: list[str] | None = None) -> None:
    """Run the configured steps (or the subset ``only``) in the pipeline's order."""
    if only:
        unknown = [s for s in only if s not in config.steps]
        if unknown:
            raise ConfigError(f"step(s) {unknown} are not in this pipeline's steps {config.steps}")
    for step in config.steps:
        if only and step not in only:
            continue
        typer.secho(f"== {step} ==", bold=True)
        started = time.perf_counter()
        STEP_FUNCTIONS[step](config)
        log.info("step %s took %.1f s", step, time.perf_counter() - started)
