"""Run the service under uvicorn (the one place that knows about the ASGI server)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from cascade_ml.serving.config import ServingConfig


def serve(app: FastAPI, serving: ServingConfig, host: str | None = None,
          port: int | None = None, *, log_level: str = "warning") -> None:
    """Serve ``app`` until interrupted (build it first: the token is checked before the port
    is bound)."""
    uvicorn.run(app, host=host or serving.host, port=port or serving.port, log_level=log_level,
                access_log=serving.log_requests, timeout_graceful_shutdown=5)
