"""Universe backtest speed: every perp, every feed, pooled, frontier and book, three ways, one run.

1. the old path: the per-symbol loop in this process (``compute.mode: serial``) with every bar
   of every simulation through the trading core's functions
   (``backtest.engine.INLINE_QUIET_BARS = False``, the engine before issue 16's speed-up);
2. the same loop with the engine's quiet bars inlined (the default);
3. that with one dask worker process per core (``compute.mode: dask``), as the CLI runs it.

All do the same work (every strategy and feed of every perp, the economic value and its
bootstraps, the frontier, the one-book view; no HTML, no MLflow) and must give the same numbers:
the script checks that the three JSON documents agree (to 1e-9) before printing the times.

By default the universe is built here (``synthetic_perps.perp``) from the real 1h bars of
data/sample (NEAR, BTC, ETH, 2023-01 .. 2026-03): each of ``--perps`` perps is one of the three
paths shifted in time by a different offset, on its last ``--years`` years, with
trailing-variance 'forecasts' and labels from the bars (as in the tests).
``--pipeline pipelines/universe.yaml`` runs on that pipeline's store instead (the real panel
forecasts; run the pipeline first).

Prints wall and CPU seconds of each, microseconds per perp-bar, the ratios and the load.

    .venv/bin/python benchmarks/bench_universe_backtest.py [--perps 21] [--years 3]
    .venv/bin/python benchmarks/bench_universe_backtest.py --pipeline pipelines/universe.yaml
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from synthetic_perps import bases, perp

from cascade_ml.backtest import engine as backtest_engine
from cascade_ml.backtest.universe import run_universe_backtest
from cascade_ml.compute import ComputeConfig
from cascade_ml.config import PipelineConfig, load_pipeline
from cascade_ml.data.store import MarketStore, PartitionKey


def synthetic_store(root: Path, perps: int, hours: int) -> list[str]:
    """``perps`` perps from the sample's three real paths, shifted; predictions and labels."""
    store = MarketStore(root)
    paths = bases()
    symbols = []
    for k in range(perps):
        bars, preds, labels = perp(paths[k % 3], k, hours)
        sym = f"P{k:02d}"
        store.write(PartitionKey("ohlcv", "binance", sym, "1h"), bars)
        store.write_table(f"predictions/symbol={sym}/h=24/oos.parquet", preds)
        store.write_table(f"labels/symbol={sym}/h=24/labels.parquet", labels)
        symbols.append(sym)
    return symbols


def timed(config: PipelineConfig, store: MarketStore, symbols: list[str],
          compute: ComputeConfig, holdout: list[str], *, inline: bool = True
          ) -> tuple[float, float, dict]:
    """Wall and CPU seconds (this process and its reaped workers) of one universe run."""
    def cpu() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    bt = config.backtest.model_copy(update={"html_report": False, "log_mlflow": False})
    backtest_engine.INLINE_QUIET_BARS = inline
    w0, c0 = time.perf_counter(), cpu()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            doc = run_universe_backtest(store, symbols, config.task, bt, config.trading,
                                        config.policy, config.tracking, holdout=holdout,
                                        compute=compute)
    finally:
        backtest_engine.INLINE_QUIET_BARS = True
    return time.perf_counter() - w0, cpu() - c0, doc


def differences(a: object, b: object, where: str = "", tol: float = 1e-9) -> list[str]:
    """Where two JSON-like documents differ by more than ``tol`` (relative; 0: floats must be
    equal), timings left out."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a if k not in ("seconds", "workers")
                for d in differences(a[k], b[k], f"{where}/{k}", tol)]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} vs {len(b)}"]
        return [d for k, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{where}/{k}", tol)]
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        same = a == b or (math.isnan(a) and math.isnan(b)) or \
            abs(a - b) <= tol * max(1.0, abs(a), abs(b))
        return [] if same else [f"{where}: {a} vs {b}"]
    if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
        x, y = a.to_numpy(float), b.to_numpy(float)
        ok = a.shape == b.shape and (np.array_equal(x, y, equal_nan=True) or np.allclose(
            x, y, rtol=tol, atol=1e-12 if tol else 0.0, equal_nan=True))
        return [] if ok else [f"{where}: frames differ"]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--perps", type=int, default=21)
    ap.add_argument("--years", type=float, default=3.0)
    ap.add_argument("--pipeline", type=Path, default=None,
                    help="Run on this pipeline's store and task (default: built from the "
                         "sample).")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        if args.pipeline is not None:
            config = load_pipeline(args.pipeline)
            symbols = [s.upper() for s in config.task.symbols][: args.perps]
            holdout = config.panel.holdout_symbols if config.panel.enabled else []
        else:
            config = PipelineConfig.model_validate({"store": {"root": tmp}})
            t0 = time.perf_counter()
            symbols = synthetic_store(Path(tmp), args.perps, int(args.years * 365 * 24))
            print(f"built {len(symbols)} perps x {args.years:g} years from the sample in "
                  f"{time.perf_counter() - t0:.1f} s")
            config = config.model_copy(update={"backtest": config.backtest.model_copy(
                update={"proxy_hedges": False, "book": config.backtest.book.model_copy(
                    update={"proxy_hedges": False})})})
            holdout = symbols[-4:] if len(symbols) > 4 else symbols[-1:]
        store = MarketStore(config.store.root)
        runs = {"old path: loop, core on every bar": timed(config, store, symbols,
                                                           ComputeConfig(mode="serial"),
                                                           holdout, inline=False),
                "loop, quiet bars inlined": timed(config, store, symbols,
                                                  ComputeConfig(mode="serial"), holdout),
                f"dask, {args.workers} worker processes": timed(
                    config, store, symbols, ComputeConfig(mode="dask", n_workers=args.workers,
                                                          threads_per_worker=1), holdout)}
    docs = [doc for _, _, doc in runs.values()]
    diffs = differences(docs[0], docs[1]) + differences(docs[0], docs[2])
    bars = sum(r[0]["bars"] for r in docs[0]["per_symbol"].values())
    print(f"{len(symbols)} perps, {bars:,} perp-bars, every feed, frontier and book "
          f"(os.cpu_count() = {os.cpu_count()}, load {os.getloadavg()[0]:.1f})")
    print("same numbers in all three runs (1e-9): "
          + ("yes" if not diffs else f"NO, {len(diffs)} differences, first: {diffs[:3]}"))
    print(f"{'path':<36}{'wall s':>9}{'cpu s':>9}{'us/perp-bar':>13}")
    for name, (wall, cpu, _) in runs.items():
        print(f"{name:<36}{wall:>9.1f}{cpu:>9.1f}{wall / bars * 1e6:>13.1f}")
    (old, _, _), (loop, _, _), (dask, _, _) = runs.values()
    print(f"ratio old path / inlined loop wall: {old / loop:.2f}x; old path / dask wall: "
          f"{old / dask:.2f}x (target: universe under 60 s on 2 cores)")


if __name__ == "__main__":
    main()
