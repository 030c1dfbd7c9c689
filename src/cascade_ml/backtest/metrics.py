"""Performance metrics of an equity curve, and capture ratios against a benchmark curve."""

from __future__ import annotations

import numpy as np

HOURS_PER_YEAR = 24 * 365
BARS_PER_DAY = 24


def _returns(equity: np.ndarray) -> np.ndarray:
    e = np.asarray(equity, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = e[1:] / e[:-1] - 1.0
    return np.where(np.isfinite(r), r, 0.0)


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a positive fraction."""
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak)) if len(equity) else 0.0


def drawdown_path(equity: np.ndarray) -> np.ndarray:
    return 1.0 - equity / np.maximum.accumulate(equity)


def capture(strategy: np.ndarray, benchmark: np.ndarray, period: int = 24) -> tuple[float, float]:
    """(upside, downside) capture on ``period``-bar returns: mean strategy / mean benchmark return
    over the periods when the benchmark rose (fell)."""
    idx = np.arange(0, len(strategy), period)
    rs, rb = _returns(strategy[idx]), _returns(benchmark[idx])
    up, down = rb > 0, rb < 0
    upc = float(rs[up].mean() / rb[up].mean()) if up.any() else float("nan")
    downc = float(rs[down].mean() / rb[down].mean()) if down.any() else float("nan")
    return upc, downc


def daily_returns(equity: np.ndarray, period: int = BARS_PER_DAY) -> np.ndarray:
    """Returns over consecutive ``period``-bar steps (days on hourly bars)."""
    e = np.asarray(equity, dtype=float)
    return _returns(e[::period]) if len(e) > period else np.zeros(0)


def cvar(returns: np.ndarray, level: float = 0.95) -> float:
    """Expected shortfall: the mean of the worst ``1 - level`` share of returns (a return, so
    negative is a loss; closer to zero is better). NaN with no returns."""
    r = np.sort(np.asarray(returns, dtype=float))
    if not len(r):
        return float("nan")
    return float(r[:tail_count(len(r), level)].mean())


def tail_count(n: int, level: float = 0.95) -> int:
    """How many of ``n`` returns form the worst ``1 - level`` share (at least one)."""
    return max(int(np.ceil(n * (1 - level) - 1e-9)), 1)


def summarize(equity: np.ndarray, *, bars_per_year: float = HOURS_PER_YEAR) -> dict[str, float]:
    """Total return, CAGR, annualised vol, max drawdown, Calmar and Sortino."""
    e = np.asarray(equity, dtype=float)
    r = _returns(e)
    years = max(len(r), 1) / bars_per_year
    total = float(e[-1] / e[0] - 1.0)
    cagr = float((e[-1] / e[0]) ** (1 / years) - 1.0) if e[-1] > 0 else -1.0
    vol = float(r.std(ddof=1) * np.sqrt(bars_per_year)) if len(r) > 1 else 0.0
    mdd = max_drawdown(e)
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)) * np.sqrt(bars_per_year))
    sortino = float(r.mean() * bars_per_year / downside) if downside > 0 else float("nan")
    calmar = cagr / mdd if mdd > 0 else float("nan")
    per_day = max(int(round(bars_per_year / 365)), 1)
    return {"total_return": total, "cagr": cagr, "ann_vol": vol, "max_drawdown": mdd,
            "calmar": calmar, "sortino": sortino,
            "cvar_95": cvar(daily_returns(e, per_day))}
