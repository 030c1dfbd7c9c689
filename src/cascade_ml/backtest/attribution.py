"""Where a hedged position's capture comes from: its returns split, bar by bar, against the same
position without its hedge (``capped_unhedged``), then summed over the days that position rose
or fell. Upside (downside) capture is the sum of the parts over the up (down) days.

Bar t's return of the hedged position is ``r = e x - k``: exposure ``e = N (1 - h) / E`` at the
previous close (main-leg notional N, hedge ratio h, account equity E), the perp's close-to-close
move x, costs ``k`` = fees + funding over E. Against the capped position's ``c = e_c x - k_c``:

- ``hedge`` = ``(1 - h) c``: the capped position's return the hedge held keeps (its share of
  the capture is one minus the *effective* hedge, the hedge weighted by the benchmark's moves);
- ``size`` = ``(1 - h) (N / E - N_c / E_c) x``: a different main leg (one of the two flat after
  a stop or the fail-safe, or sized on another equity);
- ``costs`` = ``(1 - h) k_c - k``: fees and funding beyond the kept share of the capped one's;
- ``rest``: what is left (fills at a stop or liquidation price inside a bar, a proxy hedge's own
  move), so the four parts add up to ``r`` exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.backtest.engine import SimResult

PARTS = ("hedge", "size", "costs", "rest")


def _legs(r: SimResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bar return, main notional over equity at the previous close, costs over that equity)."""
    e = np.asarray(r.equity, dtype=float)
    if r.notional is None or r.cum_costs is None:
        raise ValueError("attribution needs the simulation's notional and cost paths")
    ret = e[1:] / e[:-1] - 1.0
    size = np.asarray(r.notional, dtype=float)[:-1] / e[:-1]
    cost = np.diff(r.cum_costs[0] + r.cum_costs[1]) / e[:-1]
    return ret, size, cost


def bar_parts(hedged: SimResult, capped: SimResult, close: np.ndarray) -> dict[str, np.ndarray]:
    """Per bar 1..n-1: the hedged position's return (``ret``), the capped one's (``capped``) and
    the parts of :data:`PARTS` (they sum to ``ret``)."""
    x = np.asarray(close, dtype=float)
    x = x[1:] / x[:-1] - 1.0
    r, n, k = _legs(hedged)
    c, n_c, k_c = _legs(capped)
    keep = 1.0 - np.asarray(hedged.hedge, dtype=float)[:-1]
    out = {"ret": r, "capped": c, "hedge": keep * c, "size": keep * (n - n_c) * x,
           "costs": keep * k_c - k}
    out["rest"] = r - out["hedge"] - out["size"] - out["costs"]
    return out


def capture_parts(parts: dict[str, pd.Series], benchmark: pd.Series) -> dict[str, dict]:
    """Each part's sum over the days the ``benchmark`` rose (``up``) and fell (``down``), over
    the benchmark's sum on those days, and the ``effective_hedge`` (1 - the hedge part's share).
    With the parts summing to a strategy's return this is its capture, split."""
    b = benchmark.dropna()
    out = {}
    for side, days in (("up", b > 0), ("down", b < 0)):
        total = float(b[days].sum())
        shares = {k: float(v.reindex(b.index)[days].sum() / total) if total else float("nan")
                  for k, v in parts.items()}
        if "hedge" in shares:
            shares["effective_hedge"] = 1.0 - shares["hedge"]
        out[side] = shares
    return out
