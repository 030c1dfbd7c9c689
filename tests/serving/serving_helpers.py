"""Helpers for serving tests: a real bundle, a real store, and the real service under uvicorn.

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
from pathlib import Path

import httpx
import pandas as pd
import yaml

from cascade_ml.data.store import MarketStore
from cascade_ml.serving import demo
from cascade_ml.serving.demo import last_closed_bar

TOKEN = "test-token-0123456789"
SYMBOL = "NEAR"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


# --------------------------------------------------------------------------- data
def fresh_end() -> pd.Timestamp:
    """The open time of the last closed 1h bar: its forecast is under an hour old, not stale."""
    return last_closed_bar("1h")


def synthetic_features(n: int, end: pd.Timestamp, seed: int = 0) -> pd.DataFrame:
    return demo.synthetic_features(n, end, seed)


def write_features(tmp: Path, frame: pd.DataFrame) -> None:
    demo.write_demo_features(MarketStore(tmp / "store"), SYMBOL, frame)


def make_bundle(directory: Path, seed: int = 0, features: list[str] | None = None) -> str:
    """A real bundle: LightGBM trained on synthetic rows, exported by models.bundle."""
    return demo.make_demo_bundle(directory, seed=seed, features=features, n_rows=600,
                                 n_estimators=15)


def write_pipeline(tmp: Path, *, max_age_s: float = 7200, reload_s: float = 0.2,
                   references: tuple[str, ...] = ()) -> Path:
    """A pipeline file pointing the store and bundle dir into ``tmp``."""
    cfg = {
        "store": {"root": str(tmp / "store")},
        "symbols": {"targets": [SYMBOL], "references": list(references)},
        "serving": {"bundle_dir": str(tmp / "models"), "max_forecast_age_s": max_age_s,
                    "reload_interval_s": reload_s, "score_rows": 12},
        "steps": ["score"],
    }
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


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

    def start(self, timeout: float = 30.0) -> Server:
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
