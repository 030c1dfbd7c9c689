"""The one loader: a bundle folder -> the forecaster of its kind, checked against the task.

Where a task's forecaster lives: a models folder either holds one bundle itself (the universe's
panel bundle, ``panel.bundle_dir``; it serves every symbol) or one folder per symbol
(``models/<SYMBOL>``, ``contracts.layout.bundle_dir``). The kind is read from ``bundle.json``
(``kind: panel``; ``symbol`` or absent for a per-symbol bundle), never guessed by the caller.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cascade_ml.contracts.layout import bundle_dir
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.errors import ModelBundleError
from cascade_ml.forecasting.protocol import Forecaster
from cascade_ml.models.bundle import BUNDLE_FILE, load_bundle, read_meta
from cascade_ml.models.bundle import KIND as SYMBOL_KIND
from cascade_ml.panel.bundle import KIND as PANEL_KIND
from cascade_ml.panel.bundle import load_panel_bundle

LOADERS = {SYMBOL_KIND: load_bundle, PANEL_KIND: load_panel_bundle}
"""Bundle kind (``bundle.json`` ``kind``) -> its loader: a new model kind adds one entry."""


def forecaster_dir(models_dir: str | Path, symbol: str) -> Path:
    """The folder whose bundle serves ``symbol``: ``models_dir`` itself when it holds a bundle
    (the universe's), else ``models_dir/<SYMBOL>``."""
    models_dir = Path(models_dir)
    return models_dir if (models_dir / BUNDLE_FILE).exists() else bundle_dir(models_dir, symbol)


def read_forecaster(folder: str | Path) -> Forecaster:
    """The bundle in ``folder`` as the forecaster of its kind (no task check: the pyfunc and
    tools use this; serving code uses ``load_forecaster``)."""
    folder = Path(folder)
    kind = read_meta(folder, hint="run the train step first").get("kind", SYMBOL_KIND)
    if kind not in LOADERS:
        raise ModelBundleError(f"unknown bundle kind {kind!r}", str(folder / BUNDLE_FILE),
                               hint=f"known kinds: {sorted(LOADERS)}")
    return LOADERS[kind](folder)


def check_task(forecaster: Forecaster, symbol: str, task: TaskConfig, where: str) -> None:
    """Refuse a forecaster that does not serve ``symbol`` or was trained for another horizon or
    bar interval (its forecast would be read as one over the task's horizon)."""
    if not forecaster.serves(symbol):
        raise ModelBundleError(f"the bundle serves {forecaster.symbols}, not {symbol}", where)
    if forecaster.horizon != task.horizon:
        raise ModelBundleError(f"bundle forecasts {forecaster.horizon} bars ahead but "
                               f"task.horizon is {task.horizon}", where,
                               hint="retrain or fix the task")
    if not forecaster.interval:
        raise ModelBundleError("bundle.json records no bar interval (exported before format 2)",
                               where, hint="retrain it")
    try:
        same = pd.Timedelta(forecaster.interval) == task.bar
    except ValueError:
        same = False
    if not same:
        raise ModelBundleError(f"bundle was trained on {forecaster.interval} bars but "
                               f"task.interval is {task.interval}", where,
                               hint="retrain or fix the task")


def load_forecaster(models_dir: str | Path, symbol: str, task: TaskConfig) -> Forecaster:
    """The forecaster that serves ``symbol`` under ``models_dir``, checked against the task."""
    folder = forecaster_dir(models_dir, symbol)
    forecaster = read_forecaster(folder)
    check_task(forecaster, symbol, task, str(folder))
    return forecaster
