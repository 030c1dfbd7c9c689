"""``GET /v1/forecasts/{symbol}``: the latest forecast (or the one available at ``as_of``) with
its age and a stale flag."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import AwareDatetime

from cascade_ml.serving.http import AUTH_ERRORS, NOT_SERVED, json_response
from cascade_ml.serving.schemas import ForecastOut, ValidationErrorOut
from cascade_ml.serving.service import ServiceDep
from cascade_ml.serving.state import Forecast

router = APIRouter(prefix="/v1", tags=["forecasts"])
AS_OF = Query(description="Answer as of this time (ISO-8601 with a timezone, e.g. "
              "2026-03-05T10:00:00Z): the newest forecast available then, aged then.")


def forecast_out(fc: Forecast, max_age: float, now: float,
                 as_of: datetime | None = None) -> ForecastOut:
    age = fc.age(now)
    return ForecastOut(symbol=fc.symbol, timestamp=fc.timestamp.to_pydatetime(),
                       available_at=datetime.fromtimestamp(fc.available_at, tz=UTC),
                       age_seconds=round(age, 3), stale=age > max_age, max_age_seconds=max_age,
                       model_version=fc.model_version, source=fc.source, as_of=as_of,
                       **fc.values)


@router.get("/forecasts/{symbol}", response_model=ForecastOut,
            responses={**AUTH_ERRORS, **NOT_SERVED, 422: {"model": ValidationErrorOut}})
async def get_forecast(symbol: str, service: ServiceDep,
                       as_of: Annotated[AwareDatetime | None, AS_OF] = None) -> Response:
    """The latest forecast for a symbol; 404 for a symbol not served or not forecast yet (with
    ``as_of``: none available at that time, the message gives the span stored)."""
    symbol = service.require_symbol(symbol)
    max_age = service.policy.max_data_age_s
    if as_of is not None:
        fc = await service.forecast_as_of(symbol, as_of, ("query", "as_of"))
        return json_response(forecast_out(fc, max_age, as_of.timestamp(),
                                          as_of.astimezone(UTC)))
    fc = service.state.forecasts.get(symbol)
    if fc is None:
        raise HTTPException(404, f"no forecast for symbol {symbol!r} yet (no scores, no model "
                            "or no feature rows); see /ready")
    return json_response(forecast_out(fc, max_age, time.time()))
