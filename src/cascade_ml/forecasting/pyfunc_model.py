"""The file MLflow runs to load the forecast pyfunc (models-from-code; see ``pyfunc.py``)."""

import mlflow

from cascade_ml.forecasting.pyfunc import ForecastPyfunc

mlflow.models.set_model(ForecastPyfunc())
