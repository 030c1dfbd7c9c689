"""The forecast/decision service: ``create_app(...) -> FastAPI``, run under uvicorn.

Hot path: a request does dict lookups on the in-memory state and calls the pure policy ``decide``;
bundles, scores and feature rows are (re)loaded by a background poller, never per request. The
routes live in ``serving.routes`` (one router per concern); this module wires them together.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.policy import PolicyConfig
from cascade_ml.serving.auth import BearerAuthMiddleware, load_token
from cascade_ml.serving.config import ServingConfig
from cascade_ml.serving.http import customise_openapi, install_error_handlers
from cascade_ml.serving.metrics import MetricsMiddleware, ServiceMetrics
from cascade_ml.serving.routes import decisions, forecasts, models, ops
from cascade_ml.serving.schemas import DecisionRequest
from cascade_ml.serving.service import Service
from cascade_ml.serving.state import Poller, ServingState


def create_app(task: TaskConfig, serving: ServingConfig, policy: PolicyConfig, *,
               store: MarketStore, models_dir: Path, token: str | None = None,
               poll: bool = True, noop_route: bool = False) -> FastAPI:
    """Build the app for the task's symbols, their bundles under ``models_dir`` and the tables
    of ``store``. ``poll=False`` skips the background poller (the state is loaded once);
    ``noop_route`` adds ``GET /v1/noop`` (same auth and middleware, no work) for benchmarks."""
    token = token if token is not None else load_token(serving)
    metrics = ServiceMetrics()
    state = ServingState()
    poller = Poller(store, task, models_dir, policy, policy.max_data_age_s, state,
                    metrics)
    service = Service(task, serving, policy, state, poller, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(poller.poll)
        refresh = asyncio.create_task(_poll_forever()) if poll else None
        try:
            yield
        finally:
            if refresh is not None:
                refresh.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresh

    async def _poll_forever() -> None:
        while True:
            await asyncio.sleep(serving.reload_interval_s)
            await asyncio.to_thread(poller.poll)

    app = FastAPI(title="cascade-ml forecast service", version="1",
                  description="Volatility and liquidation-cascade forecasts, turned into hedge "
                  "ratios and leverage caps for a hedging bot.", lifespan=lifespan)
    app.state.service = service
    # routes are matched in order: hot paths first; the benchmark no-op before them all, so the
    # ceiling it measures is the framework's cheapest route
    routers = [decisions.router, forecasts.router, models.router, ops.router]
    if noop_route:
        routers.insert(0, ops.noop_router)
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    customise_openapi(app, (DecisionRequest,))
    app.add_middleware(BearerAuthMiddleware, token=token)  # every /v1/ route, before parsing
    app.add_middleware(MetricsMiddleware, metrics=metrics,  # outermost: times the 401s too
                       routes=[route for router in routers for route in router.routes])
    return app
