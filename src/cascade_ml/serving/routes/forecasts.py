"""``GET /v1/forecasts/{symbol}``: the latest forecast with its age and a stale flag."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from cascade_ml.serving.http import AUTH_ERRORS, NOT_SERVED, json_response
from cascade_ml.serving.schemas import ForecastOut
from cascade_ml.serving.service import ServiceDep
from cascade_ml.serving.state import Forecast

router = APIRouter(prefix="/v1", tags=["forecasts"])


def forecast_out(fc: Forecast, max_age: float, now: float) -> ForecastOut:
    age = fc.age(now)
    return ForecastOut(symbol=fc.symbol, timestamp=fc.timestamp.to_pydatetime(),
                       available_at=datetime.fromtimestamp(fc.available_at, tz=UTC),
                       age_seconds=round(age, 3), stale=age > max_age, max_age_seconds=max_age,
                       model_version=fc.model_version, source=fc.source, **fc.values)


@router.get("/forecasts/{symbol}", response_model=ForecastOut,
            responses={**AUTH_ERRORS, **NOT_SERVED})
async def get_forecast(symbol: str, service: ServiceDep) -> Response:
    """The latest forecast for a symbol; 404 for a symbol not served or not forecast yet."""
    symbol = service.require_symbol(symbol)
    fc = service.state.forecasts.get(symbol)
    if fc is None:
        raise HTTPException(404, f"no forecast for symbol {symbol!r} yet (no scores, no model "
                            "or no feature rows); see /ready")
    return json_response(forecast_out(fc, service.policy.max_data_age_s, time.time()))
