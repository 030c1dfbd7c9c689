"""The model bundle: everything serving needs, readable with numpy and ``lightgbm.Booster`` only.

``models/<SYMBOL>/`` holds ``bundle.json`` (kind ``symbol``, version and name of the registered
model, symbol, horizon, bar interval, feature names in order, config, training span, metrics,
and the fitted parameters of the two ``cascade_ml.models.forecast`` objects) and one LightGBM
text model per booster (``Booster.save_model``). The bundle holds the very objects the
estimators fitted and predicts through their code, so served numbers equal the evaluated ones.
It is written to a temporary sibling folder and renamed into place, so a reader never sees half.

``ForecastBundle`` is one kind of ``cascade_ml.forecasting.Forecaster`` (the panel's
``PanelBundle`` is the other); callers load it through ``cascade_ml.forecasting.load_forecaster``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from cascade_ml.atomic import staged_dir
from cascade_ml.contracts.columns import SERVED_FORECASTS
from cascade_ml.contracts.layout import features_path
from cascade_ml.errors import ModelBundleError
from cascade_ml.models.forecast import CascadeModel, VolatilityModel

if TYPE_CHECKING:
    from cascade_ml.data.store import MarketStore
    from cascade_ml.models.estimators import CascadeClassifier, VolatilityForecaster

BUNDLE_FILE = "bundle.json"
FORMAT = 2
"""2: ``kind`` and ``interval`` recorded (format 1 bundles have neither; retrain them)."""
KIND = "symbol"


def feature_rows(x: np.ndarray, n_features: int, owner: str) -> np.ndarray:
    """``x`` as a float (rows, features) array; a row of the wrong width is refused by name."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.shape[1] != n_features:
        raise ModelBundleError(f"got {x.shape[1]} feature columns, {owner} expects {n_features}")
    return x


@dataclass(eq=False)
class ForecastBundle:
    """A loaded per-symbol bundle; ``predict`` maps a (rows, features) array to the forecasts."""

    kind: ClassVar[str] = KIND
    version: str
    symbol: str
    horizon: int
    feature_names: list[str]
    training_span: dict
    metrics: dict
    config: dict
    volatility: VolatilityModel
    cascade: CascadeModel
    model_name: str = ""
    """Registered model the bundle was exported from (``models:/<model_name>/<version>``)."""
    interval: str = ""
    """Bar interval of the rows it was trained on (empty: a format 1 bundle, which predates it)."""

    @property
    def symbols(self) -> list[str]:
        return [self.symbol]

    def serves(self, symbol: str) -> bool:
        return symbol == self.symbol

    def input_table(self, symbol: str) -> str:
        """The store table holding the rows ``predict`` reads: the symbol's features table."""
        return features_path(symbol)

    def input_rows(self, store: MarketStore, symbol: str, last: int | None = None
                   ) -> pd.DataFrame:
        """The newest ``last`` (default all) rows of the features table, the bundle's columns in
        order; a table whose columns differ from the bundle's is refused by name."""
        rel = self.input_table(symbol)
        if not (store.root / rel).exists():
            raise ModelBundleError("no features table", rel, hint="run the features step first")
        table = store.read_table(rel)
        self.validate_features(list(table.columns))
        return table if last is None else table.tail(last)

    def validate_features(self, names: list[str]) -> None:
        """Raise ModelBundleError unless ``names`` are exactly the bundle's features, in order."""
        names = list(names)
        if names == self.feature_names:
            return
        missing = [n for n in self.feature_names if n not in names]
        unknown = [n for n in names if n not in self.feature_names]
        what = (f"features do not match model {self.symbol} v{self.version}: missing {missing}, "
                f"unexpected {unknown}" if missing or unknown else
                "features are in a different order than the model expects")
        raise ModelBundleError(what, hint=f"expected {len(self.feature_names)} features in order")

    def predict(self, x: np.ndarray, symbol: str | None = None) -> dict[str, np.ndarray]:
        """Forecasts for each row: var_forecast, vol_forecast (+ var_qNN), cascade_prob (the
        served columns only; ``symbol`` is the bundle's own, accepted for the protocol)."""
        x = feature_rows(x, len(self.feature_names), "the model")
        out = {**self.volatility.predict(x), **self.cascade.predict(x)}
        return {k: v for k, v in out.items() if k in SERVED_FORECASTS}


def export_bundle(path: str | Path, vol: VolatilityForecaster, clf: CascadeClassifier, *,
                  version: str, symbol: str, horizon: int, interval: str,
                  feature_names: list[str], training_span: dict, metrics: dict, config: dict,
                  model_name: str = "") -> Path:
    """Write the fitted estimators' forecast objects as a bundle folder, atomically (temp
    sibling, then rename over the old one)."""
    path = Path(path)
    with staged_dir(path) as tmp:
        meta = {
            "format": FORMAT, "kind": KIND, "version": str(version), "model_name": model_name,
            "symbol": symbol, "horizon": int(horizon), "interval": str(interval),
            "feature_names": list(feature_names),
            "training_span": training_span, "metrics": metrics, "config": config,
            "volatility": vol.forecast_.save(tmp), "cascade": clf.forecast_.save(tmp),
        }
        (tmp / BUNDLE_FILE).write_text(json.dumps(meta, indent=2, default=float))
    return path


def read_meta(folder: Path, hint: str) -> dict:
    """``folder``'s bundle.json as a dict; ModelBundleError naming the file when it is missing
    or is not a JSON object (every bundle kind is read through here)."""
    meta_file = folder / BUNDLE_FILE
    if not meta_file.exists():
        raise ModelBundleError("no model bundle here (bundle.json missing)", str(folder),
                               hint=hint)
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as exc:
        raise ModelBundleError(f"malformed bundle.json ({exc!r})", str(meta_file)) from exc
    if not isinstance(meta, dict):
        raise ModelBundleError("malformed bundle.json (not an object)", str(meta_file))
    return meta


def load_bundle(path: str | Path) -> ForecastBundle:
    """Read a bundle folder (``models/<SYMBOL>``) or its ``bundle.json``."""
    path = Path(path)
    folder = path.parent if path.name == BUNDLE_FILE else path
    meta = read_meta(folder, hint="run `cascade-ml train` first")
    try:
        return ForecastBundle(
            version=str(meta["version"]), symbol=meta["symbol"], horizon=int(meta["horizon"]),
            feature_names=list(meta["feature_names"]), training_span=meta["training_span"],
            metrics=meta["metrics"], config=meta["config"],
            volatility=VolatilityModel.load(folder, meta["volatility"]),
            cascade=CascadeModel.load(folder, meta["cascade"]),
            model_name=str(meta.get("model_name", "")), interval=str(meta.get("interval", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelBundleError(f"malformed bundle.json ({exc!r})",
                               str(folder / BUNDLE_FILE)) from exc
