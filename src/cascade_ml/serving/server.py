"""Run the service under uvicorn (the one place that knows about the ASGI server)."""

from __future__ import annotations

import uvicorn

from cascade_ml.config import PipelineConfig
from cascade_ml.serving.app import create_app


def serve(config: PipelineConfig, host: str | None = None, port: int | None = None, *,
          noop_route: bool = False, log_level: str = "warning") -> None:
    """Serve until interrupted; the token is checked before the port is bound."""
    app = create_app(config, noop_route=noop_route)
    uvicorn.run(app, host=host or config.serving.host, port=port or config.serving.port,
                log_level=log_level, access_log=config.serving.log_requests,
                timeout_graceful_shutdown=5)
