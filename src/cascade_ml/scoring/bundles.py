"""The bundle that serves a symbol, checked against the task before anything is scored with it."""

from __future__ import annotations

from pathlib import Path

from cascade_ml.contracts.layout import bundle_dir
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.errors import ModelBundleError
from cascade_ml.models.bundle import ForecastBundle, load_bundle


def load_serving_bundle(models_dir: Path, symbol: str, task: TaskConfig) -> ForecastBundle:
    """Load ``symbol``'s bundle; a bundle trained for another horizon is refused (its forecast
    would be read by the policy as a forecast over the task's horizon)."""
    path = bundle_dir(models_dir, symbol)
    bundle = load_bundle(path)
    if bundle.horizon != task.horizon:
        raise ModelBundleError(f"bundle forecasts {bundle.horizon} bars ahead but task.horizon "
                               f"is {task.horizon}", str(path), hint="retrain or fix the task")
    return bundle
