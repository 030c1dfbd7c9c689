"""`cascade-ml score` (batch scoring, schedule-friendly) and `cascade-ml serve` (the service)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cascade_ml.config import PipelineConfig, load_pipeline

if TYPE_CHECKING:
    from fastapi import FastAPI


def score_cmd(
    symbols: str | None = typer.Option(
        None, "--symbols", help="Comma-separated, e.g. NEAR,BTC; default: task.symbols."),
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
) -> None:
    """Fetch new data (when sources are configured), update features (the panel table in universe
    mode), score the newest rows with the bundle serving each symbol; exit 1 if any failed."""
    from cascade_ml.pipeline import score_symbols

    config = load_pipeline(pipeline)
    wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()] if symbols else None
    results = score_symbols(config, wanted, ingest=True, features=True)
    for result in results:
        typer.echo(result.summary())
    if any(not r.ok for r in results):
        # SystemExit, not typer.Exit: click returns (does not raise) Exit codes when the CLI runs
        # with standalone_mode=False, which would turn a failure into exit 0 for a scheduler.
        raise SystemExit(1)


def build_app(config: PipelineConfig, *, token: str | None = None, poll: bool = True,
              noop_route: bool = False) -> FastAPI:
    """The service for a pipeline file: its task, serving and policy sections, its store and the
    bundle folder the train step exports to (``models.models_dir``, or ``panel.bundle_dir`` when
    the panel is enabled)."""
    from cascade_ml.data.store import MarketStore
    from cascade_ml.serving.app import create_app

    return create_app(config.task, config.serving, config.policy,
                      store=MarketStore(config.store.root),
                      models_dir=config.forecasters_dir, token=token, poll=poll,
                      noop_route=noop_route)


def serve_cmd(
    host: str | None = typer.Option(None, "--host", help="Default: serving.host (127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Default: serving.port (8000)."),
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
    noop_route: bool = typer.Option(False, "--noop-route", help="Add GET /v1/noop (benchmarks)."),
) -> None:
    """Run the forecast/decision service under uvicorn (token from $CASCADE_ML_TOKEN)."""
    from cascade_ml.serving.server import serve

    config = load_pipeline(pipeline)
    serve(build_app(config, noop_route=noop_route), config.serving, host, port)


def register(app: typer.Typer) -> None:
    """Attach this area's commands to the top-level app."""
    app.command("score")(score_cmd)
    app.command("serve")(serve_cmd)
