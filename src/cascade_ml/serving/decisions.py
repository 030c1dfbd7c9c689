"""Turn a forecast (+ the bot's position) into the policy's inputs, call the pure ``decide``, and
shape the answer. Used per request by the service and per row by batch scoring."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

import pandas as pd
from fastapi import HTTPException
from pydantic import ValidationError

from cascade_ml.config import PipelineConfig
from cascade_ml.policy import decide
from cascade_ml.policy.models import (
    CrossAsset,
    Decision,
    Freshness,
    PolicyInputs,
    Position,
    Triggers,
)
from cascade_ml.policy.models import Forecast as PolicyForecast
from cascade_ml.serving.schemas import DecisionOut, DecisionRequest

# Feature columns (names fixed by docs/architecture.md) the policy reads beside the forecast.
TRIGGER_COLUMNS = {"funding_divergence": "trigger_funding_divergence",
                   "sentiment_spike": "trigger_sentiment_spike",
                   "volume_breakdown": "trigger_volume_breakdown"}
CROSS_COLUMNS = {"beta_btc": "beta_btc_168h", "corr_btc": "corr_btc_168h",
                 "beta_eth": "beta_eth_168h", "corr_eth": "corr_eth_168h"}
CONTEXT_COLUMNS = (*TRIGGER_COLUMNS.values(), *CROSS_COLUMNS.values())


def _finite(value: object) -> float | None:
    if value is None:
        return None
    out = float(value)  # type: ignore[arg-type]
    return out if math.isfinite(out) else None


def _sqrt(value: float | None) -> float | None:
    return math.sqrt(value) if value is not None and value >= 0 else None


@lru_cache(maxsize=64)
def _bar_hours(interval: str) -> float:
    return pd.Timedelta(interval) / pd.Timedelta("1h")


def horizon_hours(config: PipelineConfig, bundle: object | None) -> float:
    """The model's horizon in hours (bars x bar length); no parsing per request."""
    bars = getattr(bundle, "horizon", None) or config.task.horizon
    return float(bars) * _bar_hours(config.task.interval)


def policy_forecast(values: Mapping[str, float], hours: float) -> PolicyForecast:
    """The policy's forecast block from served forecast values (variances become vols)."""
    return PolicyForecast(sigma_h=_finite(values.get("vol_forecast")), horizon_hours=hours,
                          cascade_prob=_finite(values.get("cascade_prob")),
                          vol_q90=_sqrt(_finite(values.get("var_q90"))),
                          vol_q99=_sqrt(_finite(values.get("var_q99"))))


def context_blocks(context: Mapping[str, float]) -> tuple[Triggers, CrossAsset]:
    """Triggers and cross-asset stats from the latest feature row (NaN -> unknown)."""
    trig = {}
    for key, col in TRIGGER_COLUMNS.items():
        value = _finite(context.get(col))
        trig[key] = None if value is None else value >= 0.5
    cross = {key: _finite(context.get(col)) for key, col in CROSS_COLUMNS.items()}
    for key in ("corr_btc", "corr_eth"):
        if cross[key] is not None and not -1 <= cross[key] <= 1:
            cross[key] = None
    return Triggers(**trig), CrossAsset(**cross)


@lru_cache(maxsize=256)
def _forecast_blocks(forecast, hours: float) -> tuple[PolicyForecast, Triggers, CrossAsset]:
    """The policy blocks that depend only on the forecast: built once per forecast, not per call."""
    if forecast is None:
        return (PolicyForecast(sigma_h=None, cascade_prob=None, horizon_hours=hours),
                *context_blocks({}))
    return (policy_forecast(forecast.values, hours), *context_blocks(forecast.context))


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


def make_decision(request: DecisionRequest, symbol: str, forecast, slot, config: PipelineConfig,
                  now: float) -> DecisionOut:
    """One decision for a bot's position. No forecast or no model -> the policy's fail-safe."""
    max_age = config.policy.max_data_age_s
    bundle = slot.bundle if slot is not None else None
    hours = horizon_hours(config, bundle)
    mark = request.market.price if request.market and request.market.price else request.mark_price
    if forecast is None:
        age, version, ts = None, None, None
        fc, triggers, cross = _forecast_blocks(None, hours)
    else:
        age, version, ts = max(forecast.age(now), 0.0), forecast.model_version, forecast.timestamp
        fc, triggers, cross = _forecast_blocks(forecast, hours)
    if request.market is not None:  # the bot's fresher view of the triggers wins
        seen = {k: v for k in ("funding_divergence", "volume_breakdown")
                if (v := getattr(request.market, k)) is not None}
        triggers = triggers.model_copy(update=seen) if seen else triggers
    stale = age is None or age > max_age
    try:
        inputs = PolicyInputs(
            symbol=symbol, forecast=fc, model_available=slot is not None, triggers=triggers,
            cross_asset=cross,
            position=Position(side=request.side, notional=request.notional,
                              entry_price=request.entry_price or mark, mark_price=mark,
                              leverage=request.leverage, hedge_ratio=request.hedge_ratio),
            equity=request.portfolio_value or request.notional / request.leverage,
            freshness=Freshness(forecast_age_s=age, features_age_s=age, max_age_s=max_age))
    except ValidationError as exc:  # a combination the request schema cannot see alone
        raise HTTPException(422, str(exc.errors()[0].get("msg", exc))) from exc
    decision = decide(inputs, config.policy)
    return to_out(decision, model_version=version, forecast_ts=ts, age=age, stale=stale)


def default_decision_columns(symbol: str, forecasts: pd.DataFrame, features: pd.DataFrame,
                             config: PipelineConfig, bundle: object | None = None) -> pd.DataFrame:
    """The policy's decision for the configured default position, per scored row.

    Each row is decided as of its own bar close (forecast age 0): a long of
    ``serving.default_position_notional`` at 1x, unhedged, equity = notional. Prices are set to 1
    because only ratios and caps are stored.
    """
    hours = horizon_hours(config, bundle)
    notional = config.serving.default_position_notional
    position = Position(side="long", notional=notional, entry_price=1.0, mark_price=1.0,
                        leverage=1.0, hedge_ratio=0.0)
    fresh = Freshness(forecast_age_s=0.0, features_age_s=0.0,
                      max_age_s=config.policy.max_data_age_s)
    cols = [c for c in CONTEXT_COLUMNS if c in features.columns]
    rows = []
    for ts in forecasts.index:
        values = {k: v for k, v in forecasts.loc[ts].items() if isinstance(v, (int, float))}
        triggers, cross = context_blocks(features.loc[ts, cols].to_dict() if cols else {})
        d = decide(PolicyInputs(symbol=symbol, forecast=policy_forecast(values, hours),
                                triggers=triggers, cross_asset=cross, position=position,
                                equity=notional, freshness=fresh), config.policy)
        rows.append({"hedge_ratio": d.hedge_ratio, "hedge_instrument": d.hedge_instrument,
                     "leverage_cap": d.leverage_cap, "size_cap": d.size_cap_notional,
                     "action": d.action, "fail_safe": d.fail_safe,
                     "reasons": " | ".join(d.reasons)})
    return pd.DataFrame(rows, index=forecasts.index)
