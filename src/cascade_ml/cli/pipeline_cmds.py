"""`cascade-ml run FILE`: run a whole pipeline, step by step."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Attach `run` to the top-level app."""

    @app.command("run")
    def run(
        pipeline: Path = typer.Argument(..., help="Pipeline YAML file, e.g. pipelines/near.yaml."),
        steps: str = typer.Option("", help="Comma-separated subset of the file's steps."),
    ) -> None:
        """Run the pipeline's steps in order (ingest, summary, features, labels, train, backtest,
        score)."""
        from cascade_ml.config import load_pipeline
        from cascade_ml.pipeline import run_pipeline

        config = load_pipeline(pipeline)
        run_pipeline(config, only=[s for s in steps.split(",") if s] or None)
