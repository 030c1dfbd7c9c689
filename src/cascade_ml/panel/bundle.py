"""The universe bundle: one folder serves every symbol of the universe (and unseen ones).

``models/panel/`` holds ``bundle.json`` (symbols served, horizon, input names in order, the
linear panel HAR, shrinkage, the per-symbol HAR coefficients of the combination, the adverse
multipliers, the logistic and stacking coefficients), two LightGBM text models and ``z.npy``
(sorted training adverse/sigma ratios). ``predict(x) -> dict`` needs only numpy and
``lightgbm.Booster``, like the per-symbol ``ForecastBundle``; both are a
``cascade_ml.forecasting.Forecaster``. ``bundle.predict(x, s)`` adds symbol s's own HAR with its
weight (per symbol, chosen before the final period; the pooled weight for a symbol without one)
once the symbol has ``cold_start_days``; for a perp outside ``symbols`` (a new listing) or
without a symbol it is the panel alone. Its input rows are the symbol's rows of the panel table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from cascade_ml.atomic import staged_dir
from cascade_ml.contracts.columns import (
    CASCADE_PROB,
    HAR_WINDOWS,
    SERVED_FORECASTS,
    VAR_FORECAST,
    VOL_FORECAST,
)
from cascade_ml.contracts.layout import panel_path
from cascade_ml.errors import ModelBundleError
from cascade_ml.models.bundle import BUNDLE_FILE, feature_rows, read_meta
from cascade_ml.models.calibration import Calibration, logit, sigmoid
from cascade_ml.panel.dataset import SYMBOL, TIMESTAMP
from cascade_ml.panel.estimators import LINEAR_KINDS, exceed_prob

if TYPE_CHECKING:
    from cascade_ml.data.store import MarketStore

FORMAT = 2
"""2: ``interval`` and ``model_name`` recorded."""
KIND = "panel"
_TINY = 1e-12
EXTRA_INPUTS = ("lvl", "age_days", "cascade_threshold_t", "raw_rv_24h", "raw_rv_168h",
                "raw_rv_720h", "harq_q")
"""Columns of the panel table the bundle reads besides the model inputs (all known at t)."""


def adverse_key(q: float) -> str:
    """Forecast key of the adverse-move quantile q (a positive log move against the side)."""
    return f"adverse_q{round(q * 100)}"


@dataclass
class PanelBundle:
    """A loaded universe bundle; ``feature_names`` are the panel columns ``predict`` reads."""

    meta: dict
    tree: lgb.Booster
    classifier: lgb.Booster
    z_sorted: np.ndarray
    symbol: str | None = None

    kind = KIND

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    @property
    def horizon(self) -> int:
        return int(self.meta["horizon"])

    @property
    def interval(self) -> str:
        """Bar interval of the panel it was trained on (empty: a format 1 bundle)."""
        return str(self.meta.get("interval", ""))

    @property
    def model_name(self) -> str:
        """Registered model it was exported as (``cascade-ml-panel-h<H>``; empty if none)."""
        return str(self.meta.get("model_name", ""))

    @property
    def metrics(self) -> dict:
        return dict(self.meta.get("metrics") or {})

    @property
    def training_span(self) -> dict:
        """Start and end of the rows the served models were fitted on."""
        span = self.meta.get("training_span") or ()
        return {"start": span[0], "end": span[1]} if len(span) == 2 else {}

    @property
    def symbols(self) -> list[str]:
        """The symbols this bundle serves (its universe)."""
        return list(self.meta["symbols"])

    @property
    def feature_names(self) -> list[str]:
        return list(self.meta["feature_names"])

    def serves(self, symbol: str) -> bool:
        """Any perp: the symbols it was fitted on with their own HAR, others by the panel alone."""
        return bool(symbol)

    def input_table(self, symbol: str) -> str:
        """The store table holding the rows ``predict`` reads: the panel of its horizon."""
        return panel_path(self.horizon)

    def input_rows(self, store: MarketStore, symbol: str, last: int | None = None
                   ) -> pd.DataFrame:
        """The symbol's newest ``last`` (default all) panel rows, indexed by time, in
        ``feature_names`` order; a panel lacking a column the bundle reads is refused by name."""
        rel = self.input_table(symbol)
        path = store.root / rel
        if not path.exists():
            raise ModelBundleError("no panel table", rel,
                                   hint="run the features and labels steps of the universe")
        names = self.feature_names
        missing = [n for n in names if n not in pq.read_schema(path).names]
        if missing:
            raise ModelBundleError(f"the panel table lacks column(s) {missing} that panel "
                                   f"bundle v{self.version} reads", rel)
        table = pq.read_table(path, columns=[TIMESTAMP, *names],
                              filters=[(SYMBOL, "==", symbol)]).to_pandas()
        rows = table.set_index(TIMESTAMP).sort_index(kind="stable")[names]
        return rows if last is None else rows.tail(last)

    def for_symbol(self, symbol: str) -> PanelBundle:
        """The view that serves ``symbol`` (its own HAR joins the panel when it has one)."""
        if symbol not in self.meta["symbols"]:
            raise ModelBundleError(f"symbol {symbol} is not served by panel bundle "
                                   f"v{self.version}", hint=f"served: {self.symbols}")
        return PanelBundle(self.meta, self.tree, self.classifier, self.z_sorted, symbol)

    @property
    def calibration(self) -> Calibration:
        """The map from the LightGBM classifier's probability to a calibrated one."""
        return Calibration.from_dict(self.meta["calibration"])

    @property
    def har_weight(self) -> float:
        """Weight of this view's symbol's own HAR (the pooled one when it has none chosen)."""
        return float(self.meta.get("har_weights", {}).get(self.symbol or "",
                                                          self.meta["har_weight"]))

    def _col(self, x: np.ndarray, name: str) -> np.ndarray:
        return x[:, self.meta["feature_names"].index(name)]

    def _linear(self, x: np.ndarray) -> np.ndarray:
        lin = self.meta["linear"]
        d = self._col(x, "d")
        w = np.where(np.isnan(self._col(x, "w")), d, self._col(x, "w"))
        m = np.where(np.isnan(self._col(x, "m")), w, self._col(x, "m"))
        har = {"d": d, "w": w, "m": m}
        cols = []
        for t in LINEAR_KINDS[lin["kind"]]:
            if t in har:
                v = har[t]
            elif t == "harq":
                v = d * np.nan_to_num(self._col(x, "harq_q") - lin["q_mean"])
            else:
                v = self._col(x, t) - lin["means"][t]
            cols.append(np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0))
        design = np.column_stack([np.ones(len(x)), *cols])
        return design @ np.asarray(lin["coef"]) + np.log(lin["smearing"])

    def _symbol_har(self, x: np.ndarray) -> np.ndarray | None:
        coef = self.meta["symbol_har"].get(self.symbol or "")
        if coef is None:
            return None
        cols = [np.log(np.maximum(self._col(x, f"raw_rv_{h}h") / h, _TINY))
                for h in HAR_WINDOWS]
        design = np.column_stack([np.ones(len(x)), *cols])
        var = np.exp(design @ np.asarray(coef["coef"])) * coef["smearing"]
        return np.log(np.maximum(var, _TINY)) - self._col(x, "lvl") - np.log(self.horizon)

    def predict(self, x: np.ndarray, symbol: str | None = None) -> dict[str, np.ndarray]:
        """The served forecasts of ``symbol``'s rows: var/vol forecast over H bars and the cascade
        probability (its own HAR blended in when it is one of ``symbols``)."""
        out = self.forecast(x, symbol)
        return {k: v for k, v in out.items() if k in SERVED_FORECASTS}

    def forecast(self, x: np.ndarray, symbol: str | None = None) -> dict[str, np.ndarray]:
        """var/vol forecast, adverse-move quantiles and the cascade probability of each row."""
        if symbol is not None and symbol != self.symbol:
            view = self.for_symbol(symbol) if symbol in self.meta["symbols"] else PanelBundle(
                self.meta, self.tree, self.classifier, self.z_sorted)
            return view.forecast(x)
        x = feature_rows(x, len(self.feature_names), "the panel bundle")
        inputs = x[:, [self.feature_names.index(c) for c in self.meta["inputs"]]]
        inputs32 = inputs.astype(np.float32)
        std = self._linear(x) + self.meta["shrink"] * self.tree.predict(inputs32)
        own = self._symbol_har(x)
        if own is not None:
            warm = (self._col(x, "age_days") >= self.meta["cold_start_days"]) & np.isfinite(own)
            a = self.har_weight
            std = np.where(warm, a * np.where(warm, own, 0.0) + (1 - a) * std, std)
        var = np.exp(std + self._col(x, "lvl")) * self.horizon
        sigma = np.sqrt(var)
        out = {VAR_FORECAST: var, VOL_FORECAST: sigma}
        for q, m in self.meta["multipliers"].items():
            out[adverse_key(float(q))] = sigma * m
        p_lgbm = self.calibration.apply(self.classifier.predict(inputs32))
        p_log = self._logistic(x)
        thr = self._col(x, "cascade_threshold_t")
        adv = -np.log1p(-np.minimum(thr, 0.999)) if self.meta["side"] == "long" else np.log1p(thr)
        p_fhs = exceed_prob(self.z_sorted, adv / np.maximum(sigma, 1e-9))
        z = np.column_stack([logit(p_lgbm), logit(p_log), logit(p_fhs)])
        st = self.meta["stacker"]
        out[CASCADE_PROB] = sigmoid(z @ np.asarray(st["coef"]) + st["intercept"])
        return out

    def _logistic(self, x: np.ndarray) -> np.ndarray:
        lg = self.meta["logistic"]
        cols = [self.feature_names.index(c) for c in lg["columns"]]
        v = x[:, cols]
        v = np.where(np.isfinite(v), v, np.asarray(lg["medians"]))
        v = (v - np.asarray(lg["mean"])) / np.asarray(lg["scale"])
        return sigmoid(v @ np.asarray(lg["coef"]) + lg["intercept"])


def feature_names(inputs: list[str]) -> list[str]:
    """Inputs in order, then the extra panel columns the bundle reads."""
    return [*inputs, *[c for c in EXTRA_INPUTS if c not in inputs]]


def export_panel_bundle(path: str | Path, state: dict, choices: dict, *, version: str,
                        symbols: list[str], horizon: int, interval: str, side: str,
                        inputs: list[str], cold_start_days: float, symbol_har: dict,
                        metrics: dict, model_name: str = "") -> Path:
    """Write the bundle folder atomically (temp sibling, then rename over the old one)."""
    path = Path(path)
    with staged_dir(path) as tmp:
        state["tree"].save_model(str(tmp / "volatility.txt"))
        state["classifier"].save_model(str(tmp / "cascade.txt"))
        np.save(tmp / "z.npy", np.asarray(state["z_sorted"], float))
        pipe = state["logistic"].pipe_
        imp, scl, lr = pipe.steps[0][1], pipe.steps[1][1], pipe.steps[2][1]
        stacker = state["stacker"]
        meta = {
            "format": FORMAT, "kind": KIND, "version": str(version), "model_name": model_name,
            "symbols": list(symbols), "horizon": int(horizon), "interval": str(interval),
            "side": side, "inputs": list(inputs),
            "feature_names": feature_names(inputs), "cold_start_days": float(cold_start_days),
            "linear": state["linear"].to_dict(), "shrink": float(choices["shrink"]),
            "har_weight": float(choices["har_weight"]),
            "har_weights": {str(k): float(v) for k, v in state.get("har_weights", {}).items()},
            "symbol_har": symbol_har,
            "multipliers": {str(q): float(m) for q, m in state["multipliers"].items()},
            "calibration": state["calibration"].to_dict(),
            "logistic": {"columns": list(state["logistic"].columns),
                         "medians": imp.statistics_.tolist(), "mean": scl.mean_.tolist(),
                         "scale": scl.scale_.tolist(), "coef": lr.coef_[0].tolist(),
                         "intercept": float(lr.intercept_[0])},
            "stacker": {"coef": stacker.coef_[0].tolist(),
                        "intercept": float(stacker.intercept_[0])},
            "climatology": state["climatology"], "training_span": state["train_span"],
            "metrics": metrics, "files": {"volatility": "volatility.txt",
                                          "cascade": "cascade.txt", "z": "z.npy"},
        }
        (tmp / BUNDLE_FILE).write_text(json.dumps(meta, indent=1, default=float))
    return path


def is_panel_bundle(path: str | Path) -> bool:
    """True when the folder holds a universe bundle (not a per-symbol one)."""
    try:
        return json.loads((Path(path) / BUNDLE_FILE).read_text()).get("kind") == KIND
    except (OSError, json.JSONDecodeError):
        return False


def load_panel_bundle(path: str | Path) -> PanelBundle:
    """Read a universe bundle folder (``models/panel``)."""
    folder = Path(path)
    meta = read_meta(folder, hint="run `cascade-ml run pipelines/universe.yaml` first")
    if meta.get("kind") != KIND:
        raise ModelBundleError("not a panel bundle", str(folder / BUNDLE_FILE))
    try:
        files = meta["files"]
        return PanelBundle(meta, lgb.Booster(model_file=str(folder / files["volatility"])),
                           lgb.Booster(model_file=str(folder / files["cascade"])),
                           np.load(folder / files["z"]))
    except (KeyError, TypeError, OSError,
            lgb.basic.LightGBMError) as exc:
        raise ModelBundleError(f"malformed panel bundle ({exc!r})", str(folder)) from exc
