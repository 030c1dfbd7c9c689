"""The registered MLflow model: a pyfunc whose ``predict`` is the bundle's ``predict``.

The bundle folder is logged as the pyfunc's artifact ``bundle``; loading the model loads that
folder with ``load_bundle`` and ``predict`` calls ``ForecastBundle.predict`` on the feature
columns, picked by name. So ``mlflow.pyfunc.load_model("models:/<name>@champion").predict(rows)``
and ``mlflow models serve`` return exactly what the server serves for those rows: one column per
forecast (``var_forecast``, ``vol_forecast``, ``var_qNN``, ``cascade_prob``).

The model is logged as code (``pyfunc_model.py``, MLflow's models-from-code), not as a pickle;
loading it needs ``cascade_ml`` importable (e.g. ``mlflow models serve --env-manager local``
from the project's environment).
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, DataType, Schema

from cascade_ml.errors import ModelBundleError
from cascade_ml.models.bundle import ForecastBundle, load_bundle

ARTIFACT = "bundle"
NAME = "forecast"
"""Name of the logged model inside its run."""
CODE = Path(__file__).with_name("pyfunc_model.py")
PIP = [f"lightgbm=={lgb.__version__}", f"numpy=={np.__version__}", f"pandas=={pd.__version__}"]


class ForecastPyfunc(mlflow.pyfunc.PythonModel):
    """``predict(frame)`` = ``load_bundle(artifacts['bundle']).predict`` as a DataFrame."""

    def load_context(self, context) -> None:
        self.bundle = load_bundle(context.artifacts[ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame,
                params: dict | None = None) -> pd.DataFrame:
        return forecast_frame(self.bundle, pd.DataFrame(model_input))


def forecast_frame(bundle: ForecastBundle, rows: pd.DataFrame) -> pd.DataFrame:
    """The bundle's forecasts of ``rows`` (feature columns by name, any order, extras ignored)."""
    missing = [n for n in bundle.feature_names if n not in rows.columns]
    if missing:
        raise ModelBundleError(f"input lacks feature column(s) {missing}",
                               f"model {bundle.symbol} v{bundle.version}")
    x = rows[bundle.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.DataFrame(bundle.predict(x), index=rows.index)


def signature(bundle: ForecastBundle) -> ModelSignature:
    """Inputs: every feature as a double column (NaN allowed); outputs: the forecast columns."""
    outputs = bundle.predict(np.zeros((1, len(bundle.feature_names))))
    return ModelSignature(inputs=Schema([ColSpec(DataType.double, n)
                                         for n in bundle.feature_names]),
                          outputs=Schema([ColSpec(DataType.double, k) for k in outputs]))


def log_forecast_model(bundle_dir: Path, example: pd.DataFrame | None,
                       model_id: str) -> ModelInfo:
    """Log the bundle folder as the pyfunc ``forecast`` of the active run, into the (already
    registered) logged model ``model_id``; ``example`` rows are its input example."""
    bundle = load_bundle(bundle_dir)
    return mlflow.pyfunc.log_model(
        name=NAME, python_model=str(CODE), artifacts={ARTIFACT: str(bundle_dir)},
        signature=signature(bundle), pip_requirements=PIP, model_id=model_id,
        input_example=None if example is None else example[bundle.feature_names].astype(float))
