"""The forecasting layer: one ``Forecaster`` protocol from fit to serve.

Every model kind (the per-symbol ``models.bundle.ForecastBundle``, the universe's
``panel.bundle.PanelBundle``) answers the same small protocol (``protocol.py``); ``loader.py`` is
the one place that picks the kind from ``bundle.json`` and checks it against the task. The
conversion of a forecast and its feature row to the policy's inputs (``inputs.py``), the merge of
scored rows into the scores table (``scores.py``) and the MLflow pyfunc (``pyfunc.py``,
``registry.py``) live here once. Scoring, serving, the live loop and monitoring use this layer and
never branch on the kind.
"""

from cascade_ml.forecasting.loader import forecaster_dir, load_forecaster, read_forecaster
from cascade_ml.forecasting.protocol import Forecaster

__all__ = ["Forecaster", "forecaster_dir", "load_forecaster", "read_forecaster"]
