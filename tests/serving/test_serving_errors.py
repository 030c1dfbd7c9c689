"""A bug (not bad input) becomes a logged 500 with a plain message: no traceback leaks out."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from demo_data import SYMBOL, write_pipeline
from serving_helpers import TOKEN, auth, free_port

from cascade_ml.cli.serve_cmds import build_app
from cascade_ml.config import load_pipeline


def test_unexpected_error_is_a_logged_500(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = build_app(load_pipeline(write_pipeline(tmp_path)), token=TOKEN, poll=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        app.state.service.state.forecasts = {SYMBOL: "not a forecast"}  # a bug in the state
        with caplog.at_level(logging.ERROR, logger="cascade_ml.serving.http"):
            response = httpx.get(f"http://127.0.0.1:{port}/v1/forecasts/{SYMBOL}", headers=auth())
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error"}
        assert "unhandled error on GET /v1/forecasts/NEAR" in caplog.text
        app.state.service.state.forecasts = {}
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'route="/v1/forecasts/{symbol}",status="500"' in metrics
    finally:
        server.should_exit = True
        thread.join(10)
