"""The universe backtest command, as a user runs it, against an older revision in the same run.

Runs ``cascade-ml backtest --pipeline P --json J --report-dir D --no-mlflow`` (21 perps, every
strategy and feed, economic value, window targets, frontier, one-book view, HTML report; dask
workers as the pipeline's ``compute`` section says) twice per round: once on the source tree
of ``--baseline-rev`` (``git archive`` into a temporary directory) and once on this tree's
``src``, alternating which goes first. Prints per run the wall seconds and the CPU seconds of
the whole process tree (user + system of the command and its reaped dask processes,
``RUSAGE_CHILDREN``), the load average before and after, the ratios baseline / now, and
whether the two JSON documents are equal (floats exactly, the timing keys left out).

The CPU time is the yardstick on a shared machine; the wall time follows the load.

    .venv/bin/python benchmarks/bench_universe_command.py [--baseline-rev a48fb65] [--rounds 1]

Needs the pipeline's store (run the pipeline, or link a built one into ``store.root``);
without it the script says so and does nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from bench_universe_backtest import differences

from cascade_ml.config import load_pipeline

ROOT = Path(__file__).resolve().parents[1]
BASELINE_REV = "a48fb65"
"""main before the 2026-12-06 speed pass of the universe command (held hedge by blocks)."""


def export_src(rev: str, into: Path) -> Path:
    """``src`` of git revision ``rev`` under ``into``."""
    blob = subprocess.run(["git", "archive", "--format=tar", rev, "src"], cwd=ROOT,
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_command(src: Path, pipeline: Path, out: Path) -> dict:
    """One run of the command on the code under ``src``: wall, CPU, load, its JSON."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-c", "from cascade_ml.cli.main import main; main()", "backtest",
           "--pipeline", str(pipeline), "--json", str(out / "u.json"), "--report-dir",
           str(out / "report"), "--no-mlflow"]
    load0, c0, w0 = os.getloadavg()[0], children_cpu(), time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall, cpu = time.perf_counter() - w0, children_cpu() - c0
    return {"wall": wall, "cpu": cpu, "load": (load0, os.getloadavg()[0]),
            "doc": json.loads((out / "u.json").read_text())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", type=Path, default=ROOT / "pipelines" / "universe.yaml")
    ap.add_argument("--baseline-rev", default=BASELINE_REV)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    store = Path(load_pipeline(args.pipeline).store.root)
    store = store if store.is_absolute() else ROOT / store
    if not store.exists():
        print(f"no store at {store}: run the pipeline first ({args.pipeline}); nothing timed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        trees = {f"baseline {args.baseline_rev}": export_src(args.baseline_rev,
                                                            Path(tmp) / "baseline"),
                 "this tree": ROOT / "src"}
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for k in range(args.rounds):
            order = list(trees) if k % 2 == 0 else list(reversed(trees))
            for name in order:
                runs[name].append(run_command(trees[name], args.pipeline,
                                              Path(tmp) / f"out{k}-{len(runs[name])}-{name[:4]}"))
    (base, *_), (now, *_) = runs.values()
    diffs = differences(base["doc"], now["doc"], tol=0.0)
    print(f"{len(base['doc']['symbols'])} perps, {args.rounds} round(s), os.cpu_count() = "
          f"{os.cpu_count()}")
    print("JSON equal to the baseline's (floats exactly, timings left out): "
          + ("yes" if not diffs else f"NO, {len(diffs)} differences, first: {diffs[:3]}"))
    print(f"{'code':<22}{'wall s':>9}{'cpu s':>9}{'load before/after':>20}")
    for name, rs in runs.items():
        for r in rs:
            print(f"{name:<22}{r['wall']:>9.1f}{r['cpu']:>9.1f}"
                  f"{r['load'][0]:>12.1f} / {r['load'][1]:<5.1f}")
    mean = {name: {key: sum(r[key] for r in rs) / len(rs) for key in ("wall", "cpu")}
            for name, rs in runs.items()}
    b, n = mean.values()
    print(f"ratio baseline / this tree: CPU {b['cpu'] / n['cpu']:.2f}x, wall "
          f"{b['wall'] / n['wall']:.2f}x (target: the command under 60 s wall on 2 cores)")


if __name__ == "__main__":
    main()
