"""Run a pipeline's steps in order; each step lives in the module that owns its layer."""

from __future__ import annotations

import importlib
import logging
import time

import typer

from cascade_ml.config import STEPS, PipelineConfig
from cascade_ml.errors import ConfigError

log = logging.getLogger(__name__)

# Each step is a `run_step(config: PipelineConfig) -> None` in the module that owns the layer.
STEP_MODULES: dict[str, str] = {
    "ingest": "cascade_ml.data.ingest",
    "summary": "cascade_ml.data.summary",
    "features": "cascade_ml.features.build",
    "labels": "cascade_ml.labels.build",
    "train": "cascade_ml.models.train",
    "backtest": "cascade_ml.backtest.run",
    "score": "cascade_ml.serving.scoring",
}
assert set(STEP_MODULES) == set(STEPS)


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
        module = importlib.import_module(STEP_MODULES[step])
        module.run_step(config)
        log.info("step %s took %.1f s", step, time.perf_counter() - started)
