"""One served decision: the bot's position + the symbol's served forecast -> the pure ``decide``.

The forecast's policy blocks (forecast, triggers, cross-asset stats) were built by the poller with
``cascade_ml.scoring.inputs``, the same code batch scoring uses; per request only the position,
the freshness and the bot's fresher trigger flags are added.
"""

from __future__ import annotations

import pandas as pd
from fastapi import HTTPException
from pydantic import ValidationError

from cascade_ml.policy import PolicyConfig, decide
from cascade_ml.policy.models import (
    CrossAsset,
    Decision,
    Freshness,
    PolicyInputs,
    Position,
    Triggers,
)
from cascade_ml.scoring.inputs import no_forecast
from cascade_ml.serving.schemas import DecisionOut, DecisionRequest
from cascade_ml.serving.state import Forecast

_BOT_TRIGGERS = ("funding_divergence", "volume_breakdown")  # the request's MarketUpdate flags


def to_out(decision: Decision, *, model_version: str | None, forecast_ts: pd.Timestamp | None,
           age: float | None, stale: bool) -> DecisionOut:
    return DecisionOut(
        symbol=decision.symbol, hedge_ratio=decision.hedge_ratio,
        current_hedge_ratio=decision.current_hedge_ratio, instrument=decision.hedge_instrument,
        hedge_notional=decision.hedge_notional, leverage_cap=decision.leverage_cap,
        size_cap=decision.size_cap_notional, liquidation_price=decision.liquidation_price,
        risk_score=decision.risk_score, action=decision.action, reasons=decision.reasons,
        fail_safe=decision.fail_safe, model_version=model_version,
        forecast_timestamp=forecast_ts.to_pydatetime() if forecast_ts is not None else None,
        forecast_age_seconds=None if age is None else round(age, 3), stale=stale)


def make_decision(request: DecisionRequest, symbol: str, forecast: Forecast | None,
                  model_loaded: bool, policy: PolicyConfig, horizon_hours: float,
                  now: float) -> DecisionOut:
    """One decision for a bot's position. No forecast or no model -> the policy's fail-safe."""
    max_age = policy.max_data_age_s
    mark = request.market.price if request.market and request.market.price else request.mark_price
    if forecast is None:
        age, version, ts = None, None, None
        block, triggers, cross = no_forecast(horizon_hours), Triggers(), CrossAsset()
    else:
        age, version, ts = max(forecast.age(now), 0.0), forecast.model_version, forecast.timestamp
        block, triggers, cross = forecast.policy, forecast.triggers, forecast.cross
    if request.market is not None:  # the bot's fresher view of the triggers wins
        seen = {k: v for k in _BOT_TRIGGERS if (v := getattr(request.market, k)) is not None}
        triggers = triggers.model_copy(update=seen) if seen else triggers
    try:
        inputs = PolicyInputs(
            symbol=symbol, forecast=block, model_available=model_loaded, triggers=triggers,
            cross_asset=cross,
            position=Position(side=request.side, notional=request.notional,
                              entry_price=request.entry_price or mark, mark_price=mark,
                              leverage=request.leverage, hedge_ratio=request.hedge_ratio),
            equity=request.portfolio_value or request.notional / request.leverage,
            freshness=Freshness(forecast_age_s=age, features_age_s=age, max_age_s=max_age))
    except ValidationError as exc:  # a combination the request schema cannot see alone
        raise HTTPException(422, str(exc.errors()[0].get("msg", exc))) from exc
    decision = decide(inputs, policy)
    return to_out(decision, model_version=version, forecast_ts=ts, age=age,
                  stale=age is None or age > max_age)
