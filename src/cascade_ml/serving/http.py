"""HTTP plumbing shared by the routers: JSON bodies parsed in one pass, JSON answers serialized
once, one error shape for bad input, and the OpenAPI additions those shortcuts need."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import Scope

from cascade_ml.serving.schemas import ErrorOut

log = logging.getLogger(__name__)
AUTH_ERRORS = {401: {"model": ErrorOut, "description": "Missing or wrong bearer token"}}
NOT_SERVED = {404: {"model": ErrorOut, "description": "Symbol not served (not in task.symbols) "
                    "or no forecast yet"}}
SCHEMA_REF = "#/components/schemas/{model}"
_JSON_CONTENT_TYPE = (b"content-type", b"application/json")
BodyT = TypeVar("BodyT", bound=BaseModel)


class DirectRoute(APIRoute):
    """A route whose endpoint takes the ``Request`` and returns a ``Response`` itself.

    FastAPI's route class hook (``route_class=``): the endpoint is called as is, skipping the
    per-request dependency solving, body handling and response validation that cost more than
    the policy itself on the decision path. The route keeps its OpenAPI entry (``response_model``,
    ``openapi_extra``), the middleware and the exception handlers; the endpoint parses its body
    with ``parse_body`` and answers with ``json_response`` (or ``json_bytes`` when it has
    serialized the answer itself).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


def json_body(model: type[BaseModel]) -> dict:
    """``openapi_extra`` documenting a JSON request body that the handler parses itself (the
    model's schema is added to the components by ``customise_openapi``)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": SCHEMA_REF.format(model=model.__name__)}}}}}


def _is_json(scope: Scope) -> bool:
    """Whether the Content-Type is JSON (``application/json`` or ``application/*+json``), the
    media types FastAPI parses as a JSON body."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.partition(b";")[0].strip().lower()
            return media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json"))
    return False


async def read_body(request: Request) -> bytes:
    """The whole request body, read straight from the ASGI ``receive`` channel: what
    ``Request.body()`` returns, without its async generator (a few microseconds a request on the
    decision path, where a body is one chunk). A client gone mid-body raises
    ``ClientDisconnect`` as Starlette does."""
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def parse_body(request: Request, model: type[BodyT]) -> BodyT:
    """The JSON body validated by pydantic's Rust parser in one pass (no dict in between).

    Bad input raises the ``RequestValidationError`` FastAPI would (locations under ``body``), so
    it gets the same 422 as any other validation error; malformed JSON included.
    """
    if not _is_json(request.scope):
        raise RequestValidationError([{"loc": ("body",), "type": "content_type",
                                       "msg": "Content-Type should be application/json"}])
    try:
        return model.model_validate_json(await read_body(request))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]) from None


def json_response(model: BaseModel) -> Response:
    """Serialize once with pydantic (the response_model still documents the shape); returning a
    Response skips FastAPI's second validation of an object we just built."""
    return Response(model.model_dump_json(), media_type="application/json")


class JSONBytesResponse(Response):
    """A 200 whose JSON body is already bytes: its two headers set directly (``Response``'s
    general header setup costs a microsecond on the decision path)."""

    media_type = "application/json"

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        if headers is not None or self.status_code != 200:
            super().init_headers(headers)
            return
        self.raw_headers = [(b"content-length", b"%d" % len(self.body)), _JSON_CONTENT_TYPE]


def json_bytes(body: bytes) -> Response:
    """An answer already serialized (the decision route writes its JSON with orjson)."""
    return JSONBytesResponse(body)


def _validation_message(exc: RequestValidationError) -> str:
    """One line naming each bad field, e.g. ``body.notional: Input should be greater than 0``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """422 with a one-line ``detail`` plus structured ``errors``; any bug a logged plain 500."""

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                  for e in exc.errors()]
        return JSONResponse({"detail": _validation_message(exc), "errors": errors},
                            status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)


def customise_openapi(app: FastAPI, bodies: tuple[type[BaseModel], ...]) -> None:
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
                body = model.model_json_schema(ref_template=SCHEMA_REF)
                schemas.update(body.pop("$defs", {}))
                schemas[model.__name__] = body
            for path, ops in schema.get("paths", {}).items():
                if path.startswith("/v1/"):
                    for op in ops.values():
                        op["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
