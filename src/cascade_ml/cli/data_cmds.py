"""`cascade-ml ingest` and `cascade-ml data summary`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from cascade_ml.config import PipelineConfig
    from cascade_ml.data.ingest import IngestReport
    from cascade_ml.data.store import MarketStore

_RULES = ("replace", "keep", "error")


def _store(pipeline: Path | None, store: Path | None) -> tuple[PipelineConfig, MarketStore]:
    from cascade_ml.config import load_pipeline
    from cascade_ml.data.store import MarketStore

    config = load_pipeline(pipeline)
    return config, MarketStore(store or config.store.root)


def ingest_cmd(
    path: Path | None = typer.Argument(None, help="File or folder of raw data; omit to ingest "
                                       "the pipeline's configured sources."),
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
    store: Path | None = typer.Option(None, "--store", help="Store folder (default: store.root)."),
    on_conflict: str | None = typer.Option(None, "--on-conflict",
                                           help="replace (default), keep or error."),
    venue: str | None = typer.Option(None, "--venue", help="Override the venue of every file."),
    exchange: str | None = typer.Option(None, "--exchange",
                                        help="Fetch from an exchange via ccxt, e.g. binanceusdm."),
    symbols: str | None = typer.Option(None, "--symbols", help="With --exchange: e.g. NEAR,BTC."),
    datasets: str = typer.Option("ohlcv,funding", "--datasets",
                                 help="With --exchange: ohlcv, funding, open_interest."),
    timeframe: str = typer.Option("1h", "--timeframe", help="With --exchange: bar interval."),
    since: str | None = typer.Option(None, "--since",
                                     help="With --exchange: first time when the store is empty."),
) -> None:
    """Ingest files, an exchange, or the pipeline's sources; print what was loaded, skipped and
    failed. Exits 1 when any input failed (nothing of a failed input is written)."""
    from cascade_ml.data.ingest import ingest_path, ingest_sources
    from cascade_ml.errors import ConfigError

    if on_conflict is not None and on_conflict not in _RULES:
        raise ConfigError(f"unknown --on-conflict {on_conflict!r}; use one of {list(_RULES)}")
    config, market_store = _store(pipeline, store)
    rule = on_conflict or config.store.on_conflict
    if exchange is not None:
        if path is not None:
            raise ConfigError("give either PATH or --exchange, not both")
        report = _ingest_exchange(market_store, config, exchange, symbols, datasets, timeframe,
                                  since, rule)
    elif path is not None:
        report = ingest_path(market_store, path, venue=venue, on_conflict=rule)
    else:
        if not config.sources:
            raise ConfigError("no PATH given and the pipeline configures no sources")
        report = ingest_sources(market_store, config.sources, config.task.all_symbols, rule,
                                progress=True)
    typer.echo(report.format())
    if report.failed:
        raise typer.Exit(1)


def _ingest_exchange(store: MarketStore, config: PipelineConfig, exchange: str,
                     symbols: str | None, datasets: str, timeframe: str, since: str | None,
                     rule: str) -> IngestReport:
    from pydantic import ValidationError

    from cascade_ml.data.config import ExchangeSourceConfig
    from cascade_ml.data.sources.exchange import ingest_exchange, make_exchange
    from cascade_ml.errors import ConfigError

    wanted = [d.strip() for d in datasets.split(",") if d.strip()]
    try:
        source = ExchangeSourceConfig(exchange=exchange, datasets=wanted, timeframe=timeframe,
                                      since=since)
    except ValidationError as exc:
        raise ConfigError(f"bad exchange options: {exc.errors()[0]['msg']} "
                          f"(datasets {wanted})") from exc
    names = ([s.strip() for s in symbols.split(",") if s.strip()] if symbols
             else config.task.all_symbols)
    return ingest_exchange(store, source, names, on_conflict=rule,
                           exchange=make_exchange(exchange), progress=True)


def summary_cmd(
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
    store: Path | None = typer.Option(None, "--store", help="Store folder (default: store.root)."),
) -> None:
    """Print each stored partition: span, rows, gaps (steps > 1.5x interval) and staleness."""
    from cascade_ml.data.summary import format_summary, summarize

    _, market_store = _store(pipeline, store)
    typer.echo(f"store: {market_store.root}")
    typer.echo(format_summary(summarize(market_store)))


def register(app: typer.Typer) -> None:
    """Attach the data commands to the top-level app."""
    app.command("ingest")(ingest_cmd)
    data_app = typer.Typer(help="Inspect the market-data store.", no_args_is_help=True)
    data_app.command("summary")(summary_cmd)
    app.add_typer(data_app, name="data")
