"""Forecast losses and tests: pure functions of arrays.

Volatility: QLIKE = RV/F - log(RV/F) - 1 (Patton 2011, robust to a noisy RV proxy), MSE of
log RV, Mincer-Zarnowitz regression RV = a + b F, and the Diebold-Mariano test on the QLIKE loss
differential with a Newey-West variance (lag >= H-1, since H-bar forecasts overlap).
Realised utility (Bollerslev, Hood, Huss & Pedersen 2018): the utility a volatility-targeting
investor with a constant Sharpe ratio gets from forecast F, as a share of the perfect forecast's,
u = 2 sqrt(RV/F) - RV/F, on non-overlapping H-bar windows (a loss in the user's units).
Cascade: PR-AUC (average precision), ROC-AUC, Brier, Brier skill score vs climatology, log loss.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_TINY = 1e-12


def qlike_loss(rv: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per-row QLIKE; 0 for a perfect forecast, always >= 0."""
    ratio = np.maximum(np.asarray(rv, float), _TINY) / np.maximum(np.asarray(f, float), _TINY)
    return ratio - np.log(ratio) - 1.0


def mincer_zarnowitz(rv: np.ndarray, f: np.ndarray) -> dict[str, float]:
    """OLS of realized on forecast: intercept, slope, R^2 (ideal 0, 1, high)."""
    rv, f = np.asarray(rv, float), np.asarray(f, float)
    X = np.column_stack([np.ones_like(f), f])
    coef, *_ = np.linalg.lstsq(X, rv, rcond=None)
    resid = rv - X @ coef
    tss = float(np.sum((rv - rv.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / tss if tss > 0 else float("nan")
    return {"mz_intercept": float(coef[0]), "mz_slope": float(coef[1]), "mz_r2": r2}


def utility_share(rv: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per-window realised utility of a volatility-targeting investor as a share of the
    perfect-forecast ceiling: u = 2 sqrt(RV/F) - RV/F (BHHP 2018 with constant Sharpe ratio SR
    and risk aversion gamma: U(F) = SR^2/gamma (sqrt(RV/F) - RV/(2F)), ceiling SR^2/(2 gamma)).
    1 for F = RV, lower for any other F; NaN where RV or F is missing or F <= 0."""
    rv, f = np.asarray(rv, float), np.asarray(f, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((f > 0) & (rv >= 0), rv / f, np.nan)
    return 2.0 * np.sqrt(ratio) - ratio


def realised_utility(rv: np.ndarray, f: np.ndarray) -> float:
    """Mean :func:`utility_share` over windows (pass non-overlapping ones, see
    :func:`non_overlapping`); NaN when any window lacks RV or F, so forecasts compared on the
    same windows never silently drop different ones."""
    u = utility_share(rv, f)
    return float(np.mean(u)) if len(u) else float("nan")


def non_overlapping(times: object, horizon: int) -> np.ndarray:
    """Positions of rows starting non-overlapping ``horizon``-bar windows: greedily from the
    earliest row, each next start at least H bars after the last one. Rows sit on one bar grid;
    the bar is the smallest gap between distinct times, so missing rows and fold gaps only
    lengthen the spacing, never shorten it."""
    t = pd.DatetimeIndex(times).asi8  # integers pass through as they are (bar numbers)
    if not len(t):
        return np.zeros(0, dtype=int)
    order = np.argsort(t, kind="stable")
    ts = t[order]
    gaps = np.diff(ts)
    gaps = gaps[gaps > 0]
    span = int(horizon) * (int(gaps.min()) if len(gaps) else 1)
    picks, i = [], 0
    while i < len(ts):
        picks.append(i)
        i = int(np.searchsorted(ts, ts[i] + span, side="left"))
    return order[np.asarray(picks, dtype=int)]


def volatility_metrics(rv: np.ndarray, f: np.ndarray,
                       windows: np.ndarray | None = None) -> dict[str, float]:
    """QLIKE, MSE of log RV and Mincer-Zarnowitz for one forecast series, plus the realised
    utility on the rows ``windows`` (non-overlapping H-bar windows) when given."""
    rv, f = np.asarray(rv, float), np.asarray(f, float)
    out = {"qlike": float(np.mean(qlike_loss(rv, f))),
           "mse_log": float(np.mean((np.log(np.maximum(rv, _TINY))
                                     - np.log(np.maximum(f, _TINY))) ** 2))}
    out.update(mincer_zarnowitz(rv, f))
    if windows is not None:
        out["realised_utility"] = realised_utility(rv[windows], f[windows])
    return out


def newey_west_var(d: np.ndarray, lags: int) -> float:
    """HAC (Bartlett) long-run variance of a series' mean numerator."""
    d = np.asarray(d, float) - np.mean(d)
    n = len(d)
    var = float(d @ d) / n
    for k in range(1, min(lags, n - 1) + 1):
        w = 1.0 - k / (lags + 1.0)
        var += 2.0 * w * float(d[k:] @ d[:-k]) / n
    return var


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, horizon: int) -> dict[str, float]:
    """DM test of equal loss; negative statistic = ``a`` has lower loss. Two-sided p-value.

    Uses the Harvey-Leybourne-Newbold small-sample correction and HAC lag ``horizon - 1``
    (at least 1).
    """
    d = np.asarray(loss_a, float) - np.asarray(loss_b, float)
    n = len(d)
    lags = max(horizon - 1, 1)
    var = newey_west_var(d, lags)
    if n < 3 or var <= 0:
        return {"dm_stat": float("nan"), "dm_pvalue": float("nan")}
    stat = float(np.mean(d) / np.sqrt(var / n))
    h = horizon
    hln = np.sqrt(max((n + 1 - 2 * h + h * (h - 1) / n) / n, _TINY))
    stat *= hln
    from scipy import stats  # here, not at the top: a backtest worker imports this module

    p = float(2 * stats.t.sf(abs(stat), df=n - 1))
    return {"dm_stat": stat, "dm_pvalue": p}


def cascade_metrics(y: np.ndarray, p: np.ndarray, base_rate: float,
                    threshold: float = 0.2) -> dict[str, float]:
    """Classification metrics of calibrated probabilities; BSS is vs a constant ``base_rate``."""
    from sklearn.metrics import (  # here: the backtest imports this module, never this function
        average_precision_score,
        brier_score_loss,
        log_loss,
        roc_auc_score,
    )

    y = np.asarray(y, float)
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    brier = float(brier_score_loss(y, p))
    brier_clim = float(np.mean((y - base_rate) ** 2))
    two = len(np.unique(y)) == 2
    alert = p >= threshold
    tp = float(np.sum(alert & (y == 1)))
    return {
        "pr_auc": float(average_precision_score(y, p)) if two else float("nan"),
        "roc_auc": float(roc_auc_score(y, p)) if two else float("nan"),
        "brier": brier,
        "bss": 1.0 - brier / brier_clim if brier_clim > 0 else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "base_rate": float(np.mean(y)),
        "precision_at_threshold": tp / alert.sum() if alert.sum() else float("nan"),
        "recall_at_threshold": tp / (y == 1).sum() if (y == 1).sum() else float("nan"),
        "alert_rate": float(np.mean(alert)),
    }
