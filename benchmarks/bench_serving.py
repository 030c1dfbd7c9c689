"""Serving benchmark: our service vs its own no-op route vs MLflow's scoring server.

Starts, on loopback only:
  * ``cascade-ml serve --noop-route`` with a demo bundle and fresh scores (tests/demo_data.py);
  * ``mlflow models serve --env-manager local`` serving the bundle's volatility booster, saved with
    ``mlflow.lightgbm.save_model``;
and drives each with the load generator below, run as a separate process (16 keep-alive connections,
bounded in requests and seconds). Targets are measured in interleaved rounds so machine noise hits
all of them alike. Prints req/s, p50/p99 and the ratios; asserts nothing.

With ``--universe small`` the service runs a universe pipeline instead: a panel bundle fitted on
the final fold of the tests' small real universe (NEAR, BTC, ETH, ADA, SEI; tests/panel_data.py;
``full``: the 21 perps of pipelines/universe.yaml), its panel rows shifted to end at the last
closed bar; every symbol's decision is checked to be on the model path (not the fail-safe) and
NEAR's are measured (no MLflow target).

    python benchmarks/bench_serving.py [--requests 4000] [--rounds 3] [--max-seconds 8]
    python benchmarks/bench_serving.py --universe small|full
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import yaml

BIN = Path(sys.executable).parent
TOKEN = "bench-token-not-secret"
TESTS = Path(__file__).resolve().parents[1] / "tests"  # the demo bundle/features builders


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode}): {url}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.25)
    raise SystemExit(f"server not up in {timeout} s: {url}")


def setup(tmp: Path) -> tuple[Path, list[str], list[float], Path]:
    """Demo bundle + fresh features + scores; returns (pipeline file, feature names, the newest
    complete feature row, bundle dir)."""
    sys.path.insert(0, str(TESTS))
    from demo_data import make_demo_bundle, run_score, store_features, synthetic_features

    from cascade_ml.data.store import MarketStore
    from cascade_ml.models.bundle import load_bundle

    pipeline = tmp / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump({
        "store": {"root": str(tmp / "store")},
        "task": {"symbols": ["NEAR"], "references": ["BTC", "ETH"]},
        "models": {"models_dir": str(tmp / "models")},
        "serving": {"reload_interval_s": 5.0},
        "steps": ["score"]}))
    bundle_dir = tmp / "models" / "NEAR"
    make_demo_bundle(bundle_dir, seed=7, n_estimators=100)
    features = synthetic_features(400)
    store_features(MarketStore(tmp / "store"), "NEAR", features)
    [result] = run_score(pipeline)
    if not result.ok:
        raise SystemExit(result.error)
    names = load_bundle(bundle_dir).feature_names
    complete = features[names].dropna()  # MLflow's JSON input has no NaN for a float column
    return pipeline, names, [float(v) for v in complete.iloc[-1]], bundle_dir


def setup_universe(tmp: Path, full: bool = False) -> tuple[Path, list[str]]:
    """The small real universe (``full``: all 21 perps of pipelines/universe.yaml), a panel
    bundle fitted on its final fold and fresh panel rows; returns (pipeline file, symbols)."""
    sys.path.insert(0, str(TESTS))
    from demo_data import last_closed_bar
    from panel_data import (
        SYMBOLS,
        build_small_panel,
        export_small_panel_bundle,
        fresh_panel,
        ingest_small_universe,
        recent,
        small_panel_config,
        universe_pipeline,
        write_universe_store,
    )

    cfg = small_panel_config()
    symbols = list(SYMBOLS)
    if full:
        doc = yaml.safe_load((TESTS.parent / "pipelines" / "universe.yaml").read_text())
        symbols = list(doc["task"]["symbols"])
    store = ingest_small_universe(tmp / "raw", None if full else ("ADA", "SEI"))
    panel = build_small_panel(store, cfg, symbols)
    export_small_panel_bundle(tmp / "models" / "panel", panel, cfg)
    write_universe_store(tmp / "store", fresh_panel(recent(panel.frame), last_closed_bar()))
    pipeline = universe_pipeline(tmp, symbols=symbols)
    doc = yaml.safe_load(pipeline.read_text())
    doc["serving"]["reload_interval_s"] = 5.0
    pipeline.write_text(yaml.safe_dump(doc))
    return pipeline, symbols


def save_mlflow_model(bundle_dir: Path, out: Path) -> Path:
    """The bundle's volatility booster as an MLflow LightGBM model (pyfunc flavour)."""
    import lightgbm as lgb
    import mlflow.lightgbm

    booster = lgb.Booster(model_file=str(bundle_dir / "volatility.txt"))
    mlflow.lightgbm.save_model(booster, str(out))
    return out


# ------------------------------------------------------------------ load generator
# Plain HTTP/1.1 keep-alive over asyncio streams: no client-library overhead, so the generator
# (a separate process) is not the bottleneck.
def build_request(method: str, host: str, path: str, headers: list[str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive",
             f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def run(url: str, request: bytes, concurrency: int, total: int, max_seconds: float,
              warmup: int) -> dict:
    parts = urlsplit(url)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    remaining = [total]
    deadline = [0.0]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            for _ in range(warmup):
                writer.write(request)
                await _read_response(reader)
            while remaining[0] > 0 and time.perf_counter() < deadline[0]:
                remaining[0] -= 1
                t0 = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                statuses[status] += 1
        finally:
            writer.close()

    deadline[0] = float("inf")
    started = time.perf_counter()
    deadline[0] = started + max_seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)

    def pct(q: float) -> float:
        return latencies[min(n - 1, int(q * n))] * 1000 if n else float("nan")

    return {"requests": n, "seconds": round(elapsed, 3), "rps": round(n / elapsed, 1),
            "p50_ms": round(pct(0.50), 3), "p99_ms": round(pct(0.99), 3),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}}


def loadgen_main(argv: list[str]) -> None:
    """The load generator (run in its own process by ``load``)."""
    ap = argparse.ArgumentParser(prog="bench_serving.py --loadgen")
    ap.add_argument("url")
    ap.add_argument("path")
    ap.add_argument("--method", default="GET")
    ap.add_argument("--body", default="")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("-c", "--concurrency", type=int, default=16)
    ap.add_argument("-n", "--requests", type=int, default=5000)
    ap.add_argument("--max-seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args(argv)
    parts = urlsplit(args.url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback only: this tool is for local benchmarks")
    headers = list(args.header)
    if args.body:
        headers.append("Content-Type: application/json")
    request = build_request(args.method, parts.netloc, args.path, headers, args.body.encode())
    result = asyncio.run(run(args.url, request, args.concurrency, args.requests,
                             args.max_seconds, args.warmup))
    print(json.dumps(result))


# ------------------------------------------------------------------ orchestration
def load(url: str, path: str, *, method: str = "GET", body: str = "", auth: bool = True,
         requests: int, max_seconds: float, concurrency: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--loadgen", url, path,
           "--method", method, "-c", str(concurrency), "-n", str(requests),
           "--max-seconds", str(max_seconds)]
    if body:
        cmd += ["--body", body]
    if auth:
        cmd += ["--header", f"Authorization: Bearer {TOKEN}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000, help="per target and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=8.0, help="per target and round")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--universe", choices=["small", "full"], default=None,
                    help="serve a panel bundle for the tests' 5-perp universe or the 21 perps "
                         "of pipelines/universe.yaml (no MLflow target)")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmpname:
        tmp = Path(tmpname)
        try:
            if args.universe:
                pipeline, symbols = setup_universe(tmp, full=args.universe == "full")
                args.skip_mlflow = True
            else:
                pipeline, features, row, bundle_dir = setup(tmp)
                symbols = ["NEAR"]
            env = {**os.environ, "CASCADE_ML_TOKEN": TOKEN}
            ours = f"http://127.0.0.1:{free_port()}"
            procs.append(subprocess.Popen(
                [str(BIN / "cascade-ml"), "--log-level", "WARNING", "serve", "--pipeline",
                 str(pipeline), "--port", ours.rsplit(":", 1)[1], "--noop-route"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_up(f"{ours}/health", procs[-1])

            def decision_of(symbol: str) -> str:
                return json.dumps({"symbol": symbol, "notional": 5000, "mark_price": 5.0,
                                   "leverage": 3, "portfolio_value": 50000})

            samples = {s: httpx.post(f"{ours}/v1/decisions", content=decision_of(s), timeout=10,
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "content-type": "application/json"}).json()
                       for s in symbols}
            decision, sample = decision_of("NEAR"), samples["NEAR"]
            measured = "the fail-safe" if sample["fail_safe"] else "a normal (model) decision"
            targets = {
                "noop (framework ceiling)": dict(url=ours, path="/v1/noop"),
                "GET /v1/forecasts/NEAR": dict(url=ours, path="/v1/forecasts/NEAR"),
                "POST /v1/decisions": dict(url=ours, path="/v1/decisions", method="POST",
                                           body=decision),
            }
            if not args.skip_mlflow:
                model = save_mlflow_model(bundle_dir, tmp / "mlflow_model")
                theirs = f"http://127.0.0.1:{free_port()}"
                procs.append(subprocess.Popen(
                    [str(BIN / "mlflow"), "models", "serve", "-m", str(model), "--env-manager",
                     "local", "-h", "127.0.0.1", "-p", theirs.rsplit(":", 1)[1], "-w", "1"],
                    # mlflow execs `uvicorn` by name: put this venv's bin first on PATH
                    env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                wait_up(f"{theirs}/ping", procs[-1])
                body = json.dumps({"dataframe_split": {"columns": features, "data": [row]}})
                targets["mlflow /invocations"] = dict(url=theirs, path="/invocations",
                                                      method="POST", body=body, auth=False)

            runs: dict[str, list[dict]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, target in targets.items():
                    runs[name].append(load(**target, requests=args.requests,
                                           max_seconds=args.max_seconds,
                                           concurrency=args.concurrency))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(15)

    summary = {}
    for symbol, answer in samples.items():
        path = "FAIL-SAFE" if answer["fail_safe"] else "model path"
        print(f"{symbol}: {path}, model {answer['model_version']}, leverage cap "
              f"{answer['leverage_cap']:.2f}x, forecast age {answer['forecast_age_seconds']:.0f} s")
    print(f"\nPOST /v1/decisions answers {measured} with {len(sample['reasons'])} reasons")
    print(f"{args.concurrency} connections, {args.rounds} interleaved rounds, loopback, "
          f"{os.cpu_count()} CPUs (shared); load average (1 min) {load_before:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end")
    print(f"{'target':28s} {'requests':>9s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s}  statuses")
    for name, rs in runs.items():
        n = sum(r["requests"] for r in rs)
        rps = n / sum(r["seconds"] for r in rs)
        p50 = sorted(r["p50_ms"] for r in rs)[len(rs) // 2]
        p99 = sorted(r["p99_ms"] for r in rs)[len(rs) // 2]
        statuses: dict[str, int] = {}
        for r in rs:
            for k, v in r["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
        summary[name] = rps
        print(f"{name:28s} {n:9d} {rps:8.0f} {p50:8.2f} {p99:8.2f}  {statuses}")
    noop = summary["noop (framework ceiling)"]
    print("\nratios (same run):")
    for name in ("GET /v1/forecasts/NEAR", "POST /v1/decisions"):
        print(f"  {name} / noop ceiling: {summary[name] / noop:.2f}")
        mlflow_rps = summary.get("mlflow /invocations")
        if mlflow_rps:
            print(f"  {name} / mlflow server: {summary[name] / mlflow_rps:.1f}x")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--loadgen"]:
        loadgen_main(sys.argv[2:])
    else:
        main()
