"""Fixtures of the example tests: the real service under uvicorn in a subprocess (the token is
``example_helpers.TOKEN``)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from example_helpers import TOKEN


@pytest.fixture
def serve() -> Iterator:
    """``serve(pipeline) -> url``: ``cascade-ml serve`` on a free loopback port, stopped (by its
    own pid) after the test."""
    procs: list[subprocess.Popen] = []

    def start(pipeline: Path, timeout: float = 60.0) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        log = pipeline.parent / "server.log"
        cmd = [str(Path(sys.executable).parent / "cascade-ml"), "serve", "--pipeline",
               str(pipeline), "--port", str(port)]
        proc = subprocess.Popen(cmd, env={**os.environ, "CASCADE_ML_TOKEN": TOKEN},
                                stdout=subprocess.DEVNULL, stderr=log.open("ab"))
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                    return url
            time.sleep(0.1)
        raise RuntimeError(f"server did not come up: {log.read_text()[-2000:]}")

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
