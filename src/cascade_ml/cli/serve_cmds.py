"""`cascade-ml score` (batch scoring, schedule-friendly) and `cascade-ml serve` (the service)."""

from __future__ import annotations

from pathlib import Path

import typer

from cascade_ml.config import load_pipeline


def score_cmd(
    symbols: str | None = typer.Option(None, "--symbols", help="Comma-separated, e.g. NEAR,BTC."),
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
) -> None:
    """Score the newest feature rows with each symbol's bundle; exit 1 if any symbol failed."""
    from cascade_ml.data.store import MarketStore
    from cascade_ml.serving.scoring import score

    config = load_pipeline(pipeline)
    wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()] if symbols else None
    results = score(MarketStore(config.store.root), config, wanted)
    for result in results:
        typer.echo(result.summary())
    if any(not r.ok for r in results):
        # SystemExit, not typer.Exit: click returns (does not raise) Exit codes when the CLI runs
        # with standalone_mode=False, which would turn a failure into exit 0 for a scheduler.
        raise SystemExit(1)


def serve_cmd(
    host: str | None = typer.Option(None, "--host", help="Default: serving.host (127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Default: serving.port (8000)."),
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
    noop_route: bool = typer.Option(False, "--noop-route", help="Add GET /v1/noop (benchmarks)."),
) -> None:
    """Run the forecast/decision service under uvicorn (token from $CASCADE_ML_TOKEN)."""
    from cascade_ml.serving.server import serve

    serve(load_pipeline(pipeline), host, port, noop_route=noop_route)


def register(app: typer.Typer) -> None:
    """Attach this area's commands to the top-level app."""
    app.command("score")(score_cmd)
    app.command("serve")(serve_cmd)
