"""The forecast math, in one place: fitted parameters plus boosters -> served numbers.

The scikit-learn estimators (``estimators.py``) fit these objects and predict through them; the
bundle (``bundle.py``) saves and loads them and predicts through them; the MLflow pyfunc calls
the bundle. So training, evaluation, the bundle, the registry and the server run the same code,
and it needs only numpy and ``lightgbm.Booster`` (no input validation, no DataFrame per call).

``LevelTransform``: the level the volatility trees correct (a HAR-RV fit, else an anchor column
scaled to H, else 0) and the scale-free tree inputs (variance levels as log ratios to it).
``VolatilityModel``: variance = exp(level + shrink * trees) * smearing; quantiles exp(level +
quantile trees). ``CascadeModel``: calibration map applied to the booster's probability.
Each one saves to a bundle folder as JSON-able parameters plus LightGBM text files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import lightgbm as lgb
import numpy as np

from cascade_ml.contracts.columns import CASCADE_PROB, VAR_FORECAST, VOL_FORECAST
from cascade_ml.errors import ModelBundleError
from cascade_ml.models.calibration import Calibration

_TINY = 1e-12


def _log_level(values: np.ndarray, scale: float) -> np.ndarray:
    return np.log(np.maximum(values * scale, _TINY))


@dataclass(frozen=True, eq=False)
class LevelTransform:
    """How raw feature rows become the volatility level and the trees' inputs.

    Column positions refer to the model's feature order. ``har_coef`` (intercept first) is fitted
    on the training rows; when ``har`` is empty the level is log(``anchor`` column *
    ``anchor_scale``), or 0 without an anchor. ``relative`` columns (variance levels) become
    log(col * scale) - level and ``relative_log`` columns (log variances) col - level, so a forest
    fitted in a calm year still applies in a wild one.
    """

    har: tuple[int, ...] = ()
    har_scale: tuple[float, ...] = ()
    har_coef: tuple[float, ...] = ()
    anchor: int | None = None
    anchor_scale: float = 1.0
    relative: tuple[int, ...] = ()
    relative_scale: tuple[float, ...] = ()
    relative_log: tuple[int, ...] = ()

    def har_design(self, x: np.ndarray) -> np.ndarray:
        """[1, log(rv_d * s_d), log(rv_w * s_w), log(rv_m * s_m)] per row (the HAR regressors)."""
        cols = [_log_level(x[:, j], s) for j, s in zip(self.har, self.har_scale, strict=True)]
        return np.column_stack([np.ones(len(x)), *cols])

    def offset(self, x: np.ndarray) -> np.ndarray:
        """The log level the trees correct, per row."""
        if self.har:
            return self.har_design(x) @ np.asarray(self.har_coef)
        if self.anchor is None:
            return np.zeros(len(x))
        return _log_level(x[:, self.anchor], self.anchor_scale)

    def tree_inputs(self, x: np.ndarray, off: np.ndarray) -> np.ndarray:
        """The rows as the trees see them (a copy when any column is transformed)."""
        if not self.relative and not self.relative_log:
            return x
        x = np.array(x, dtype=float, copy=True)
        for j, scale in zip(self.relative, self.relative_scale, strict=True):
            x[:, j] = _log_level(x[:, j], scale) - off
        for j in self.relative_log:
            x[:, j] = x[:, j] - off
        return x

    def to_dict(self) -> dict:
        """JSON-able parameters (every field, tuples as lists)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> LevelTransform:
        """Inverse of ``to_dict`` (integers stay integers, scales and coefficients floats)."""
        anchor = data.get("anchor")
        return cls(har=tuple(int(j) for j in data.get("har", ())),
                   har_scale=tuple(float(s) for s in data.get("har_scale", ())),
                   har_coef=tuple(float(c) for c in data.get("har_coef", ())),
                   anchor=None if anchor is None else int(anchor),
                   anchor_scale=float(data.get("anchor_scale", 1.0)),
                   relative=tuple(int(j) for j in data.get("relative", ())),
                   relative_scale=tuple(float(s) for s in data.get("relative_scale", ())),
                   relative_log=tuple(int(j) for j in data.get("relative_log", ())))


def load_booster(folder: Path, name: str) -> lgb.Booster:
    """A LightGBM text model of a bundle folder; ModelBundleError when missing or unreadable."""
    file = Path(folder) / name
    if not file.exists():
        raise ModelBundleError(f"bundle file {name} is missing", str(folder))
    try:
        return lgb.Booster(model_file=str(file))
    except lgb.basic.LightGBMError as exc:
        raise ModelBundleError(f"unreadable LightGBM model ({exc})", str(file)) from exc


@dataclass(eq=False)
class VolatilityModel:
    """A fitted volatility forecaster: forward RV (variance over H bars) and its quantiles."""

    transform: LevelTransform
    booster: lgb.Booster
    shrink: float = 1.0
    smearing: float = 1.0
    objective: str = "l2"
    quantiles: dict[str, lgb.Booster] = field(default_factory=dict)

    FILE = "volatility.txt"

    def log_forecast(self, x: np.ndarray, off: np.ndarray | None = None,
                     xt: np.ndarray | None = None) -> np.ndarray:
        """level + shrink * tree correction (log of the mean for gamma, mean log for l2)."""
        off = self.transform.offset(x) if off is None else off
        xt = self.transform.tree_inputs(x, off) if xt is None else xt
        # init_score (the level) is not part of the booster's raw score
        return off + self.shrink * self.booster.predict(xt, raw_score=True)

    def variance(self, x: np.ndarray) -> np.ndarray:
        """Forecast of forward RV, bias-corrected by the smearing factor."""
        return np.exp(self.log_forecast(x)) * self.smearing

    def quantile_forecasts(self, x: np.ndarray, off: np.ndarray | None = None,
                           xt: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Variance quantiles (quantiles survive the exp map, so no correction)."""
        off = self.transform.offset(x) if off is None else off
        xt = self.transform.tree_inputs(x, off) if xt is None else xt
        return {key: np.exp(b.predict(xt, raw_score=True) + off)
                for key, b in self.quantiles.items()}

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """var_forecast, vol_forecast and var_qNN of each row (level and inputs computed once)."""
        off = self.transform.offset(x)
        xt = self.transform.tree_inputs(x, off)
        var = np.exp(self.log_forecast(x, off, xt)) * self.smearing
        return {VAR_FORECAST: var, VOL_FORECAST: np.sqrt(var),
                **self.quantile_forecasts(x, off, xt)}

    def save(self, folder: Path) -> dict:
        """Write the boosters into ``folder``; returns the JSON-able rest."""
        self.booster.save_model(folder / self.FILE)
        files = {key: f"{key}.txt" for key in self.quantiles}
        for key, booster in self.quantiles.items():
            booster.save_model(folder / files[key])
        return {"file": self.FILE, "objective": self.objective, "smearing": float(self.smearing),
                "shrink": float(self.shrink), **self.transform.to_dict(), "quantiles": files}

    @classmethod
    def load(cls, folder: Path, meta: dict) -> VolatilityModel:
        """Inverse of ``save``."""
        return cls(transform=LevelTransform.from_dict(meta),
                   booster=load_booster(folder, meta["file"]),
                   shrink=float(meta.get("shrink", 1.0)), smearing=float(meta["smearing"]),
                   objective=str(meta.get("objective", "l2")),
                   quantiles={k: load_booster(folder, f) for k, f in meta["quantiles"].items()})


@dataclass(eq=False)
class CascadeModel:
    """A fitted cascade classifier: booster probability through the calibration map."""

    booster: lgb.Booster
    calibration: Calibration = field(default_factory=Calibration)

    FILE = "cascade.txt"

    def raw_proba(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated positive-class probability."""
        return self.booster.predict(x)

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probability of a cascade within H bars."""
        return np.clip(self.calibration.apply(self.raw_proba(x)), 0.0, 1.0)

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {CASCADE_PROB: self.proba(x)}

    def save(self, folder: Path) -> dict:
        self.booster.save_model(folder / self.FILE)
        return {"file": self.FILE, "calibration": self.calibration.to_dict()}

    @classmethod
    def load(cls, folder: Path, meta: dict) -> CascadeModel:
        return cls(booster=load_booster(folder, meta["file"]),
                   calibration=Calibration.from_dict(meta["calibration"]))
