"""Drift is graded, not a breaker: the graded response the live loop and the service share.

A tripped breaker or missing / stale inputs fail safe (drift named beside them). Drift alone
means the data are there and fresh but the model's inputs are unusual, so the forecast comes
from the baseline forecaster (HAR and climatology, ``forecasting.baseline``) fitted on the
training span of the model it stands in for, and the decision says so; when no baseline can be
fitted (no labels yet) drift fails safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pandas as pd

from cascade_ml.contracts.layout import labels_path
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.forecasting import Forecaster
from cascade_ml.forecasting.baseline import BASELINE_NAME, BaselineForecaster
from cascade_ml.monitoring.run import training_span_of
from cascade_ml.policy.schemas import Forecast as PolicyForecast

log = logging.getLogger(__name__)


class Fallbacks:
    """Each symbol's baseline forecaster, fitted at the first drift of the model serving it (on
    that model's training span, from ``history(symbol)``, the symbol's feature table, and the
    stored labels) and kept while that model serves."""

    def __init__(self, store: MarketStore, horizon: int,
                 history: Callable[[str], pd.DataFrame]) -> None:
        self.store = store
        self.horizon = horizon
        self.history = history
        self._fitted: dict[str, tuple[Forecaster, BaselineForecaster | None]] = {}

    def baseline(self, symbol: str, bundle: Forecaster) -> BaselineForecaster | None:
        """The symbol's baseline for ``bundle``; None when it cannot be fitted."""
        cached = self._fitted.get(symbol)
        if cached is not None and cached[0] is bundle:
            return cached[1]
        try:
            labels = self.store.read_table(labels_path(symbol, self.horizon))
            fitted = BaselineForecaster.fit(self.history(symbol), labels,
                                            training_span_of(bundle), self.horizon)
        except CascadeError as exc:
            log.warning("%s: no baseline forecaster, drift fails safe: %s", symbol, exc.message)
            fitted = None
        self._fitted[symbol] = (bundle, fitted)
        return fitted

    def grade(self, symbol: str, bundle: Forecaster, features: pd.DataFrame,
              ts: pd.Timestamp, hard: Sequence[str], drift: Sequence[str]
              ) -> tuple[list[str], dict[str, float] | None]:
        """(reasons to fail safe, the baseline's forecast values for bar ``ts`` of ``features``
        or None). ``hard``: reasons that always fail safe; ``drift``: the drift alarm's."""
        if hard or not drift:
            return [*hard, *drift] if hard else [], None
        baseline = self.baseline(symbol, bundle)
        if baseline is None:
            return list(drift), None
        got = baseline.predict(features, pd.DatetimeIndex([ts]))
        return [], {k: float(v[0]) for k, v in got.items()}


def baseline_reason(forecast: PolicyForecast, horizon_hours: float, version: str,
                    drift: Sequence[str]) -> str:
    """The reason a decision made on the baseline's forecast leads with."""
    return (f"BASELINE: forecast by {BASELINE_NAME} (vol {forecast.sigma_h:.2%} over "
            f"{horizon_hours:g} h, cascade probability {forecast.cascade_prob:.1%}) instead of "
            f"model v{version}, whose inputs drifted: {'; '.join(drift)}")
