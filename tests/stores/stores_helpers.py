"""Helpers of the store tests: a child process killed at a chosen moment, and the book's rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
KILLABLE = HERE / "killable.py"
T0 = pd.Timestamp("2026-03-10T00:00:00Z")


def start(kind: str, target: Path, pause: int = 0) -> subprocess.Popen:
    """``killable.py`` in a child process (this process's environment, so its PYTHONPATH),
    run in the target's folder so nothing lands in the working tree."""
    with (target.parent / f"child-{kind}.log").open("a") as log:  # a full pipe would block it
        return subprocess.Popen([sys.executable, str(KILLABLE), kind, str(target), str(pause)],
                                stdout=subprocess.PIPE, stderr=log, text=True, cwd=target.parent,
                                env={**os.environ, "PYTHONWARNINGS": "ignore"})


def kill_when_paused(kind: str, target: Path, pause: int) -> str:
    """Run the child until it pauses at ``pause``, then ``kill -9`` it. Returns ``"killed"``,
    or ``"done <statements>"`` when it finished before reaching that point."""
    proc = start(kind, target, pause)
    try:
        line = proc.stdout.readline().strip()
        if line == "paused":
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return "killed"
        proc.wait(timeout=120)
        log = (target.parent / f"child-{kind}.log").read_text()[-3000:]
        assert proc.returncode == 0 and line.startswith("done"), (line, log)
        return line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def kill_after(kind: str, target: Path, delay_s: float) -> None:
    """Run the child for ``delay_s`` seconds, then ``kill -9`` it wherever it is."""
    proc = start(kind, target)
    try:
        time.sleep(delay_s)
        assert proc.poll() is None, (target.parent / f"child-{kind}.log").read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def temps(folder: Path) -> list[str]:
    """Names of every temp left under ``folder`` (the atomic helpers' and SQLite's)."""
    return sorted(p.name for p in folder.rglob("*")
                  if p.name.startswith(".tmp-") or p.name.endswith(("-journal", "-wal")))


def cycle_record(symbol: str, hour: int, qty: float = 10.0, price: float = 5.0):  # noqa: ANN201
    """A paper cycle of ``symbol`` at bar ``T0 + hour``: one filled buy of ``qty`` at ``price``
    (no fee, no slippage), so the book's cash moves by hand-computable amounts."""
    from cascade_ml.policy import PolicyConfig, PolicyInputs, decide
    from cascade_ml.policy.schemas import Forecast, Freshness, Position
    from cascade_ml.trading.book import CycleRecord, OrderOutcome
    from cascade_ml.trading.costs import Fill
    from cascade_ml.trading.orders import OrderIntent

    bar = T0 + pd.Timedelta(hours=hour)
    intent = OrderIntent("main", symbol, "buy", qty)
    fill = Fill(side="buy", qty=qty, price=price, ref_price=price, fee=0.0, slippage=0.0)
    cid = f"t-{symbol}-{int(bar.value // 10**6)}"
    outcome = OrderOutcome(intent, "filled", cid, ref_price=price, fill=fill)
    decision = decide(PolicyInputs(
        symbol=symbol, forecast=Forecast(sigma_h=0.05, horizon_hours=24, cascade_prob=0.05),
        position=Position(side="long", notional=qty * price, entry_price=price,
                          mark_price=price, leverage=0.5, margin_mode="cross", hedge_ratio=0.0),
        equity=10_000.0, freshness=Freshness(forecast_age_s=60.0, features_age_s=60.0)),
        PolicyConfig())
    return CycleRecord(symbol=symbol, bar_ts=bar, as_of=bar + pd.Timedelta(hours=1),
                       mode="paper", decision=decision, marks={symbol: price},
                       outcomes=[outcome], funding=[], model_version="v-test")


def run_together(*commands: list[str], cwd: Path) -> list[str]:
    """Start every command (a script of this folder and its arguments), wait until each says
    ``ready``, then release them at once; returns each one's last output line."""
    logs = [cwd / f"{cmd[0]}-{i}.log" for i, cmd in enumerate(commands)]
    procs = []
    for cmd, log in zip(commands, logs, strict=True):
        with log.open("w") as err:
            procs.append(subprocess.Popen(
                [sys.executable, str(HERE / cmd[0]), *cmd[1:]], cwd=cwd, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, text=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"}))
    try:
        for proc, log in zip(procs, logs, strict=True):
            line = proc.stdout.readline().strip()
            assert line == "ready", (line, log.read_text()[-3000:])
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        out = []
        for proc, log in zip(procs, logs, strict=True):
            text, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, log.read_text()[-3000:]
            out.append(text.strip().splitlines()[-1])
        return out
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
