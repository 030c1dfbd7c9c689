"""The policy's inputs for a forecast and its feature row, written out from the contracts
(docs/architecture.md) independently of ``cascade_ml.forecasting.inputs``: tests compare scored and
served decisions with ``decide`` on these, so a translation bug on the serving side cannot hide
behind the same bug in the expectation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta

from cascade_ml.contracts.columns import (
    CASCADE_PROB,
    TRIGGERS,
    VOL_FORECAST,
    beta_column,
    corr_column,
    quantile_key,
)
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.policy import PolicyConfig, decide
from cascade_ml.policy.schemas import (
    CrossAsset,
    Decision,
    Forecast,
    Freshness,
    PolicyInputs,
    Position,
    Triggers,
)


def _num(value: object) -> float | None:
    if value is None:
        return None
    out = float(value)  # type: ignore[arg-type]
    return out if math.isfinite(out) else None


def expected_decision(symbol: str, values: Mapping[str, object], row: Mapping[str, object],
                      position: Position, equity: float, task: TaskConfig, policy: PolicyConfig,
                      age: float | None, *, bot_triggers: Mapping[str, bool] | None = None
                      ) -> Decision:
    """``decide`` on: sigma_H = the forecast volatility (sqrt of the variance forecast),
    quantile vols = sqrt of the variance quantiles, triggers fired where their column is 1.0
    (unknown where NaN), beta/corr of each reference at ``policy.proxy_window``, trailing vol
    from ``rv_<policy.vol_reference_window>h``."""
    hours = task.horizon_hours
    q90, q99 = _num(values.get(quantile_key(0.9))), _num(values.get(quantile_key(0.99)))
    forecast = Forecast(sigma_h=_num(values.get(VOL_FORECAST)), horizon_hours=hours,
                        cascade_prob=_num(values.get(CASCADE_PROB)),
                        vol_q90=None if q90 is None else math.sqrt(q90),
                        vol_q99=None if q99 is None else math.sqrt(q99))
    fired: dict[str, bool | None] = {}
    for name, column in TRIGGERS.items():
        value = _num(row.get(column))
        fired[name] = None if value is None else value == 1.0
    fired.update(bot_triggers or {})
    cross: dict[str, float | None] = {}
    for ref in task.references_for(symbol):
        corr = _num(row.get(corr_column(ref, policy.proxy_window)))
        cross[f"beta_{ref.lower()}"] = _num(row.get(beta_column(ref, policy.proxy_window)))
        cross[f"corr_{ref.lower()}"] = corr if corr is None or -1 <= corr <= 1 else None
    # the perp's trailing vol: realised variance over vol_reference_window bars, per year
    rv = _num(row.get(f"rv_{policy.vol_reference_window}h"))
    bars_per_year = 24 * 365 / (task.bar / timedelta(hours=1))
    trailing = (None if rv is None
                else math.sqrt(rv) * math.sqrt(bars_per_year / policy.vol_reference_window))
    inputs = PolicyInputs(symbol=symbol, forecast=forecast, triggers=Triggers(**fired),
                          cross_asset=CrossAsset(**cross), trailing_vol_annual=trailing,
                          position=position, equity=equity,
                          freshness=Freshness(forecast_age_s=age, features_age_s=age,
                                              max_age_s=policy.max_data_age_s))
    return decide(inputs, policy)
