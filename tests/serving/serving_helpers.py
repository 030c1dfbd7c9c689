"""Helpers for serving tests: the real service under uvicorn, a raw HTTP/1.1 connection, and the
monitor's reports the service reads (the data, bundles and pipeline files come from
``tests/demo_data.py``).

The service runs as ``cascade-ml serve`` in a subprocess on a free loopback port and is called over
a real socket with httpx; nothing in the request path is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from demo_data import SYMBOL

from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.drift import fit_profile
from cascade_ml.monitoring.health import MonitorReport, health
from cascade_ml.monitoring.staleness import SOURCE_COLUMNS

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def until(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """The first truthy value of ``check()``, polled every 0.1 s: the service reloads in the
    background, so a test waits for what it expects to appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


# --------------------------------------------------------------------------- server
class Server:
    """``cascade-ml serve`` in a subprocess; ``start``/``kill``/``stop`` by its own pid only."""

    def __init__(self, pipeline: Path, port: int | None = None, noop: bool = False) -> None:
        self.pipeline = pipeline
        self.port = port or free_port()
        self.noop = noop
        self.proc: subprocess.Popen | None = None
        self.log = pipeline.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> Server:
        """Waits up to ``timeout`` for /ready: a loaded 2-core machine can take over 30 s to
        import the service and load its bundle; a fast start returns at once."""
        env = {**os.environ, "CASCADE_ML_TOKEN": TOKEN}
        cmd = [str(Path(sys.executable).parent / "cascade-ml"), "serve", "--pipeline",
               str(self.pipeline), "--port", str(self.port)]
        if self.noop:
            cmd.append("--noop-route")
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=self.log.open("ab"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: "
                                   f"{self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not come up: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: the abrupt death the bot must survive."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return self.log.read_text() if self.log.exists() else ""



# --------------------------------------------------------------------------- raw HTTP client
class RawConnection:
    """One keep-alive HTTP/1.1 connection over asyncio streams.

    For the load test: httpx's AsyncClient spends milliseconds of CPU per request in its pool
    with 16 concurrent tasks, which made the client, not the server, the bottleneck. This speaks
    plain HTTP/1.1 on a real socket and parses status, Content-Length and body.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> RawConnection:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes | None) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        body = body or b""
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                 f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()


# --------------------------------------------------------------------------- monitor reports
MONITOR_CFG = MonitoringConfig(recent_rows=24)


def monitor_report(features: pd.DataFrame, bar: pd.Timestamp, *, drift: bool = False,
                   missing: bool = False, stale: bool = False) -> MonitorReport:
    """The monitor's verdict on ``bar``, trained on every row up to it: with ``drift``,
    ``ret_1h`` shifted far beyond its training range over the recent window; with ``missing``,
    ``funding_z`` blank in the newest row; with ``stale``, the funding source 10 h old (9 h
    allowed; else 600 s). (A slow level such as ``rv_24h`` spends whole training windows in one
    decile, so its calibrated limit is the PSI of a window all in one bin, which no shift can
    exceed.)"""
    frame = features[features.index <= bar].copy()
    families = {n: "funding" if n == "funding_z" else "volatility" for n in frame.columns}
    profile = fit_profile(frame, (frame.index[0], frame.index[-1]), families, MONITOR_CFG)
    if drift:
        recent = frame.index[-MONITOR_CFG.recent_rows:]
        frame.loc[recent, "ret_1h"] += 10 * frame["ret_1h"].std()
    if missing:
        frame.loc[frame.index[-1], "funding_z"] = np.nan
    age = 36_000.0 if stale else 600.0
    sources = pd.DataFrame([["funding", "binance", SYMBOL, "8h", pd.NaT, pd.NaT, age]],
                           columns=SOURCE_COLUMNS)
    return health(SYMBOL, frame, profile, sources, MONITOR_CFG,
                  bar + pd.Timedelta("1h") + pd.Timedelta("10s"))
