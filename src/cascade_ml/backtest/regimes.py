"""The strategy table per period: where the policy helps and where it costs.

Every strategy is simulated once over the whole OOS span; a period's metrics are computed on
that run's equity between the period's first and last bar (state carried in from before, as a
bot would have it). Besides the configured regimes, ``development`` (the walk-forward folds)
and ``final period`` (the untouched last fold) are always reported. A period that does not
overlap the OOS span is reported as such, with no numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.backtest.config import Period
from cascade_ml.backtest.data import BacktestData
from cascade_ml.backtest.simulate_all import StrategyRun, run_metrics

OUTSIDE = "outside the OOS span"
MIN_COVERAGE = 0.95


def _span(mask: np.ndarray) -> tuple[int, int] | None:
    idx = np.flatnonzero(mask)
    return (int(idx[0]), int(idx[-1])) if len(idx) else None


def period_spans(data: BacktestData, periods: list[Period]
                 ) -> list[tuple[str, tuple[int, int] | None, str]]:
    """(name, first and last bar or None, status) for every reported period."""
    out = []
    for name, mask in (("development", data.development_mask()),
                       ("final period", data.final_mask())):
        span = _span(mask)
        out.append((name, span, "ok" if span else OUTSIDE))
    index = data.index
    for p in periods:
        start, end = p.bounds()
        span = _span((index >= start) & (index <= end))
        if span is None:
            out.append((p.name, None, OUTSIDE))
            continue
        inside = (min(end, index[-1] + pd.Timedelta("1h")) - max(start, index[0]))
        share = inside / (end - start)
        status = "ok" if share >= MIN_COVERAGE else (
            f"partial: {share:.0%} of the period is inside the OOS span")
        out.append((p.name, span, status))
    return out


def period_tables(runs: dict[str, StrategyRun], data: BacktestData,
                  periods: list[Period]) -> dict[str, dict]:
    """Period name -> {status, start, end, bars, strategies: {name: metrics}}."""
    base = runs["unhedged"].result.equity if "unhedged" in runs else None
    tables: dict[str, dict] = {}
    for name, span, status in period_spans(data, periods):
        if span is None:
            tables[name] = {"status": status}
            continue
        a, b = span
        sl = slice(max(a - 1, 0), b + 1)
        rows = {}
        for sname, run in runs.items():
            bench = base if base is not None else run.result.equity
            rows[sname] = run_metrics(run.result, bench, sl, capped=run.capped)
        tables[name] = {"status": status, "start": str(data.index[a]),
                        "end": str(data.index[b]), "bars": b - a + 1, "strategies": rows}
    return tables
