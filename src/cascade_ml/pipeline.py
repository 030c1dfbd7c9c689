"""The adapters from the pipeline file to the layers, and the runner that calls them in order.

This is the one place that reads a whole ``PipelineConfig``: each step hands its layer only the
store, the shared ``task`` and that layer's own section (plus ``tracking`` where runs are
logged). Layers never import this module or ``cascade_ml.config``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import typer

from cascade_ml.config import STEPS, PipelineConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError, ConfigError

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


def features_step(config: PipelineConfig) -> None:
    """Features for every symbol of the task, one report line each."""
    from cascade_ml.features.build import build_and_store

    store = MarketStore(config.store.root)
    for symbol in config.task.symbols:
        typer.echo(build_and_store(store, symbol, config.task, config.features).line())


def labels_step(config: PipelineConfig) -> None:
    """Labels at the task's horizon and side for every symbol, with the cascade base rate."""
    from cascade_ml.labels.build import build_and_store_labels

    store = MarketStore(config.store.root)
    for symbol in config.task.symbols:
        typer.echo(build_and_store_labels(store, symbol, config.task, config.labels,
                                          oi_venues=config.features.oi_venues).line())


def train_step(config: PipelineConfig) -> None:
    """Evaluate, track, register, promote and export every symbol's models."""
    from cascade_ml.models.train import print_report, train_symbol

    store = MarketStore(config.store.root)
    for symbol in config.task.symbols:
        report = train_symbol(store, symbol, config.task.horizon, config.models, config.tracking,
                              tune_trials=config.models.tune_trials)
        print_report(report)


def backtest_step(config: PipelineConfig) -> None:
    """Backtest every symbol of the task; JSON and plots into the backtest report folder."""
    from cascade_ml.backtest.run import run_backtest

    store = MarketStore(config.store.root)
    out = config.backtest.report_dir
    for symbol in config.task.symbols:
        run_backtest(store, symbol, config.task, config.backtest, config.policy, config.tracking,
                     json_path=out / f"{symbol}_backtest.json", report_dir=out)


def score_step(config: PipelineConfig) -> None:
    """Score the newest bars of every symbol; raise if any symbol failed."""
    from cascade_ml.serving.scoring import score

    results = score(MarketStore(config.store.root), config, update="ingest" not in config.steps)
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
