"""How much of a symbol's own HAR joins the panel forecast (the fallback that keeps the served
forecast from being knowingly worse than its base).

The served forecast is ``log var = w log var_HAR + (1 - w) log var_panel`` with ``w`` on a grid
of 0..1 in steps of 0.05; ``w = 1`` is the symbol's HAR alone. ``w`` is chosen per symbol on a
*selection history* that ends before the fold's test window: the fold's validation slice plus,
with ``blend_history``, the out-of-sample rows of the earlier walk-forward folds (forecasts made
by models that had not seen them). The pooled curve (core symbols) acts as a prior worth
``blend_prior_days`` of the symbol's own rows, so a symbol with little history keeps the pooled
weight and one with a long record of the panel losing moves to its HAR (Bayesian shrinkage of a
noisy per-symbol estimate toward the group estimate, in loss space); no symbol is given a weight
whose blend did worse than its HAR alone on its own selection rows once those rows outweigh the
prior.

Everything here is pure: rows in, curves and weights out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cascade_ml.models.metrics import qlike_loss

GRID = np.round(np.linspace(0.0, 1.0, 21), 2)
"""Candidate HAR weights; 1.0 is HAR alone."""
CURVE_COLUMNS = [f"w{w:.2f}" for w in GRID]
ROWS = "rows"


@dataclass(frozen=True)
class BlendWeights:
    """The pooled HAR weight and each symbol's own (the pooled one when it has none)."""

    pooled: float
    per_symbol: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def of(self, symbol: str) -> float:
        return float(self.per_symbol.get(symbol, self.pooled))

    def for_rows(self, symbols: np.ndarray | pd.Series) -> np.ndarray:
        """The weight of each row's symbol."""
        return np.array([self.of(str(s)) for s in np.asarray(symbols)], dtype=float)


def blend(log_panel: np.ndarray, log_har: np.ndarray, weight: np.ndarray | float) -> np.ndarray:
    """The combined log forecast; the panel alone where the HAR is missing."""
    log_panel, log_har = np.asarray(log_panel, float), np.asarray(log_har, float)
    has = np.isfinite(log_har)
    return np.where(has, weight * np.where(has, log_har, 0.0) + (1 - weight) * log_panel,
                    log_panel)


def loss_curves(rows: pd.DataFrame) -> pd.DataFrame:
    """Summed QLIKE of each symbol's blend at every grid weight, and its row count.

    ``rows`` has ``symbol``, ``fwd_rv`` and the log H-bar variances ``log_panel`` and
    ``log_har``; rows without a HAR forecast or an outcome are ignored.
    """
    ok = (np.isfinite(rows["log_har"]) & np.isfinite(rows["log_panel"])
          & np.isfinite(rows["fwd_rv"]))
    out = {}
    for sym, part in rows[ok].groupby("symbol", sort=True):
        rv = part["fwd_rv"].to_numpy(float)
        lp, lh = part["log_panel"].to_numpy(float), part["log_har"].to_numpy(float)
        sums = [float(np.sum(qlike_loss(rv, np.exp(w * lh + (1 - w) * lp)))) for w in GRID]
        out[str(sym)] = [*sums, float(len(part))]
    return pd.DataFrame.from_dict(out, orient="index", columns=[*CURVE_COLUMNS, ROWS])


def add_curves(*curves: pd.DataFrame) -> pd.DataFrame:
    """Curves of several selection sets added symbol by symbol (sums and row counts add)."""
    parts = [c for c in curves if c is not None and len(c)]
    if not parts:
        return pd.DataFrame(columns=[*CURVE_COLUMNS, ROWS])
    return pd.concat(parts).groupby(level=0).sum()


def choose_weights(curves: pd.DataFrame, core: list[str], prior_rows: float,
                   per_symbol: bool = True) -> BlendWeights:
    """Per-symbol weights shrunk toward the pooled weight of the ``core`` symbols.

    Symbol s gets ``argmin_w [L_s(w) + prior_rows * P(w)]`` where ``L_s`` is its summed loss and
    ``P`` the pooled mean loss per row. Once the symbol has at least ``prior_rows`` rows of its
    own, only weights whose own loss ``L_s(w)`` is no worse than its HAR alone (``L_s(1)``) are
    allowed: the prior may then pull it toward the pool, never to a blend its own history shows
    losing to its HAR. Ties go to the smaller weight (more panel).
    """
    pool = curves.loc[[s for s in curves.index if s in core]]
    if pool.empty or pool[ROWS].sum() <= 0:
        return BlendWeights(0.0)
    pooled_curve = pool[CURVE_COLUMNS].sum().to_numpy() / float(pool[ROWS].sum())
    pooled = float(GRID[int(np.argmin(pooled_curve))])
    if not per_symbol:
        return BlendWeights(pooled, {}, {str(s): int(n) for s, n in curves[ROWS].items()})
    weights, rows = {}, {}
    for sym, row in curves.iterrows():
        own = row[CURVE_COLUMNS].to_numpy(float)
        loss = own + prior_rows * pooled_curve
        if row[ROWS] >= prior_rows:  # its own evidence outweighs the prior: it is knowledge
            loss[own > own[-1]] = np.inf  # never a weight that lost to HAR alone on its rows
        weights[str(sym)] = float(GRID[int(np.argmin(loss))])
        rows[str(sym)] = int(row[ROWS])
    return BlendWeights(pooled, weights, rows)
