"""Issue 16's first target measured on development windows of the final period's length.

The target (oracle-fed policy beats its own equal-cost static hedge on CVaR 95, max drawdown
and realised utility on >= 90 % of perps) is judged on the final period, which no choice may
read. To see on development data whether a policy would pass a test of that size, each
perp's development span (every OOS bar before the final period) is tiled with non-overlapping
windows as long as its final period, and each window is judged as the final period is: a slice
of the whole-span run (state carried in, as :mod:`cascade_ml.backtest.regimes` does), CVaR 95
of daily returns, max drawdown of the hourly equity, mean quadratic utility of gross daily
returns (:func:`cascade_ml.backtest.economic.quadratic_utility`). The share of (perp, window)
pairs where the first strategy wins is the development estimate of the target's pass rate.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from cascade_ml.backtest.economic import GAMMAS, quadratic_utility
from cascade_ml.backtest.metrics import BARS_PER_DAY, cvar, daily_returns, max_drawdown

PAIRS = (("oracle_policy", "static_matched_oracle"), ("model_policy", "static_matched"),
         ("har_policy", "static_matched_har"), ("model_policy", "har_policy"),
         ("oracle_policy", "static_sized_oracle"), ("model_policy", "static_sized"),
         ("har_policy", "static_sized_har"))
"""(first, second) pairs judged per window; the first is issue 16's target; the last three
judge each feed's policy against its same-size static (the hedge alone, sizing equal)."""
TARGET_PAIR = "oracle_policy vs static_matched_oracle"
SAME_SIZE_PAIR = "oracle_policy vs static_sized_oracle"
"""The target's pair with the static of the same main leg, bar by bar."""
TARGET_SHARE = 0.9


def measures_list(gammas: tuple[float, ...] = GAMMAS) -> list[str]:
    return ["cvar_95", "max_drawdown", *(f"utility_gamma_{g:g}" for g in gammas)]


def tile_windows(mask: np.ndarray, length: int) -> list[tuple[int, int]]:
    """Non-overlapping windows [a, b) of exactly ``length`` bars inside each contiguous run of
    ``mask``, tiled backward from the run's end (the last window ends where the run ends, next
    to the final period); a shorter remainder at a run's start is left out."""
    if length <= 0:
        raise ValueError(f"window length must be > 0 bars, got {length}")
    m = np.asarray(mask, dtype=bool)
    edges = np.flatnonzero(np.diff(np.r_[0, m.astype(np.int8), 0]))
    out: list[tuple[int, int]] = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        ends = range(int(end), int(start) + length - 1, -length)
        out.extend(sorted((e - length, e) for e in ends))
    return out


def window_measures(equity: np.ndarray, start: int, end: int,
                    gammas: tuple[float, ...] = GAMMAS,
                    bars_per_day: int = BARS_PER_DAY) -> dict[str, float]:
    """CVaR 95 (daily), max drawdown and quadratic utility (daily, per gamma) of the bars
    [start, end) of a whole-span equity curve, measured from the close before ``start`` (the
    state a bot carries in), as the final period's metrics are."""
    eq = np.asarray(equity, dtype=float)[max(start - 1, 0): end]
    r = daily_returns(eq, bars_per_day)
    out = {"cvar_95": cvar(r), "max_drawdown": max_drawdown(eq)}
    out.update({f"utility_gamma_{g:g}": quadratic_utility(r, g) if len(r) else float("nan")
                for g in gammas})
    return out


def beats(a: dict[str, float], b: dict[str, float]) -> dict[str, bool | None]:
    """Per measure, whether ``a`` is strictly better than ``b`` (lower drawdown, higher CVaR
    and utility); None where either is missing."""
    out: dict[str, bool | None] = {}
    for k, x in a.items():
        y = b.get(k)
        if y is None or not (np.isfinite(x) and np.isfinite(y)):
            out[k] = None
        else:
            out[k] = bool(x < y) if k == "max_drawdown" else bool(x > y)
    return out


def judge(first: np.ndarray, second: np.ndarray, spans: Iterable[tuple[int, int]],
          gammas: tuple[float, ...] = GAMMAS) -> list[dict]:
    """One record per span: both strategies' measures and which measures the first wins."""
    recs = []
    for a, b in spans:
        ma, mb = window_measures(first, a, b, gammas), window_measures(second, a, b, gammas)
        recs.append({"start_bar": int(a), "end_bar": int(b), "first": ma, "second": mb,
                     "first_better": beats(ma, mb)})
    return recs


def share(records: Iterable[dict]) -> dict[str, dict]:
    """Per measure: in how many of the records the first strategy wins, of how many judged,
    and the share; ``all_three`` counts records won on CVaR, max drawdown and the first
    utility measure at once."""
    recs = list(records)
    keys = list(dict.fromkeys(k for r in recs for k in r["first_better"]))
    out: dict[str, dict] = {}
    for k in keys:
        judged = [r["first_better"][k] for r in recs if r["first_better"].get(k) is not None]
        won = int(sum(judged))
        out[k] = {"better": won, "of": len(judged),
                  "share": won / len(judged) if judged else None}
    util = next((k for k in keys if k.startswith("utility_")), None)
    if util is not None:
        trio = ("cvar_95", "max_drawdown", util)
        full = [r for r in recs if all(r["first_better"].get(k) is not None for k in trio)]
        won = sum(all(r["first_better"][k] for k in trio) for r in full)
        out["all_three"] = {"better": int(won), "of": len(full), "measures": list(trio),
                            "share": won / len(full) if full else None}
    return out


def symbol_windows(equities: dict[str, np.ndarray], index, development: np.ndarray,
                   final: np.ndarray, pairs: tuple[tuple[str, str], ...] = PAIRS,
                   gammas: tuple[float, ...] = GAMMAS) -> dict:
    """One perp's judged spans for every pair whose two equity curves are present: the
    development windows (as long as the final period, :func:`tile_windows`), the final period
    and the whole span. ``index`` labels the bars (window start and end in the output)."""
    final_idx = np.flatnonzero(final)
    length = len(final_idx)
    spans = {"development": tile_windows(development, length) if length else [],
             "final": [(int(final_idx[0]), int(final_idx[-1]) + 1)] if length else [],
             "all": [(0, len(index))]}
    out: dict = {"window_bars": length, "windows": [
        {"start": str(index[a]), "end": str(index[b - 1])} for a, b in spans["development"]],
        "pairs": {}}
    for first, second in pairs:
        if first not in equities or second not in equities:
            continue
        out["pairs"][f"{first} vs {second}"] = {
            span: judge(equities[first], equities[second], s, gammas)
            for span, s in spans.items()}
    return out


def pooled_shares(per_symbol: dict[str, dict]) -> dict[str, dict]:
    """Per pair and span (development windows, final period, whole span): the shares of
    (perp, window) pairs won, pooled over the perps of ``per_symbol``, plus the perps won in
    the final period and over the whole span."""
    out: dict[str, dict] = {}
    names = list(dict.fromkeys(p for d in per_symbol.values() for p in d["pairs"]))
    for pair in names:
        block: dict[str, dict] = {}
        for span, label in (("development", "development_windows"), ("final", "final_period"),
                            ("all", "whole_span")):
            recs = [r for d in per_symbol.values() if pair in d["pairs"]
                    for r in d["pairs"][pair][span]]
            block[label] = {"windows": len(recs), **share(recs)}
        block["development_windows"]["perps"] = sum(
            bool(d["pairs"][pair]["development"]) for d in per_symbol.values()
            if pair in d["pairs"])
        out[pair] = block
    return out


def summary_line(pair: str, block: dict) -> str:
    """One printed line: a pair's wins per measure on each span."""
    parts = []
    for label in ("development_windows", "final_period", "whole_span"):
        b = block[label]
        cells = ", ".join(f"{k.replace('utility_gamma_', 'u g')} {v['better']}/{v['of']}"
                          for k, v in b.items() if isinstance(v, dict))
        parts.append(f"{label.replace('_', ' ')}: {cells}")
    return f"{pair}, won: " + "; ".join(parts)
