"""The baseline forecaster: HAR-RV for the variance and the climatological cascade rate.

When the model's inputs drift the live loop and the service (``monitoring.fallback``) do not
trust the model, but the data are there and fresh, so they forecast with the two yardsticks
every model is promoted against (``models.baselines.HAR`` and ``Climatology``), fitted on the
bundle's training span, instead of falling to the policy's fail-safe. HAR reads only the
realised-variance columns, which drift cannot make wrong, only unusual. Missing or stale inputs
still fail safe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import (
    CASCADE,
    CASCADE_PROB,
    FWD_RV,
    HAR_COLUMNS,
    VAR_FORECAST,
    VOL_FORECAST,
)
from cascade_ml.errors import CascadeError
from cascade_ml.models.baselines import HAR, Climatology

BASELINE_NAME = "HAR + climatology"


def column_of(values: pd.DataFrame | pd.Series, name: str) -> pd.Series:
    """``values`` itself when it is one series, else its column ``name`` (a clear error when
    missing), so callers take a labels table or the one label they need alike."""
    if isinstance(values, pd.Series):
        return values
    if name not in values:
        raise CascadeError(f"column {name!r} missing", hint=f"have {list(values.columns)}")
    return values[name]


def _span_rows(features: pd.DataFrame, y: pd.Series, span: tuple[pd.Timestamp, pd.Timestamp],
               columns: tuple[str, ...]) -> pd.Index:
    """Rows of the span with a finite label and finite ``columns``."""
    start, end = span
    rows = features.index[(features.index >= start) & (features.index <= end)]
    rows = rows.intersection(y.index)
    ok = np.isfinite(y.loc[rows].to_numpy(float))
    for col in columns:
        ok &= np.isfinite(features.loc[rows, col].to_numpy(float))
    return rows[ok]


def fit_har(features: pd.DataFrame, labels: pd.DataFrame | pd.Series,
            span: tuple[pd.Timestamp, pd.Timestamp], horizon: int) -> HAR:
    """HAR-RV fitted on the span's rows that have a label (``fwd_rv``) and HAR inputs."""
    rv = column_of(labels, FWD_RV)
    rows = _span_rows(features, rv, span, HAR_COLUMNS)
    if len(rows) < 10:
        raise CascadeError(f"only {len(rows)} training rows with labels and HAR inputs")
    return HAR(horizon).fit(features, rv, rows)


@dataclass(frozen=True)
class BaselineForecaster:
    """HAR-RV and the climatological cascade rate of one symbol's training span."""

    har: HAR
    climatology: Climatology
    horizon: int

    @classmethod
    def fit(cls, features: pd.DataFrame, labels: pd.DataFrame,
            span: tuple[pd.Timestamp, pd.Timestamp], horizon: int) -> BaselineForecaster:
        """Both baselines on the span's rows whose labels are complete."""
        cascade = column_of(labels, CASCADE)
        rows = _span_rows(features, cascade, span, ())
        if not len(rows):
            raise CascadeError("no training row with a cascade label for the climatology")
        return cls(fit_har(features, labels, span, horizon),
                   Climatology(horizon).fit(features, cascade, rows), horizon)

    def predict(self, features: pd.DataFrame, index: pd.Index) -> dict[str, np.ndarray]:
        """The served forecast columns (variance and vol over the horizon, cascade
        probability) for the rows ``index`` of ``features``."""
        var = self.har.predict(features, index)
        return {VAR_FORECAST: var, VOL_FORECAST: np.sqrt(var),
                CASCADE_PROB: self.climatology.predict(features, index)}
