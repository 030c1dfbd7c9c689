"""Open operational routes: liveness, readiness, Prometheus metrics; and the benchmark no-op."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from cascade_ml.serving.service import ServiceDep

router = APIRouter(tags=["ops"])
noop_router = APIRouter(tags=["ops"])


@router.get("/health")
async def health() -> dict:
    """Alive (no auth): the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Not ready"}})
async def ready(service: ServiceDep) -> JSONResponse:
    """Ready when every task symbol has a model and a fresh forecast loaded."""
    now = time.time()
    state, max_age = service.state, service.policy.max_data_age_s
    problems = []
    for symbol in service.task.symbols:
        if symbol not in state.models:
            problems.append(f"{symbol}: no model loaded")
        fc = state.forecasts.get(symbol)
        if fc is None:
            problems.append(f"{symbol}: no forecast")
        elif fc.age(now) > max_age:
            problems.append(f"{symbol}: forecast stale ({fc.age(now):.0f} s old)")
    body = {"ready": not problems, "problems": problems}
    return JSONResponse(body, status_code=503 if problems else 200)


@router.get("/metrics")
async def prometheus(service: ServiceDep) -> Response:
    """Prometheus text exposition (no auth, like /health; holds no secrets)."""
    service.poller.update_gauges()
    return Response(service.metrics.render(),
                    media_type="text/plain; version=0.0.4; charset=utf-8")


@noop_router.get("/v1/noop", include_in_schema=False)
async def noop() -> dict:
    """Same auth and middleware as the API, no work: the framework's ceiling for benchmarks."""
    return {"ok": True}
