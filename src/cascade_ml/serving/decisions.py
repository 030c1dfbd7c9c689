"""One served decision: the bot's position + the symbol's served forecast -> the pure ``decide``.

The forecast's policy blocks (forecast, triggers, cross-asset stats) were built by the poller
with ``cascade_ml.forecasting.inputs``, the same code batch scoring uses. The policy's half of
the decision that depends only on that forecast (``policy.decide.plan``) is made once per served
forecast (``DecisionPlans``); per request only the position, the freshness and the bot's fresher
trigger flags are added (``decide_position``), so the answer is ``decide`` on the same inputs,
reasons included, without redoing the forecast's half for every position.

A forecast the poller graded to the baseline forecaster (drift alone, ``Forecast.baseline``) is
planned like any other on the baseline's values; its answer names the forecaster
(``forecaster``) and leads its reasons with why, as the live loop's decision does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import orjson
from fastapi import HTTPException
from pydantic import TypeAdapter

from cascade_ml.contracts.task import Side
from cascade_ml.forecasting.baseline import BASELINE_NAME
from cascade_ml.forecasting.inputs import no_forecast
from cascade_ml.policy import PolicyConfig, decide
from cascade_ml.policy.decide import ForecastPlan, decision_fields, plan
from cascade_ml.policy.schemas import Freshness, PolicyInputs, Position
from cascade_ml.serving.schemas import DecisionRequest
from cascade_ml.serving.state import Forecast

_BOT_TRIGGERS = ("funding_divergence", "volume_breakdown")  # the request's MarketUpdate flags
_DATETIME = TypeAdapter(datetime)


@dataclass(frozen=True)
class Planned:
    """A served forecast (None: none yet) with its policy plan and the answer fields it fixes."""

    forecast: Forecast | None
    plan: ForecastPlan
    model_version: str | None
    timestamp: str | None  # the forecast bar's open time as DecisionOut writes it in JSON


class DecisionPlans:
    """The policy plan of each symbol's served forecast: made by the first decision after the
    poller swaps a forecast in (a new object), reused by every decision until the next swap."""

    def __init__(self, policy: PolicyConfig, horizon_hours: float) -> None:
        self.policy = policy
        self.horizon_hours = horizon_hours
        self._planned: dict[str, Planned] = {}

    def get(self, symbol: str, forecast: Forecast | None) -> Planned:
        planned = self._planned.get(symbol)
        if planned is None or planned.forecast is not forecast:
            planned = self._planned[symbol] = self.make(symbol, forecast)
        return planned

    def make(self, symbol: str, forecast: Forecast | None) -> Planned:
        """The plan of any forecast, not kept (an as-of answer's past forecast must not evict
        the served one's)."""
        if forecast is None:
            return Planned(None, plan(symbol, no_forecast(self.horizon_hours), self.policy),
                           None, None)
        return Planned(forecast, plan(symbol, forecast.policy, self.policy,
                                      triggers=forecast.triggers, cross_asset=forecast.cross,
                                      trailing_vol_annual=forecast.trailing_vol),
                       forecast.model_version,
                       _DATETIME.dump_python(forecast.timestamp.to_pydatetime(), mode="json"))


class Served(NamedTuple):
    """The answer's JSON, and what the route counts in its metrics."""

    body: bytes
    fail_safe: bool
    stale: bool


class Held(NamedTuple):
    """The bot's position as the policy reads it (``PositionLike``), from request values the
    schema has validated."""

    side: Side
    notional: float
    entry_price: float
    mark_price: float
    leverage: float
    hedge_ratio: float
    margin_mode: Literal["isolated", "cross"] = "isolated"


class Ages(NamedTuple):
    """Ages of the served forecast and its features (``FreshnessLike``)."""

    forecast_age_s: float | None
    features_age_s: float | None
    max_age_s: float


MODEL = "model"  # ``forecaster`` of an answer on the served model's forecast


def decision_body(d: Mapping[str, Any], *, model_version: str | None,
                  forecast_timestamp: str | None, age: float | None, stale: bool,
                  as_of: str | None = None, forecaster: str = MODEL) -> dict:
    """``DecisionOut`` of a decision's fields (``Decision.model_dump()`` or
    ``decision_fields``), as a JSON-ready dict in its field order (a test checks the two agree)."""
    return {
        "symbol": d["symbol"], "hedge_ratio": d["hedge_ratio"],
        "current_hedge_ratio": d["current_hedge_ratio"], "instrument": d["hedge_instrument"],
        "hedge_notional": d["hedge_notional"], "leverage_cap": d["leverage_cap"],
        "size_cap": d["size_cap_notional"], "liquidation_price": d["liquidation_price"],
        "risk_score": d["risk_score"], "action": d["action"], "reasons": d["reasons"],
        "fail_safe": d["fail_safe"], "forecaster": forecaster, "model_version": model_version,
        "forecast_timestamp": forecast_timestamp,
        "forecast_age_seconds": None if age is None else round(age, 3), "stale": stale,
        "as_of": as_of}


def make_decision(request: DecisionRequest, symbol: str, forecast: Forecast | None,
                  model_loaded: bool, plans: DecisionPlans, now: float,
                  planned: Planned | None = None) -> Served:
    """One decision for a bot's position, the forecast aged at ``now`` (epoch seconds: the
    clock, or the request's ``as_of``). No forecast, no model, or inputs the monitor distrusts
    (``forecast.monitor_reasons``) -> the policy's fail-safe, unless drift alone made the
    poller serve the baseline's forecast (``forecast.baseline``). ``planned``: the forecast's
    plan when it is not the served one (``DecisionPlans.make``)."""
    policy = plans.policy
    max_age = policy.max_data_age_s
    market = request.market
    mark = market.price if market is not None and market.price else request.mark_price
    age = None if forecast is None else max(forecast.age(now), 0.0)
    seen = {} if market is None else {
        k: v for k in _BOT_TRIGGERS if (v := getattr(market, k)) is not None}
    # The request schema holds every value to Position's constraints already; only equity
    # (notional / leverage can underflow) is a combination it cannot see alone.
    position = Held(request.side, request.notional, request.entry_price or mark, mark,
                    request.leverage, request.hedge_ratio)
    equity = request.portfolio_value or request.notional / request.leverage
    if not equity > 0:
        raise HTTPException(422, "equity (portfolio_value, else notional / leverage) must be "
                            "greater than 0")
    freshness = Ages(age, age, max_age)
    planned = planned or plans.get(symbol, forecast)
    baseline = None if forecast is None else forecast.baseline
    if forecast is not None and forecast.monitor_reasons and not baseline:  # the monitor's
        triggers = forecast.triggers.model_copy(update=seen) if seen else forecast.triggers
        fields = decide(PolicyInputs(
            symbol=symbol, forecast=forecast.policy, model_available=model_loaded,
            triggers=triggers, cross_asset=forecast.cross,
            trailing_vol_annual=forecast.trailing_vol,
            position=Position(**position._asdict()), equity=equity,
            freshness=Freshness(**freshness._asdict())), policy,
            forecast.monitor_reasons).model_dump()
    else:  # decide_position, without building the Decision only to write it out
        p = planned.plan
        fields = decision_fields(p, position, equity, fired=p.fired_with(seen),
                                 model_available=model_loaded, freshness=freshness)
        if baseline:
            fields = {**fields, "reasons": [baseline, *fields["reasons"]]}
    if forecast is not None and forecast.smoothing:  # a half-life set, no history to smooth
        fields = {**fields, "reasons": [*fields["reasons"], forecast.smoothing]}
    stale = age is None or age > max_age
    as_of = (None if request.as_of is None
             else _DATETIME.dump_python(request.as_of.astimezone(UTC), mode="json"))
    body = decision_body(fields, model_version=planned.model_version,
                         forecast_timestamp=planned.timestamp, age=age, stale=stale, as_of=as_of,
                         forecaster=BASELINE_NAME if baseline else MODEL)
    return Served(orjson.dumps(body), fields["fail_safe"], stale)

