"""From a forecast and the feature row of its bar to the policy's input blocks.

Batch scoring, the service and the live loop all build ``decide``'s inputs here, so the decision
stored by the scorer and the one the service answers are the same function of the same forecast
and row, whatever the forecaster's kind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cascade_ml.contracts.columns import (
    CASCADE_PROB,
    TRIGGERS,
    VOL_FORECAST,
    beta_column,
    corr_column,
    quantile_key,
)
from cascade_ml.policy.schemas import CrossAsset, Triggers
from cascade_ml.policy.schemas import Forecast as PolicyForecast

VAR_Q90, VAR_Q99 = quantile_key(0.9), quantile_key(0.99)


@dataclass(frozen=True)
class ContextColumns:
    """The feature columns the policy reads beside the forecast, by the policy field they fill."""

    triggers: Mapping[str, str]  # Triggers field -> trigger column
    cross: Mapping[str, str]  # CrossAsset field -> beta/corr column at the proxy window

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.triggers.values(), *self.cross.values())


def context_columns(references: Sequence[str], proxy_window: int) -> ContextColumns:
    """Trigger columns, and beta/corr columns at ``policy.proxy_window`` for each reference the
    policy can hedge with (its ``CrossAsset`` has fields for BTC and ETH)."""
    cross: dict[str, str] = {}
    for ref in references:
        name = ref.lower()
        if f"beta_{name}" in CrossAsset.model_fields:
            cross[f"beta_{name}"] = beta_column(ref, proxy_window)
            cross[f"corr_{name}"] = corr_column(ref, proxy_window)
    return ContextColumns(dict(TRIGGERS), cross)


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
