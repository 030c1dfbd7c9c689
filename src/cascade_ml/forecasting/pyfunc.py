"""The registered MLflow model: a pyfunc whose ``predict`` is the forecaster's ``predict``.

The bundle folder (either kind) is logged as the pyfunc's artifact ``bundle``; loading the model
reads it with ``read_forecaster`` and ``predict`` calls ``Forecaster.predict`` on the input
columns, picked by name. An optional ``symbol`` column says whose rows they are (a panel bundle
blends each symbol's own HAR in, as the server does); without it a per-symbol bundle forecasts
its own symbol and a panel the panel alone. So
``mlflow.pyfunc.load_model("models:/<name>@champion").predict(rows)`` and
``mlflow models serve`` return exactly what the server serves for those rows: one column per
served forecast (``var_forecast``, ``vol_forecast``, ``var_qNN``, ``cascade_prob``).

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
from cascade_ml.forecasting.loader import read_forecaster
from cascade_ml.forecasting.protocol import Forecaster
from cascade_ml.models.tracking import ARTIFACT, NAME

SYMBOL = "symbol"
"""Optional input column naming each row's symbol."""
CODE = Path(__file__).with_name("pyfunc_model.py")
PIP = [f"lightgbm=={lgb.__version__}", f"numpy=={np.__version__}", f"pandas=={pd.__version__}"]


class ForecastPyfunc(mlflow.pyfunc.PythonModel):
    """``predict(frame)`` = ``read_forecaster(artifacts['bundle']).predict`` as a DataFrame."""

    def load_context(self, context) -> None:
        self.forecaster = read_forecaster(context.artifacts[ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame,
                params: dict | None = None) -> pd.DataFrame:
        return forecast_frame(self.forecaster, pd.DataFrame(model_input))


def forecast_frame(forecaster: Forecaster, rows: pd.DataFrame) -> pd.DataFrame:
    """The forecasts of ``rows`` (input columns by name, any order, extras ignored), each row
    forecast for the symbol in its ``symbol`` column (default: the forecaster's only symbol)."""
    names = list(forecaster.feature_names)
    missing = [n for n in names if n not in rows.columns]
    if missing:
        raise ModelBundleError(f"input lacks feature column(s) {missing}",
                               f"model {forecaster.model_name} v{forecaster.version}")
    default = forecaster.symbols[0] if len(forecaster.symbols) == 1 else None
    raw = rows[SYMBOL] if SYMBOL in rows.columns else pd.Series(None, index=rows.index)
    keys = raw.map(lambda s: s if isinstance(s, str) and s else "").to_numpy(dtype=object)
    x = rows[names].to_numpy(dtype=np.float64, na_value=np.nan)
    out = pd.DataFrame(index=rows.index)
    for key in pd.unique(keys):
        mask = keys == key
        for column, values in forecaster.predict(x[mask], key or default).items():
            out.loc[mask, column] = values
    return out


def signature(forecaster: Forecaster) -> ModelSignature:
    """Inputs: every feature as a double column (NaN allowed) and an optional ``symbol``;
    outputs: the forecast columns."""
    default = forecaster.symbols[0] if len(forecaster.symbols) == 1 else None
    outputs = forecaster.predict(np.zeros((1, len(forecaster.feature_names))), default)
    return ModelSignature(
        inputs=Schema([*(ColSpec(DataType.double, n) for n in forecaster.feature_names),
                       ColSpec(DataType.string, SYMBOL, required=False)]),
        outputs=Schema([ColSpec(DataType.double, k) for k in outputs]))


def log_forecast_model(bundle_dir: Path, example: pd.DataFrame | None,
                       model_id: str) -> ModelInfo:
    """Log the bundle folder as the pyfunc ``forecast`` of the active run, into the (already
    registered) logged model ``model_id``; ``example`` rows are its input example."""
    forecaster = read_forecaster(bundle_dir)
    if example is not None:
        rows = example[forecaster.feature_names].astype(float)
        example = rows.assign(**{SYMBOL: example[SYMBOL].astype(str)}) if SYMBOL in example \
            else rows
    return mlflow.pyfunc.log_model(
        name=NAME, python_model=str(CODE), artifacts={ARTIFACT: str(bundle_dir)},
        signature=signature(forecaster), pip_requirements=PIP, model_id=model_id,
        input_example=example)
