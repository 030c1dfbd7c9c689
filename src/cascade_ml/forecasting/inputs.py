"""From a forecast and the feature row of its bar to the policy's input blocks.

Batch scoring, the service and the live loop all build ``decide``'s inputs here, so the decision
stored by the scorer and the one the service answers are the same function of the same forecast
and row, whatever the forecaster's kind. The perp's trailing realised vol (the policy's vol
reference) is read from the row's ``rv_<vol_reference_window>h`` feature; the backtest computes
the same number from closes with :func:`trailing_vol_annual`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import (
    CASCADE_PROB,
    TRIGGERS,
    VOL_FORECAST,
    beta_column,
    corr_column,
    quantile_key,
    rv_column,
)
from cascade_ml.features.stats import log_return
from cascade_ml.features.volatility import rolling_rv
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.policy.rules import annualised_vol
from cascade_ml.policy.schemas import CrossAsset, Triggers
from cascade_ml.policy.schemas import Forecast as PolicyForecast

VAR_Q90, VAR_Q99 = quantile_key(0.9), quantile_key(0.99)


@dataclass(frozen=True)
class ContextColumns:
    """The feature columns the policy reads beside the forecast, by the policy field they fill."""

    triggers: Mapping[str, str]  # Triggers field -> trigger column
    cross: Mapping[str, str]  # CrossAsset field -> beta/corr column at the proxy window
    rv: str  # realised variance over policy.vol_reference_window bars (the trailing vol)
    vol_window: int  # policy.vol_reference_window
    bar: pd.Timedelta  # the task's bar, to annualise the trailing vol

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.triggers.values(), *self.cross.values(), self.rv)


def context_columns(references: Sequence[str], policy: PolicyConfig, bar: pd.Timedelta
                    ) -> ContextColumns:
    """Trigger columns, beta/corr columns at ``policy.proxy_window`` for each reference the
    policy can hedge with (its ``CrossAsset`` has fields for BTC and ETH), and the realised
    variance over ``policy.vol_reference_window`` bars."""
    cross: dict[str, str] = {}
    for ref in references:
        name = ref.lower()
        if f"beta_{name}" in CrossAsset.model_fields:
            cross[f"beta_{name}"] = beta_column(ref, policy.proxy_window)
            cross[f"corr_{name}"] = corr_column(ref, policy.proxy_window)
    window = policy.vol_reference_window
    return ContextColumns(dict(TRIGGERS), cross, rv_column(window), window, pd.Timedelta(bar))


def vol_of_rv(rv: np.ndarray | float, window: int, bar: pd.Timedelta) -> np.ndarray | float:
    """Annualised vol of a realised variance summed over ``window`` bars: the vol over
    ``window`` bars scaled to a year by the square-root-of-time rule."""
    with np.errstate(invalid="ignore"):
        return annualised_vol(np.sqrt(rv), window * (pd.Timedelta(bar) / pd.Timedelta("1h")))


def trailing_vol_annual(close: pd.Series, window: int, bar: pd.Timedelta) -> pd.Series:
    """The perp's realised vol over the last ``window`` bars (log returns of bars up to and
    including t), annualised: the policy's vol reference, computed from closes as the
    ``rv_<window>h`` feature is. NaN until the window is full."""
    rv = rolling_rv(log_return(close.astype(float)), window)
    return pd.Series(vol_of_rv(rv.to_numpy(float), window, bar), index=close.index)


def trailing_vol(row: Mapping[str, object], columns: ContextColumns) -> float | None:
    """The trailing vol reference of a feature row (``PolicyInputs.trailing_vol_annual``), None
    where the row has no finite realised variance over the window."""
    rv = finite(row.get(columns.rv))
    return None if rv is None or rv < 0 else float(vol_of_rv(rv, columns.vol_window,
                                                              columns.bar))


def finite(value: object) -> float | None:
    """A finite float, or None for missing / NaN / infinite values."""
    if value is None:
        return None
    out = float(value)  # type: ignore[arg-type]
    return out if math.isfinite(out) else None


def _vol(variance: float | None) -> float | None:
    return math.sqrt(variance) if variance is not None and variance >= 0 else None


def policy_forecast(values: Mapping[str, object], horizon_hours: float) -> PolicyForecast:
    """The policy's forecast block. ``sigma_h`` is the forecast *volatility* over H (never the
    variance); variance quantiles become volatility quantiles."""
    return PolicyForecast(sigma_h=finite(values.get(VOL_FORECAST)), horizon_hours=horizon_hours,
                          cascade_prob=finite(values.get(CASCADE_PROB)),
                          vol_q90=_vol(finite(values.get(VAR_Q90))),
                          vol_q99=_vol(finite(values.get(VAR_Q99))))


def no_forecast(horizon_hours: float) -> PolicyForecast:
    """The block for a symbol with no forecast at all (the policy fails safe on it)."""
    return PolicyForecast(sigma_h=None, cascade_prob=None, horizon_hours=horizon_hours)


def policy_context(row: Mapping[str, object], columns: ContextColumns
                   ) -> tuple[Triggers, CrossAsset]:
    """Triggers and cross-asset stats from a feature row: 1.0 is fired, 0.0 not, a missing or
    NaN column unknown; a correlation outside [-1, 1] is treated as unknown."""
    triggers = {}
    for field, column in columns.triggers.items():
        value = finite(row.get(column))
        triggers[field] = None if value is None else value >= 0.5
    cross = {field: finite(row.get(column)) for field, column in columns.cross.items()}
    for field, value in cross.items():
        if field.startswith("corr_") and value is not None and not -1 <= value <= 1:
            cross[field] = None
    return Triggers(**triggers), CrossAsset(**cross)
