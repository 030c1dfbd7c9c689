"""The decision route's fast path, in process: the JSON it writes is ``DecisionOut`` of ``decide``
on the full inputs (as the route built them before plans), one plan per served forecast, the
request schema already holds a position to ``Position``'s constraints, and the body is read
whole from the ASGI channel."""

from __future__ import annotations

import asyncio
import json
import random

import pandas as pd
import pytest
from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request

from cascade_ml.forecasting.inputs import no_forecast, policy_forecast
from cascade_ml.policy import PolicyConfig, decide
from cascade_ml.policy.schemas import CrossAsset, Freshness, PolicyInputs, Position, Triggers
from cascade_ml.serving.decisions import DecisionPlans, make_decision
from cascade_ml.serving.http import read_body
from cascade_ml.serving.schemas import DecisionOut, DecisionRequest
from cascade_ml.serving.state import Forecast

POLICY = PolicyConfig(same_perp_effectiveness=0.85, vol_reference_annual=1.5)
HOURS = 24.0
BAR = pd.Timestamp("2024-06-01 10:00", tz="UTC")
NOW = (BAR + pd.Timedelta("1h")).timestamp() + 120.0


def _forecast(sigma: float, prob: float, *, bar: pd.Timestamp = BAR) -> Forecast:
    values = {"vol_forecast": sigma, "var_forecast": sigma ** 2, "cascade_prob": prob}
    return Forecast("NEAR", bar, (bar + pd.Timedelta("1h")).timestamp(), "v7", values, "scores",
                    policy_forecast(values, HOURS),
                    Triggers(funding_divergence=True, sentiment_spike=None,
                             volume_breakdown=False),
                    CrossAsset(beta_btc=1.2, corr_btc=0.97, beta_eth=0.8, corr_eth=0.5))


def _expected(request: DecisionRequest, fc: Forecast | None, loaded: bool) -> dict:
    """What the route answered before plans: ``decide`` on PolicyInputs, then ``DecisionOut``."""
    max_age = POLICY.max_data_age_s
    market = request.market
    mark = market.price if market and market.price else request.mark_price
    age = None if fc is None else max(NOW - fc.available_at, 0.0)
    triggers = Triggers() if fc is None else fc.triggers
    if market is not None:
        seen = {k: v for k in ("funding_divergence", "volume_breakdown")
                if (v := getattr(market, k)) is not None}
        triggers = triggers.model_copy(update=seen)
    d = decide(PolicyInputs(
        symbol="NEAR", forecast=no_forecast(HOURS) if fc is None else fc.policy,
        model_available=loaded, triggers=triggers,
        cross_asset=CrossAsset() if fc is None else fc.cross,
        position=Position(side=request.side, notional=request.notional,
                          entry_price=request.entry_price or mark, mark_price=mark,
                          leverage=request.leverage, hedge_ratio=request.hedge_ratio),
        equity=request.portfolio_value or request.notional / request.leverage,
        freshness=Freshness(forecast_age_s=age, features_age_s=age, max_age_s=max_age)), POLICY)
    out = DecisionOut(
        symbol=d.symbol, hedge_ratio=d.hedge_ratio, current_hedge_ratio=d.current_hedge_ratio,
        instrument=d.hedge_instrument, hedge_notional=d.hedge_notional,
        leverage_cap=d.leverage_cap, size_cap=d.size_cap_notional,
        liquidation_price=d.liquidation_price, risk_score=d.risk_score, action=d.action,
        reasons=d.reasons, fail_safe=d.fail_safe,
        model_version=None if fc is None else fc.model_version,
        forecast_timestamp=None if fc is None else fc.timestamp.to_pydatetime(),
        forecast_age_seconds=None if age is None else round(age, 3),
        stale=age is None or age > max_age)
    return json.loads(out.model_dump_json())


def _requests(n: int, seed: int) -> list[DecisionRequest]:
    rng = random.Random(seed)
    markets = [None, {"price": 5.3}, {"funding_divergence": False},
               {"volume_breakdown": True, "funding_divergence": True}]
    out = []
    for i in range(n):
        body: dict = {"symbol": "near", "side": rng.choice(["long", "short"]),
                      "notional": rng.uniform(100, 300_000), "mark_price": rng.uniform(2, 8),
                      "leverage": rng.uniform(0.5, 12), "hedge_ratio": rng.random()}
        if i % 3 == 0:
            body["entry_price"] = body["mark_price"] * rng.uniform(0.9, 1.1)
        if i % 2 == 0:
            body["portfolio_value"] = rng.uniform(5_000, 2e6)
        if markets[i % 4] is not None:
            body["market"] = markets[i % 4]
        if i % 5 == 1:  # a small position near the band's top: inside every cap, so it holds
            body.update(notional=rng.uniform(100, 1000), portfolio_value=1e6, side="long",
                        leverage=rng.uniform(0.5, 1.5), hedge_ratio=rng.uniform(0.68, 0.72))
        out.append(DecisionRequest.model_validate(body))
    return out


def test_served_json_is_decision_out_of_decide_for_every_position() -> None:
    plans = DecisionPlans(POLICY, HOURS)
    forecasts = [_forecast(0.035, 0.12), _forecast(0.02, 0.6), _forecast(float("nan"), 0.1),
                 _forecast(0.03, 0.1, bar=BAR - pd.Timedelta("4h")), None]  # last two: stale
    answers = []
    for k, fc in enumerate(forecasts):
        for loaded in (True, False):
            for request in _requests(40, seed=k):
                served = make_decision(request, "NEAR", fc, loaded, plans, NOW)
                got = json.loads(served.body)
                assert list(got) == list(DecisionOut.model_fields)  # the documented shape
                assert got == _expected(request, fc, loaded), request
                assert (served.fail_safe, served.stale) == (got["fail_safe"], got["stale"])
                answers.append(got)
    assert sum(not a["fail_safe"] for a in answers) == 80  # the two fresh forecasts with a model
    assert {a["instrument"] for a in answers} == {"same_perp", "BTC"}
    assert {a["action"] for a in answers} == {"hold", "rebalance"}


def test_one_plan_per_served_forecast() -> None:
    plans = DecisionPlans(POLICY, HOURS)
    first, swapped = _forecast(0.035, 0.12), _forecast(0.035, 0.12)
    plan = plans.get("NEAR", first).plan
    assert plans.get("NEAR", first).plan is plan  # reused while the forecast is served
    assert plans.get("NEAR", swapped).plan is not plan  # the poller swapped a new one in
    assert plans.get("NEAR", None).plan.problems  # no forecast: the fail-safe's plan


def test_request_schema_holds_position_constraints() -> None:
    """The route passes request values to the policy without a second ``Position`` validation:
    every constraint of a ``Position`` field is one of the request field's it comes from."""
    for name in ("notional", "entry_price", "mark_price", "leverage", "hedge_ratio", "side"):
        wanted = Position.model_fields[name]
        have = DecisionRequest.model_fields[name]
        assert set(map(repr, wanted.metadata)) <= set(map(repr, have.metadata)), name
        assert have.annotation in (wanted.annotation, wanted.annotation | None), name
    with pytest.raises(ValidationError):
        DecisionRequest.model_validate({"symbol": "NEAR", "notional": 1.0, "mark_price": 1.0,
                                        "leverage": 1.0, "market": {"price": 0.0}})


def _request(messages: list[dict]) -> Request:
    queue = list(messages)

    async def receive() -> dict:
        return queue.pop(0)

    return Request({"type": "http", "method": "POST", "headers": []}, receive)


def test_body_read_whole_from_the_channel() -> None:
    chunked = [{"type": "http.request", "body": b'{"a": ', "more_body": True},
               {"type": "http.request", "body": b"", "more_body": True},
               {"type": "http.request", "body": b"1}", "more_body": False}]
    assert asyncio.run(read_body(_request(chunked))) == b'{"a": 1}'
    assert asyncio.run(read_body(_request([{"type": "http.request"}]))) == b""
    gone = [{"type": "http.request", "body": b"{", "more_body": True},
            {"type": "http.disconnect"}]
    with pytest.raises(ClientDisconnect):
        asyncio.run(read_body(_request(gone)))
