"""The forecast/decision service: ``create_app(config) -> FastAPI``, run under uvicorn.

Hot path: a request does dict lookups on the in-memory state and calls the pure policy ``decide``;
bundles, scores and feature rows are (re)loaded by a background poller, never per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TypeVar

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.types import Scope

from cascade_ml.config import PipelineConfig
from cascade_ml.serving.auth import BearerAuthMiddleware, load_token
from cascade_ml.serving.decisions import make_decision
from cascade_ml.serving.metrics import MetricsMiddleware, ServiceMetrics
from cascade_ml.serving.schemas import (
    DecisionOut,
    DecisionRequest,
    ErrorOut,
    ForecastOut,
    ModelOut,
    ModelsOut,
    ValidationErrorOut,
)
from cascade_ml.serving.state import Forecast, Poller, ServingState

log = logging.getLogger(__name__)
_AUTH_ERRORS = {401: {"model": ErrorOut, "description": "Missing or wrong bearer token"}}
_SCHEMA_REF = "#/components/schemas/{model}"
BodyT = TypeVar("BodyT", bound=BaseModel)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _validation_message(exc: RequestValidationError) -> str:
    """One line naming each bad field, e.g. ``body.notional: Input should be greater than 0``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _json_body(model: type[BaseModel]) -> dict:
    """``openapi_extra`` documenting a JSON request body that the handler parses itself (the
    model's schema is added to the components by ``_customise_openapi``)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": _SCHEMA_REF.format(model=model.__name__)}}}}}


def _is_json(scope: Scope) -> bool:
    """Whether the Content-Type is JSON (``application/json`` or ``application/*+json``), the
    media types FastAPI parses as a JSON body."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.partition(b";")[0].strip().lower()
            return media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json"))
    return False


async def _parse_body(request: Request, model: type[BodyT]) -> BodyT:
    """The JSON body validated by pydantic's Rust parser in one pass (no dict in between).

    Bad input raises the ``RequestValidationError`` FastAPI would (locations under ``body``), so
    it gets the same 422 as any other validation error; malformed JSON included.
    """
    if not _is_json(request.scope):
        raise RequestValidationError([{"loc": ("body",), "type": "content_type",
                                       "msg": "Content-Type should be application/json"}])
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]) from None


def _json(model: BaseModel) -> Response:
    """Serialize once with pydantic (the response_model still documents the shape); returning a
    Response skips FastAPI's second validation of an object we just built."""
    return Response(model.model_dump_json(), media_type="application/json")


def forecast_out(fc: Forecast, max_age: float, now: float) -> ForecastOut:
    age = fc.age(now)
    return ForecastOut(symbol=fc.symbol, timestamp=fc.timestamp.to_pydatetime(),
                       available_at=_utc(fc.available_at), age_seconds=round(age, 3),
                       stale=age > max_age, max_age_seconds=max_age,
                       model_version=fc.model_version, source=fc.source, **fc.values)


def _customise_openapi(app: FastAPI, bodies: tuple[type[BaseModel], ...]) -> None:
    """Add the request bodies the handlers parse themselves to the schema's components, and show
    the bearer scheme in /docs for the /v1/ routes (the check is in the middleware)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {})
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            schemas = components.setdefault("schemas", {})
            for model in bodies:
                body = model.model_json_schema(ref_template=_SCHEMA_REF)
                schemas.update(body.pop("$defs", {}))
                schemas[model.__name__] = body
            for path, ops in schema.get("paths", {}).items():
                if path.startswith("/v1/"):
                    for op in ops.values():
                        op["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(config: PipelineConfig, *, token: str | None = None, poll: bool = True,
               noop_route: bool = False) -> FastAPI:
    """Build the app. ``poll=False`` skips the background poller (the state is loaded once).

    ``noop_route`` adds ``GET /v1/noop`` (same auth and middleware, no work) for benchmarks.
    """
    serving = config.serving
    token = token if token is not None else load_token(serving)
    metrics = ServiceMetrics()
    state = ServingState()
    poller = Poller(config, state, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(poller.poll)
        task = asyncio.create_task(_poll_forever()) if poll else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _poll_forever() -> None:
        while True:
            await asyncio.sleep(serving.reload_interval_s)
            await asyncio.to_thread(poller.poll)

    app = FastAPI(title="cascade-ml forecast service", version="1",
                  description="Volatility and liquidation-cascade forecasts, turned into hedge "
                  "ratios and leverage caps for a hedging bot.", lifespan=lifespan)
    app.state.serving = state
    app.state.poller = poller
    app.state.metrics = metrics
    app.add_middleware(BearerAuthMiddleware, token=token)  # every /v1/ route, before parsing
    app.add_middleware(MetricsMiddleware, metrics=metrics, router=app.router)  # outermost

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                  for e in exc.errors()]
        return JSONResponse({"detail": _validation_message(exc), "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.get("/health", tags=["ops"])
    async def health() -> dict:
        """Alive (no auth): the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"], responses={503: {"description": "Not ready"}})
    async def ready() -> JSONResponse:
        """Ready when every target symbol has a model and a fresh forecast loaded."""
        now = time.time()
        problems = []
        for symbol in config.task.symbols:
            if symbol not in state.models:
                problems.append(f"{symbol}: no model loaded")
            fc = state.forecasts.get(symbol)
            if fc is None:
                problems.append(f"{symbol}: no forecast")
            elif fc.age(now) > config.policy.max_data_age_s:
                problems.append(f"{symbol}: forecast stale ({fc.age(now):.0f} s old)")
        body = {"ready": not problems, "problems": problems}
        return JSONResponse(body, status_code=503 if problems else 200)

    @app.get("/metrics", tags=["ops"])
    async def prometheus() -> Response:
        """Prometheus text exposition (no auth, like /health; holds no secrets)."""
        poller.update_gauges()
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/forecasts/{symbol}", response_model=ForecastOut,
             responses={**_AUTH_ERRORS, 404: {"model": ErrorOut}}, tags=["forecasts"])
    async def get_forecast(symbol: str) -> Response:
        """The latest forecast for a symbol, with its age and a stale flag."""
        fc = state.forecasts.get(symbol.upper())
        if fc is None:
            known = sorted(state.forecasts)
            raise HTTPException(404, f"no forecast for symbol {symbol!r}; known: {known}")
        return _json(forecast_out(fc, config.policy.max_data_age_s, time.time()))

    @app.post("/v1/decisions", response_model=DecisionOut, tags=["decisions"],
              openapi_extra=_json_body(DecisionRequest),
              responses={**_AUTH_ERRORS, 422: {"model": ValidationErrorOut}})
    async def post_decision(http: Request) -> Response:
        """Hedge ratio, instrument, leverage and size caps for the bot's position.

        Falls back to the policy's fail-safe when the forecast is stale or no model is loaded.
        """
        request = await _parse_body(http, DecisionRequest)
        symbol = request.symbol.upper()
        out = make_decision(request, symbol, state.forecasts.get(symbol), state.models.get(symbol),
                            config, time.time())
        if out.fail_safe:
            reason = ("no_model" if symbol not in state.models
                      else "stale" if out.stale else "policy")
            known = symbol in state.models or symbol in config.task.symbols
            metrics.failsafe.labels(symbol if known else "other", reason).inc()
        return _json(out)

    @app.get("/v1/models", response_model=ModelsOut, responses=_AUTH_ERRORS,
             tags=["models"])
    async def get_models() -> ModelsOut:
        """Serving bundle per symbol (version, training span, metrics) and any reload error."""
        models, errors = state.models, state.load_errors
        out = []
        for symbol in sorted(set(models) | set(errors) | set(config.task.symbols)):
            slot = models.get(symbol)
            b = slot.bundle if slot else None
            out.append(ModelOut(
                symbol=symbol, version=slot.version if slot else None,
                horizon=getattr(b, "horizon", None), metrics=getattr(b, "metrics", None),
                training_span=getattr(b, "training_span", None),
                n_features=len(b.feature_names) if b is not None else None,
                path=str(slot.path) if slot else None,
                loaded_at=_utc(slot.loaded_at) if slot else None, load_error=errors.get(symbol)))
        return ModelsOut(models=out)

    _customise_openapi(app, (DecisionRequest,))
    if noop_route:
        @app.get("/v1/noop", tags=["ops"], include_in_schema=False)
        async def noop() -> dict:
            return {"ok": True}

    return app
