"""``POST /v1/decisions``: hedge ratio, instrument, leverage and size caps for a bot's position."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cascade_ml.serving.decisions import make_decision
from cascade_ml.serving.http import (
    AUTH_ERRORS,
    NOT_SERVED,
    DirectRoute,
    json_body,
    json_bytes,
    parse_body,
)
from cascade_ml.serving.schemas import DecisionOut, DecisionRequest, ValidationErrorOut
from cascade_ml.serving.service import Service

# The hot path: a DirectRoute (no dependency solving), so the service comes from the app state.
router = APIRouter(prefix="/v1", tags=["decisions"], route_class=DirectRoute)


@router.post("/decisions", response_model=DecisionOut, openapi_extra=json_body(DecisionRequest),
             responses={**AUTH_ERRORS, **NOT_SERVED, 422: {"model": ValidationErrorOut}})
async def post_decision(http: Request) -> Response:
    """The policy's answer for the bot's position on a served symbol (404 for any other).

    Falls back to the policy's fail-safe when the forecast is stale, no model is loaded or the
    monitor's report on the forecast's bar names a missing or stale input; when it names only
    drift, the answer is made on the baseline forecaster's forecast (``forecaster``). With
    ``as_of``: the answer then, from the newest forecast available at that time (404 when
    there was none).
    """
    service: Service = http.app.state.service
    request = await parse_body(http, DecisionRequest)
    symbol = service.require_symbol(request.symbol)
    state = service.state
    forecast = state.forecasts.get(symbol)
    loaded = symbol in state.models
    if request.as_of is None:
        out = make_decision(request, symbol, forecast, loaded, service.plans, time.time())
    else:  # the forecast available then, aged then; a stored one stands for its model
        then = await service.forecast_as_of(symbol, request.as_of, ("body", "as_of"))
        served = then is forecast
        out = make_decision(request, symbol, then, loaded if served else True, service.plans,
                            request.as_of.timestamp(),
                            None if served else service.plans.make(symbol, then))
        forecast, loaded = then, loaded or not served
    if out.fail_safe:
        reason = ("no_model" if not loaded else "stale" if out.stale else
                  "monitor" if forecast is not None and forecast.monitor_reasons
                  and not forecast.baseline else "policy")
        service.metrics.failsafe.labels(symbol, reason).inc()
    return json_bytes(out.body)
