"""The vol forecast as the backtest's policy reads it, for the live callers of ``decide``.

With ``policy.forecast_halflife_bars > 0`` the backtest's policy reads each bar's vol forecast
smoothed by :func:`cascade_ml.policy.rules.smooth_log_vol` (a log-EWMA over the past bars). The
batch scorer, the service and the live loop read the stored history of the symbol's vol
forecasts (the scores table's ``vol_forecast`` column, up to and including the forecast's bar)
and smooth it here, with the same function, over a window of :data:`WINDOW_HALFLIVES`
half-lives. The functions are pure; reading the table is the callers' job.

The backtest's EWMA starts at the first out-of-sample bar, this one at the window's first bar.
The two levels differ by ``(1 - a)^(w - 1)`` times the gap between the backtest's level and the
log forecast at the window's first bar; with ``w - 1 >= 10`` half-lives that factor is at most
``0.5**10`` (about 0.001), so once the window covers 10 half-lives the logs of the two smoothed
vols agree to within ``0.5**10 x`` the spread of the log forecasts (:func:`tolerance`); before
that the window reaches back to the first stored bar and, on the same history, they are equal.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cascade_ml.policy.rules import smooth_log_vol
from cascade_ml.policy.schemas import Forecast

WINDOW_HALFLIVES = 10.0
"""Half-lives of history the smoothing reads: enough that the EWMA's start weighs <= 0.5**10."""

UNSMOOTHED = ("vol forecast read as it is, not smoothed over forecast_halflife_bars: no stored "
              "vol forecast before this bar (a first bar)")


def window_bars(halflife_bars: float) -> int:
    """Bars of history (the forecast's own bar included) read to smooth one forecast: the
    oldest is at least ``WINDOW_HALFLIVES`` half-lives before the newest."""
    return math.ceil(WINDOW_HALFLIVES * halflife_bars) + 1


def tolerance(log_gap: float) -> float:
    """Largest gap between the log of a windowed smoothed vol and the backtest's (whose EWMA
    starts at the first out-of-sample bar), ``log_gap`` being the spread (max - min) of the log
    forecasts: ``0.5**10 x log_gap``."""
    return 0.5 ** WINDOW_HALFLIVES * log_gap


def smoothed_sigma(history: pd.Series, ts: pd.Timestamp, sigma_h: float | None,
                   halflife_bars: float, bar: pd.Timedelta) -> tuple[float | None, bool]:
    """(the smoothed vol of the forecast ``sigma_h`` made on bar ``ts``, whether any past
    forecast entered it). ``history``: the stored vol forecasts indexed by bar, oldest first;
    rows at ``ts`` or after are ignored (this bar's value is ``sigma_h``, later ones are in the
    future), as are rows older than the window. Missing or non-positive forecasts do not enter
    the average (as in ``smooth_log_vol``); ``sigma_h`` itself missing is returned as it is."""
    if halflife_bars <= 0 or sigma_h is None or not sigma_h > 0:
        return sigma_h, False
    index = pd.DatetimeIndex(history.index)
    start = ts - (window_bars(halflife_bars) - 1) * pd.Timedelta(bar)
    lo, hi = index.searchsorted(start, "left"), index.searchsorted(ts, "left")
    past = np.asarray(history.to_numpy(dtype=float)[lo:hi])
    past = past[np.isfinite(past) & (past > 0)]
    if not len(past):
        return sigma_h, False
    return float(smooth_log_vol(np.append(past, sigma_h), halflife_bars)[-1]), True


def smoothed_forecast(forecast: Forecast, history: pd.Series, ts: pd.Timestamp,
                      halflife_bars: float, bar: pd.Timedelta) -> tuple[Forecast, str | None]:
    """(the policy's forecast block with its vol smoothed over ``history``, the reason to add to
    the decision's): :data:`UNSMOOTHED` when the half-life is set but no past forecast is
    stored (the forecast is read as it is), None otherwise. The cascade probability and the
    vol quantiles are not smoothed (neither are they in the backtest)."""
    if halflife_bars <= 0 or forecast.sigma_h is None or not forecast.sigma_h > 0:
        return forecast, None  # nothing to smooth (a missing forecast fails safe anyway)
    sigma, smoothed = smoothed_sigma(history, ts, forecast.sigma_h, halflife_bars, bar)
    if not smoothed:
        return forecast, UNSMOOTHED
    return forecast.model_copy(update={"sigma_h": sigma}), None
