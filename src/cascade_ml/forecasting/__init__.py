"""The forecasting layer: one ``Forecaster`` protocol from fit to serve.

Every model kind (the per-symbol ``models.bundle.ForecastBundle``, the universe's
``panel.bundle.PanelBundle``) answers the same small protocol (``protocol.py``); ``loader.py`` is
the one place that picks the kind from ``bundle.json`` and checks it against the task. The
conversion of a forecast and its feature row to the policy's inputs (``inputs.py``), the merge of
scored rows into the scores table (``scores.py``) and the MLflow pyfunc (``pyfunc.py``,
``registry.py``) live here once. Scoring, serving, the live loop and monitoring use this layer and
never branch on the kind.

The loader's names are imported on first use (module ``__getattr__``): ``loader.py`` imports
both bundle kinds and so LightGBM and scikit-learn, which a backtest worker, needing only
``inputs.py``, should not import at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cascade_ml.forecasting.protocol import Forecaster

if TYPE_CHECKING:
    from cascade_ml.forecasting.loader import forecaster_dir, load_forecaster, read_forecaster

__all__ = ["Forecaster", "forecaster_dir", "load_forecaster", "read_forecaster"]

_LOADER = frozenset({"forecaster_dir", "load_forecaster", "read_forecaster"})


def __getattr__(name: str) -> object:
    if name in _LOADER:
        from cascade_ml.forecasting import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
