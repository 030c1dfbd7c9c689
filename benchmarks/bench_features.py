"""Feature build throughput: the real NEAR sample, then a 100-symbol x 3-year universe.

Run: ``.venv/bin/python benchmarks/bench_features.py [--symbols 100] [--years 3] [--workers 2]``

1. Ingests ``data/sample`` into a temporary store, loads NEAR + BTC/ETH and all external data, and
   times every family (best of 3) and the whole table; peak memory of one build via tracemalloc.
2. Builds ``--symbols`` synthetic perps of ``--years`` of 1h bars made from the real sample
   (NEAR's 1h returns block-bootstrapped and rescaled, intrabar shape, volume, funding, OI and
   liquidations perturbed per symbol; BTC/ETH and Fear & Greed are the real ones). Baseline: the
   plain per-symbol loop in one process on the first ``--baseline`` symbols; then all symbols
   across ``--workers`` processes (fork; each worker makes its symbols from a seed). Prints rows/s,
   the ratio to the baseline measured in this run, wall time vs the 30 s aim, and peak RSS.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.config import PipelineConfig
from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore
from cascade_ml.features.inputs import EventSeries, FeatureInputs, load_inputs
from cascade_ml.features.registry import FAMILY_MODULES, compute_families

REPO = Path(__file__).resolve().parents[1]
CFG = PipelineConfig()
BASE: FeatureInputs | None = None  # set before forking; workers read it copy-on-write


def load_real(root: Path) -> FeatureInputs:
    store = MarketStore(root)
    report = ingest_path(store, REPO / "data" / "sample")
    if report.failed:
        sys.exit(f"ingest of data/sample failed:\n{report.format()}")
    fc = CFG.features
    return load_inputs(store, "NEAR", ["BTC", "ETH"], venue="binance", interval="1h",
                       funding_venues=fc.funding_venues, oi_venues=fc.oi_venues)


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _scaled(series: EventSeries, col: str, factor: float,
            noise: np.ndarray | None = None) -> EventSeries:
    frame = series.frame.copy()
    frame[col] = frame[col] * factor + (0.0 if noise is None else noise[: len(frame)])
    return replace(series, frame=frame)


def make_symbol(base: FeatureInputs, seed: int, years: float) -> FeatureInputs:
    """A plausible perp from the real sample: bootstrapped NEAR returns, perturbed externals."""
    rng = np.random.default_rng(seed)
    n = int(years * 365 * 24)
    bars = base.bars.iloc[-n:]
    idx = bars.index
    ret = np.diff(np.log(base.bars["close"].to_numpy()))
    block = 24
    starts = rng.integers(0, len(ret) - block, size=n // block + 1)
    boot = np.concatenate([ret[s:s + block] for s in starts])[:n] * rng.uniform(0.6, 1.6)
    close = rng.uniform(0.5, 50) * np.exp(np.cumsum(boot))
    shape = bars[["open", "high", "low"]].to_numpy() / bars[["close"]].to_numpy()
    frame = pd.DataFrame({"open": close * shape[:, 0], "high": close * shape[:, 1],
                          "low": close * shape[:, 2], "close": close,
                          "volume": bars["volume"].to_numpy() * rng.lognormal(0, 1)}, index=idx)
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    frame["low"] = frame[["open", "low", "close"]].min(axis=1)
    sym = f"S{seed:03d}"
    funding = {}
    for venue, per in base.funding.items():
        funding[venue] = dict(per)
        if "NEAR" in per:
            f = per["NEAR"]
            funding[venue][sym] = _scaled(f, "funding_rate", rng.uniform(0.5, 2.0),
                                          rng.normal(0, 2e-5, len(f.frame)))
    oi = {}
    for venue, per in base.open_interest.items():
        oi[venue] = dict(per)
        if "NEAR" in per:
            factor = rng.uniform(0.1, 10)
            oi[venue][sym] = [_scaled(e, "open_interest_value", factor) for e in per["NEAR"]
                              if "open_interest_value" in e.frame]
    liq = dict(base.liquidations)
    if "NEAR" in liq:
        liq[sym] = _scaled(liq["NEAR"], "total_notional", rng.uniform(0.1, 10))
    return replace(base, symbol=sym, bars=frame, funding=funding, open_interest=oi,
                   liquidations=liq)


def _work(args: tuple[int, float]) -> tuple[int, int, float, float]:
    seed, years = args
    started = time.perf_counter()
    inputs = make_symbol(BASE, seed, years)
    made = time.perf_counter()
    table = compute_families(inputs, CFG.features)
    done = time.perf_counter()
    return len(table), table.shape[1], made - started, done - made


def main() -> None:
    global BASE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline", type=int, default=10, help="symbols in the serial baseline")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        base = load_real(Path(tmp))
        print(f"ingest + load of data/sample: {time.perf_counter() - started:.2f} s")
    rows = len(base.bars)
    print(f"\n== NEAR sample: {rows} 1h bars "
          f"({base.bars.index[0]:%Y-%m-%d} .. {base.bars.index[-1]:%Y-%m-%d}) ==")
    print(f"{'family':<14} {'seconds':>8} {'rows/s':>12}")
    for name, module in FAMILY_MODULES.items():
        sec = best_of(lambda m=module: m.compute(base, CFG.features))
        print(f"{name:<14} {sec:8.3f} {rows / sec:12,.0f}")
    total = best_of(lambda: compute_families(base, CFG.features))
    tracemalloc.start()
    table = compute_families(base, CFG.features)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{'all families':<14} {total:8.3f} {rows / total:12,.0f}   "
          f"({table.shape[1]} columns, peak traced memory {peak / 2**20:.0f} MiB)")

    BASE = base
    n_rows = int(args.years * 365 * 24)
    print(f"\n== universe: {args.symbols} symbols x {args.years:g} years "
          f"({n_rows} bars each, {args.symbols * n_rows:,} rows) ==")
    serial = [_work((seed, args.years)) for seed in range(args.baseline)]
    s_rows = sum(r[0] for r in serial)
    s_make, s_compute = sum(r[2] for r in serial), sum(r[3] for r in serial)
    s_rate = s_rows / (s_make + s_compute)
    print(f"baseline serial loop, {args.baseline} symbols: {s_make + s_compute:6.2f} s "
          f"({s_make:.2f} s making inputs, {s_compute:.2f} s features), {s_rate:,.0f} rows/s, "
          f"features alone {s_rows / s_compute:,.0f} rows/s")

    started = time.perf_counter()
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers) as pool:
        results = pool.map(_work, [(seed, args.years) for seed in range(args.symbols)],
                           chunksize=max(1, args.symbols // (4 * args.workers)))
    wall = time.perf_counter() - started
    p_rows = sum(r[0] for r in results)
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"parallel, {args.workers} workers, {args.symbols} symbols: {wall:6.2f} s wall, "
          f"{p_rows / wall:,.0f} rows/s ({p_rows:,} rows x {results[0][1]} columns)")
    print(f"ratio to the serial baseline: {p_rows / wall / s_rate:.2f}x   "
          f"aim: under 30 s -> {'met' if wall < 30 else 'NOT met'} ({wall:.1f} s)")
    print(f"serial estimate for all {args.symbols} symbols: {args.symbols * n_rows / s_rate:.1f} s")
    print(f"peak RSS: parent {self_rss:.0f} MiB, largest worker {child_rss:.0f} MiB")


if __name__ == "__main__":
    main()
