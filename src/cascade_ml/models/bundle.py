"""The model bundle: everything serving needs, readable with numpy and ``lightgbm.Booster`` only.

``models/<SYMBOL>/`` holds ``bundle.json`` (version, symbol, horizon, feature names in order,
config, training span, metrics, the volatility input transform, smearing factor, calibration
map as plain arrays) and one LightGBM text model per booster (``Booster.save_model``). It is
written to a temporary sibling folder and renamed into place, so a reader never sees half.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np

from cascade_ml.atomic import replace_dir
from cascade_ml.errors import ModelBundleError
from cascade_ml.models.calibration import Calibration
from cascade_ml.models.estimators import CascadeClassifier, VolatilityForecaster

BUNDLE_FILE = "bundle.json"
FORMAT = 1


@dataclass
class ForecastBundle:
    """A loaded bundle; ``predict`` maps a (rows, features) array to the forecasts."""

    version: str
    symbol: str
    horizon: int
    feature_names: list[str]
    training_span: dict
    metrics: dict
    config: dict
    volatility: dict
    vol_booster: lgb.Booster
    quantile_boosters: dict[str, lgb.Booster]
    cascade_booster: lgb.Booster
    calibration: Calibration
    extra: dict = field(default_factory=dict)

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

    def _offset(self, x: np.ndarray) -> np.ndarray:
        har = self.volatility.get("har")
        if har:
            cols = [np.log(np.maximum(x[:, j] * s, 1e-12))
                    for j, s in zip(har, self.volatility["har_scale"], strict=True)]
            design = np.column_stack([np.ones(len(x)), *cols])
            return design @ np.asarray(self.volatility["har_coef"])
        anchor = self.volatility["anchor"]
        if anchor is None:
            return np.zeros(len(x))
        return np.log(np.maximum(x[:, anchor] * self.volatility["anchor_scale"], 1e-12))

    def _transform(self, x: np.ndarray, off: np.ndarray) -> np.ndarray:
        rel = self.volatility["relative"]
        rel_log = self.volatility.get("relative_log", [])
        if not rel and not rel_log:
            return x
        x = x.copy()
        for j, scale in zip(rel, self.volatility["relative_scale"], strict=True):
            x[:, j] = np.log(np.maximum(x[:, j] * scale, 1e-12)) - off
        for j in rel_log:
            x[:, j] = x[:, j] - off
        return x

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Forecasts for each row: var_forecast, vol_forecast, cascade_prob (+ var_qNN)."""
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.shape[1] != len(self.feature_names):
            raise ModelBundleError(f"got {x.shape[1]} feature columns, the model expects "
                                   f"{len(self.feature_names)}")
        off = self._offset(x)
        xt = self._transform(x, off)
        shrink = float(self.volatility.get("shrink", 1.0))
        var = np.exp(shrink * self.vol_booster.predict(xt, raw_score=True) + off)
        var = var * self.volatility["smearing"]
        out = {"var_forecast": var, "vol_forecast": np.sqrt(var)}
        for key, booster in self.quantile_boosters.items():
            out[key] = np.exp(booster.predict(xt, raw_score=True) + off)
        raw = self.cascade_booster.predict(x)
        out["cascade_prob"] = np.clip(self.calibration.apply(raw), 0.0, 1.0)
        return out


def export_bundle(path: str | Path, vol: VolatilityForecaster, clf: CascadeClassifier, *,
                  version: str, symbol: str, horizon: int, feature_names: list[str],
                  training_span: dict, metrics: dict, config: dict) -> Path:
    """Write the bundle folder atomically (temp sibling, then rename over the old one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        files = {"volatility": "volatility.txt", "cascade": "cascade.txt"}
        vol.model_.booster_.save_model(tmp / files["volatility"])
        clf.model_.booster_.save_model(tmp / files["cascade"])
        quant = {}
        for key, model in vol.quantile_models_.items():
            quant[key] = f"{key}.txt"
            model.booster_.save_model(tmp / quant[key])
        meta = {
            "format": FORMAT, "version": str(version), "symbol": symbol, "horizon": int(horizon),
            "feature_names": list(feature_names), "training_span": training_span,
            "metrics": metrics, "config": config,
            "volatility": {"file": files["volatility"], "objective": vol.objective,
                           "smearing": float(vol.smearing_), "shrink": float(vol.shrink_),
                           "anchor": vol.anchor,
                           "anchor_scale": float(vol.anchor_scale),
                           "relative": [int(j) for j in vol.relative],
                           "relative_scale": [float(s) for s in vol.relative_scale],
                           "relative_log": [int(j) for j in vol.relative_log],
                           "har": [int(j) for j in vol.har],
                           "har_scale": [float(s) for s in vol.har_scale],
                           "har_coef": [float(c) for c in getattr(vol, "har_coef_", [])],
                           "quantiles": quant},
            "cascade": {"file": files["cascade"], "calibration": clf.calibration_.to_dict()},
        }
        (tmp / BUNDLE_FILE).write_text(json.dumps(meta, indent=2, default=float))
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _booster(folder: Path, name: str) -> lgb.Booster:
    file = folder / name
    if not file.exists():
        raise ModelBundleError(f"bundle file {name} is missing", str(folder))
    try:
        return lgb.Booster(model_file=str(file))
    except lgb.basic.LightGBMError as exc:
        raise ModelBundleError(f"unreadable LightGBM model ({exc})", str(file)) from exc


def load_bundle(path: str | Path) -> ForecastBundle:
    """Read a bundle folder (``models/<SYMBOL>``) or its ``bundle.json``."""
    path = Path(path)
    folder = path.parent if path.name == BUNDLE_FILE else path
    meta_file = folder / BUNDLE_FILE
    if not meta_file.exists():
        raise ModelBundleError("no model bundle here (bundle.json missing)", str(folder),
                               hint="run `cascade-ml train` first")
    try:
        meta = json.loads(meta_file.read_text())
        vol_meta = meta["volatility"]
        return ForecastBundle(
            version=str(meta["version"]), symbol=meta["symbol"], horizon=int(meta["horizon"]),
            feature_names=list(meta["feature_names"]), training_span=meta["training_span"],
            metrics=meta["metrics"], config=meta["config"], volatility=vol_meta,
            vol_booster=_booster(folder, vol_meta["file"]),
            quantile_boosters={k: _booster(folder, f) for k, f in vol_meta["quantiles"].items()},
            cascade_booster=_booster(folder, meta["cascade"]["file"]),
            calibration=Calibration.from_dict(meta["cascade"]["calibration"]))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelBundleError(f"malformed bundle.json ({exc!r})", str(meta_file)) from exc
