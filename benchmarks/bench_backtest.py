"""Backtest speed: a 21-perp book over three years, against a one-perp book in the same run.

The 21 perps are built from the real NEAR, BTC and ETH 1h bars of data/sample (2023-01 ..
2026-03, about 28k bars) by ``synthetic_perps.perp``: each is one of the three paths shifted in
time by a different offset (wrapped around), so prices are real but the perps are not the same
series; forecasts are trailing realised variances (as in the tests) and a cascade score from the
trailing drawdown, fed as the model and HAR (no EWMA feed, no labels). This measures the
engine, not the forecasts.

Prints, from the same run: seconds for the one-perp book and the 21-perp book per strategy,
microseconds per position-bar for both (the baseline), and the whole book run (every default book
strategy and its metrics) for 1 and 21 perps, in one process.

    .venv/bin/python benchmarks/bench_backtest.py [--perps 21] [--years 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from synthetic_perps import bases, perp

from cascade_ml.backtest.book import BookData, _plans, run_book
from cascade_ml.backtest.config import BacktestConfig, BookConfig
from cascade_ml.backtest.data import align
from cascade_ml.backtest.engine import Market, simulate_book
from cascade_ml.policy import PolicyConfig
from cascade_ml.trading.config import TradingConfig

STRATEGIES = ["unhedged", "static_hedge", "model_policy", "har_policy"]
POLICY = PolicyConfig()
TRADING = TradingConfig()


# the prediction columns this benchmark has always timed: the model and HAR feeds
FEED_COLUMNS = ["fold", "vol_forecast", "cascade_prob", "var_har", "prob_climatology"]


def make_book(perps: int, hours: int) -> BookData:
    paths = bases()
    data = {}
    for k in range(perps):
        bars, preds, _ = perp(paths[k % 3], k, hours)
        data[f"P{k:02d}"] = align(bars, preds[FEED_COLUMNS], horizon=24)
    common = data["P00"].index
    for d in data.values():
        common = common.intersection(d.index)
    data = {s: d.take(d.index.isin(common)) for s, d in data.items()}
    rows = {k: np.vstack([getattr(d, k) for d in data.values()])
            for k in ("open", "high", "low", "close", "funding_rate")}
    market = Market(list(data), **rows, tiers=[POLICY.tiers_for(s) for s in data])
    return BookData(list(data), data, market)


def _run(args: tuple) -> tuple[str, float]:
    """Plan and simulate one strategy on the book (no unhedged benchmark run)."""
    book, name = args
    bt = BacktestConfig(book=BookConfig(strategies=[name], proxy_hedges=False))
    start = time.perf_counter()
    plans = _plans(name, book, bt, TRADING, POLICY, "long", None)
    simulate_book(book.market, plans, policy=POLICY, initial_equity=TRADING.initial_equity,
                  margin_fraction=TRADING.margin_fraction,
                  leverage_tolerance=TRADING.leverage_tolerance,
                  stop_cooldown=TRADING.stop_cooldown_bars)
    return name, time.perf_counter() - start


def timed(book: BookData) -> dict[str, float]:
    return dict(_run((book, name)) for name in STRATEGIES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--perps", type=int, default=21)
    ap.add_argument("--years", type=float, default=3.0)
    args = ap.parse_args()
    hours = int(args.years * 365 * 24)
    t0 = time.perf_counter()
    book = make_book(args.perps, hours)
    one = make_book(1, hours)
    n = len(book.index)
    print(f"built {args.perps} perps x {n} bars ({n / 8760:.2f} years) in "
          f"{time.perf_counter() - t0:.1f} s")
    # run_book always simulates 'unhedged' (the capture benchmark): subtract it per strategy
    timed(make_book(1, 24 * 60))  # warm-up: imports and first calls
    base_one, base_book = timed(one), timed(book)
    print(f"{'strategy':<14}{'1 perp s':>10}{'us/pos-bar':>12}{f'{args.perps} perps s':>12}"
          f"{'us/pos-bar':>12}{'ratio':>8}")
    for name in STRATEGIES:
        a, b = base_one[name], base_book[name]
        print(f"{name:<14}{a:>10.2f}{a / n * 1e6:>12.1f}{b:>12.2f}"
              f"{b / (n * args.perps) * 1e6:>12.1f}{b / a:>8.1f}")
    bt = BacktestConfig(book=BookConfig(proxy_hedges=False))
    start = time.perf_counter()
    runs = run_book(book, bt, POLICY, "long", trading=TRADING)
    full = time.perf_counter() - start
    start = time.perf_counter()
    run_book(one, bt, POLICY, "long", trading=TRADING)
    full_one = time.perf_counter() - start
    print(f"full run_book ({', '.join(runs)}; metrics included), one process: 1 perp "
          f"{full_one:.1f} s, {args.perps} perps {full:.1f} s ({full / full_one:.1f}x; target "
          "under 60 s on 2 cores)")


if __name__ == "__main__":
    main()
