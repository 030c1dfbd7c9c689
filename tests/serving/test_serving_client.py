"""CascadeClient retry rules over real sockets: a closed port, and a real uvicorn app (in a thread)
that fails a set number of times before answering."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from serving_helpers import free_port

from cascade_ml.client import CascadeClient, RequestRejectedError, ServiceUnavailableError

FORECAST = {"symbol": "NEAR", "timestamp": "2026-01-01T00:00:00Z",
            "available_at": "2026-01-01T01:00:00Z", "age_seconds": 5.0, "stale": False,
            "model_version": "v1", "source": "scores", "max_age_seconds": 7200,
            "vol_forecast": 0.05, "a_field_from_a_newer_server": 1}


class Flaky:
    """Answers 503 ``failures`` times, then 200; 400 for symbol BAD. Counts every call."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        app = FastAPI()

        @app.get("/v1/forecasts/{symbol}")
        async def forecast(symbol: str) -> JSONResponse:
            self.calls += 1
            if symbol == "BAD":
                return JSONResponse({"detail": "bad symbol"}, status_code=400)
            if self.calls <= self.failures:
                return JSONResponse({"detail": "warming up"}, status_code=503)
            return JSONResponse(FORECAST)

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Flaky:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def sleeps() -> Iterator[list[float]]:
    yield []


def test_retries_5xx_with_exponential_backoff_then_succeeds(sleeps: list[float]) -> None:
    with Flaky(failures=2) as flaky, CascadeClient(f"http://127.0.0.1:{flaky.port}", "t",
                                                   retries=3, backoff=0.01,
                                                   sleep=sleeps.append) as client:
        result = client.forecast("NEAR")
    assert flaky.calls == 3
    assert sleeps == [0.01, 0.02]
    assert result.vol_forecast == 0.05 and result.stale is False
    assert result.timestamp.tzinfo is not None


def test_gives_up_after_retries_on_5xx(sleeps: list[float]) -> None:
    with Flaky(failures=100) as flaky, CascadeClient(f"http://127.0.0.1:{flaky.port}", "t",
                                                     retries=2, backoff=0.01,
                                                     sleep=sleeps.append) as client, \
            pytest.raises(ServiceUnavailableError, match="3 attempt.*HTTP 503: warming up"):
        client.forecast("NEAR")
    assert flaky.calls == 3


def test_never_retries_4xx(sleeps: list[float]) -> None:
    with Flaky(failures=0) as flaky, CascadeClient(f"http://127.0.0.1:{flaky.port}", "t",
                                                   retries=5, sleep=sleeps.append) as client, \
            pytest.raises(RequestRejectedError, match="HTTP 400: bad symbol") as err:
        client.forecast("BAD")
    assert flaky.calls == 1 and sleeps == []
    assert err.value.status == 400


def test_connection_refused_is_retried_then_reported(sleeps: list[float]) -> None:
    port = free_port()  # nothing listens here
    with CascadeClient(f"http://127.0.0.1:{port}", "t", retries=3, backoff=0.5, max_backoff=1.0,
                       sleep=sleeps.append) as client, \
            pytest.raises(ServiceUnavailableError, match="4 attempt.*ConnectError"):
        client.forecast("NEAR")
    assert sleeps == [0.5, 1.0, 1.0]  # exponential, capped
