"""Is the model still right? Rolling realised QLIKE against HAR and the calibration of the
cascade probabilities, on rows whose outcome is known.

Point in time: the label of row ``t`` (decided at the close of bar ``t``) covers bars
``t+1 .. t+H``, so it is known at the close of bar ``t+H``: ``t + (H + 1) * bar``. Only rows with
that moment at or before ``now`` are scored, so a monitor replayed at any past ``now`` sees
exactly what it would have seen then, whatever the labels table holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import (
    CASCADE,
    CASCADE_PROB,
    FWD_RV,
    VAR_FORECAST,
    baseline_var,
)
from cascade_ml.errors import CascadeError
from cascade_ml.forecasting.baseline import column_of, fit_har
from cascade_ml.models.metrics import qlike_loss
from cascade_ml.monitoring.config import MonitoringConfig

HAR_FORECAST = baseline_var("har")
QLIKE_COLUMNS = ["loss_model", "loss_har", "qlike_model", "qlike_har", "ratio"]
CALIBRATION_COLUMNS = ["lower", "upper", "rows", "mean_prob", "event_rate", "gap"]


def label_known_at(index: pd.DatetimeIndex, horizon: int, bar: pd.Timedelta
                   ) -> pd.DatetimeIndex:
    """When the label of each row is complete: the close of bar ``t + H``."""
    return pd.DatetimeIndex(index) + (horizon + 1) * pd.Timedelta(bar)


def realised_mask(index: pd.DatetimeIndex, now: pd.Timestamp, horizon: int,
                  bar: pd.Timedelta) -> np.ndarray:
    """True for rows whose label window has closed by ``now``."""
    return np.asarray(label_known_at(index, horizon, bar) <= now)


def _known(series: pd.Series, target: pd.Series, now: pd.Timestamp, horizon: int,
           bar: pd.Timedelta) -> pd.Index:
    """Rows of ``series`` with a finite value whose finite target is realised by ``now``."""
    common = series.index.intersection(target.index)
    common = common[realised_mask(common, now, horizon, bar)]
    ok = np.isfinite(series.loc[common].to_numpy(float)) & np.isfinite(
        target.loc[common].to_numpy(float))
    return common[ok]


def rolling_qlike(forecasts: pd.DataFrame, labels: pd.DataFrame | pd.Series, *,
                  now: pd.Timestamp, horizon: int, bar: pd.Timedelta = pd.Timedelta("1h"),
                  window: int = 720, model: str = VAR_FORECAST, baseline: str = HAR_FORECAST,
                  min_rows: int | None = None) -> pd.DataFrame:
    """Per realised row: the QLIKE of the model's and of HAR's variance forecast against the
    realised ``fwd_rv``, their means over the last ``window`` realised rows and the ratio
    model / HAR (< 1: the model is better). Rows where either forecast is missing are left out,
    so both are always scored on the same rows."""
    rv = column_of(labels, FWD_RV)
    f_model, f_har = forecasts[model], forecasts[baseline]
    rows = _known(f_model, rv, now, horizon, bar)
    rows = rows[np.isfinite(f_har.loc[rows].to_numpy(float))]
    out = pd.DataFrame(index=rows, columns=QLIKE_COLUMNS, dtype=float)
    out.index.name = "timestamp"
    if not len(rows):
        return out
    target = rv.loc[rows].to_numpy(float)
    out["loss_model"] = qlike_loss(target, f_model.loc[rows].to_numpy(float))
    out["loss_har"] = qlike_loss(target, f_har.loc[rows].to_numpy(float))
    periods = max(1, window // 4) if min_rows is None else min_rows
    roll = out[["loss_model", "loss_har"]].rolling(window, min_periods=periods).mean()
    out["qlike_model"], out["qlike_har"] = roll["loss_model"], roll["loss_har"]
    out["ratio"] = out["qlike_model"] / out["qlike_har"]
    return out


@dataclass(frozen=True)
class QlikeSummary:
    """Mean QLIKE of model and HAR over the newest ``rows`` realised rows, and their ratio."""

    model: float
    har: float
    ratio: float
    rows: int
    last_realised: pd.Timestamp | None


def qlike_summary(table: pd.DataFrame, window: int) -> QlikeSummary:
    """The newest ``window`` rows of a :func:`rolling_qlike` table, summarised."""
    tail = table.dropna(subset=["loss_model", "loss_har"]).tail(window)
    if tail.empty:
        return QlikeSummary(np.nan, np.nan, np.nan, 0, None)
    model, har = float(tail["loss_model"].mean()), float(tail["loss_har"].mean())
    return QlikeSummary(model, har, model / har if har > 0 else np.nan, len(tail),
                        tail.index[-1])


def calibration_table(prob: pd.Series, outcome: pd.Series, *, now: pd.Timestamp, horizon: int,
                      bar: pd.Timedelta = pd.Timedelta("1h"), bins: int = 10,
                      strategy: str = "quantile", window: int | None = None) -> pd.DataFrame:
    """Reliability table of cascade probabilities on the rows whose outcome is known by ``now``
    (the newest ``window`` of them): per bin the rows, mean forecast probability, observed event
    rate and their gap. Quantile bins (default) keep every bin populated when probabilities
    crowd near the base rate; ``strategy="uniform"`` uses equal-width bins on [0, 1]."""
    if bins < 2:
        raise CascadeError(f"calibration needs at least 2 bins, got {bins}")
    rows = _known(prob, outcome, now, horizon, bar)
    if window is not None:
        rows = rows[-window:]
    p = np.clip(prob.loc[rows].to_numpy(float), 0.0, 1.0)
    y = outcome.loc[rows].to_numpy(float)
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1))) if len(p) else \
            np.array([0.0, 1.0])
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    else:
        raise CascadeError(f"unknown calibration strategy {strategy!r}; use quantile or uniform")
    if len(edges) < 2:  # every probability equal
        edges = np.array([edges[0], edges[0]])
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    out = []
    for b in range(len(edges) - 1):
        sel = which == b
        n = int(sel.sum())
        mean_p = float(p[sel].mean()) if n else np.nan
        rate = float(y[sel].mean()) if n else np.nan
        out.append([edges[b], edges[b + 1], n, mean_p, rate, mean_p - rate])
    table = pd.DataFrame(out, columns=CALIBRATION_COLUMNS)
    table.index.name = "bin"
    return table


def expected_calibration_error(table: pd.DataFrame) -> float:
    """Row-weighted mean |mean_prob - event_rate| over the bins (NaN with no rows)."""
    n = table["rows"].to_numpy(float)
    if n.sum() == 0:
        return float("nan")
    gap = np.nan_to_num(np.abs(table["gap"].to_numpy(float)))
    return float(np.sum(n * gap) / n.sum())


def har_forecast(features: pd.DataFrame, labels: pd.DataFrame | pd.Series,
                 training_span: tuple[pd.Timestamp, pd.Timestamp], index: pd.Index,
                 horizon: int) -> pd.Series:
    """HAR-RV (``cascade_ml.models.baselines.HAR``) fitted on the training span's rows, then
    predicting ``index``: the yardstick for served forecasts, which carry no baseline column.
    Only training rows with a finite label and HAR inputs are fitted on."""
    har = fit_har(features, labels, training_span, horizon)
    index = pd.Index(index).intersection(features.index)
    return pd.Series(har.predict(features, index), index=index, name=HAR_FORECAST)


@dataclass(frozen=True)
class ForecastQuality:
    """Realised quality of one symbol's forecasts at ``now``."""

    qlike: QlikeSummary | None
    calibration: pd.DataFrame | None
    ece: float
    cascade_rows: int
    cascade_rate: float
    mean_prob: float


def forecast_quality(forecasts: pd.DataFrame, labels: pd.DataFrame, *, now: pd.Timestamp,
                     horizon: int, bar: pd.Timedelta, cfg: MonitoringConfig) -> ForecastQuality:
    """QLIKE vs HAR (when ``forecasts`` holds both variance columns) and the calibration table
    (when it holds ``cascade_prob`` and ``labels`` the cascade outcome)."""
    qlike = None
    if {VAR_FORECAST, HAR_FORECAST} <= set(forecasts.columns) and FWD_RV in labels:
        table = rolling_qlike(forecasts, labels, now=now, horizon=horizon, bar=bar,
                              window=cfg.qlike_window)
        qlike = qlike_summary(table, cfg.qlike_window)
    calib, ece, rows, rate, mean_p = None, np.nan, 0, np.nan, np.nan
    if CASCADE_PROB in forecasts and CASCADE in labels:
        calib = calibration_table(forecasts[CASCADE_PROB], labels[CASCADE], now=now,
                                  horizon=horizon, bar=bar, bins=cfg.calibration_bins,
                                  window=cfg.calibration_window)
        rows = int(calib["rows"].sum())
        if rows:
            ece = expected_calibration_error(calib)
            weights = calib["rows"].to_numpy(float)
            rate = float(np.nansum(calib["event_rate"] * weights) / rows)
            mean_p = float(np.nansum(calib["mean_prob"] * weights) / rows)
    return ForecastQuality(qlike, calib, ece, rows, rate, mean_p)
