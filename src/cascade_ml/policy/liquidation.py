"""Binance USD-M liquidation math with maintenance-margin tiers (isolated margin).

Liquidation happens when the position's equity falls to its maintenance margin
``notional * MMR - cum`` (the bracket's ``cum`` keeps the requirement continuous across brackets).
For one position this gives Binance's form (REFERENCES.md, freqtrade ``exchange/binance.py``)::

    LP = (WB + cum - s Q EP) / (Q MMR - s Q)        s = +1 long, -1 short

With the wallet balance of a fresh isolated position ``WB = N / L`` (N = Q EP) the distance to
liquidation depends only on leverage and bracket::

    long:  d = 1 - (1 - 1/L - cum/N) / (1 - MMR)   =>  L_max = 1 / (1 - cum/N - (1 - d)(1 - MMR))
    short: d = (1 + 1/L + cum/N) / (1 + MMR) - 1   =>  L_max = 1 / ((1 + d)(1 + MMR) - 1 - cum/N)

With cum = 0 the long case is REFERENCES.md's ``L_max = 1 / (1 - (1 - MMR)(1 - d))``. All array
functions accept scalars or numpy arrays so the backtest can use them on whole columns; on plain
numbers they run without numpy (:mod:`cascade_ml.policy.numeric`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cascade_ml.contracts.task import Side
from cascade_ml.errors import CascadeError
from cascade_ml.policy.config import MarginTier
from cascade_ml.policy.numeric import asnum, div, inf, out, where

ArrayLike = float | np.ndarray


def _sign(side: str) -> int:
    if side == "long":
        return 1
    if side == "short":
        return -1
    raise CascadeError(f"unknown side {side!r}; expected 'long' or 'short'")


def tier_arrays(tiers: Sequence[MarginTier]) -> tuple[np.ndarray, ...]:
    """Bracket bounds, MMRs, max leverages and cums as arrays (for vectorised lookups)."""
    return (np.array([t.max_notional for t in tiers], dtype=float),
            np.array([t.mmr for t in tiers], dtype=float),
            np.array([t.max_leverage for t in tiers], dtype=float),
            np.array([t.cum for t in tiers], dtype=float))


def tier_params(notional: ArrayLike, tiers: Sequence[MarginTier]) -> tuple[ArrayLike, ...]:
    """(mmr, max_leverage, cum) of the bracket holding ``notional`` (beyond the last: the last).

    The bracket is the first whose ``max_notional`` exceeds ``|notional|``
    (``searchsorted(side="right")`` on columns, the same scan on one number; NaN: the last).
    """
    n = asnum(notional)
    if isinstance(n, np.ndarray):
        bounds, mmr, max_lev, cum = tier_arrays(tiers)
        idx = np.minimum(np.searchsorted(bounds, np.abs(n), side="right"), len(bounds) - 1)
        if np.ndim(idx):
            return mmr[idx], max_lev[idx], cum[idx]
        t = tiers[int(idx)]
    else:
        x = abs(n)
        for t in tiers:  # a handful of brackets: a scan beats bisect's key calls
            if t.max_notional > x:
                break
    return float(t.mmr), float(t.max_leverage), float(t.cum)


def maintenance_margin(notional: ArrayLike, tiers: Sequence[MarginTier]) -> ArrayLike:
    """Maintenance margin ``N * MMR - cum`` of a position of notional ``N``."""
    mmr, _, cum = tier_params(notional, tiers)
    return out(abs(asnum(notional)) * mmr - cum)


def liquidation_price(side: Side, qty: float, entry_price: float, wallet_balance: float,
                      tiers: Sequence[MarginTier]) -> float:
    """Binance isolated liquidation price ``(WB + cum - sQEP) / (QMMR - sQ)``; 0 if never reached.

    The bracket is the one of the entry notional ``Q * EP``.
    """
    s = _sign(side)
    if qty <= 0 or entry_price <= 0:
        raise CascadeError(f"qty and entry_price must be positive, got {qty} and {entry_price}")
    mmr, _, cum = tier_params(qty * entry_price, tiers)
    price = (wallet_balance + cum - s * qty * entry_price) / (qty * mmr - s * qty)
    return max(float(price), 0.0)


def bucket_liquidation_bounds(long_qty: float, short_qty: float, equity: float, price: float,
                              tiers: Sequence[MarginTier]) -> tuple[float, float]:
    """(low, high): prices at which a long and a short leg of one symbol sharing margin
    ``equity`` reach their maintenance margin, falling or rising; -inf / inf where never.

    Solves ``equity + q_net (x - price) = mm(long at x) + mm(short at x)`` with brackets taken at
    ``price`` (hedge mode: each leg carries its own maintenance margin). The difference is linear
    in ``x`` with slope ``q_net - (long mmr_l + short mmr_s)``, so the bucket is liquidated on one
    side only, given by that slope: a net long hedged above ``(1 - mmr) / (1 + mmr)`` only on a
    rise. (nan, nan) with no position. With one leg and ``equity = WB`` the bound on the
    position's adverse side equals :func:`liquidation_price`.
    """
    if long_qty <= 0 and short_qty <= 0:
        return float("nan"), float("nan")
    q_net = long_qty - short_qty
    mmr_l, _, cum_l = tier_params(long_qty * price, tiers)
    mmr_s, _, cum_s = tier_params(short_qty * price, tiers)
    cum = (cum_l if long_qty > 0 else 0.0) + (cum_s if short_qty > 0 else 0.0)
    slope = q_net - long_qty * mmr_l - short_qty * mmr_s
    level = equity - q_net * price + cum
    if slope > 0:
        return float(-level / slope), float("inf")
    if slope < 0:
        return float("-inf"), float(-level / slope)
    return (float("inf"), float("-inf")) if level <= 0 else (float("-inf"), float("inf"))


def liquidation_distance(side: Side, leverage: ArrayLike, notional: ArrayLike,
                         tiers: Sequence[MarginTier]) -> ArrayLike:
    """Adverse move (fraction of entry price) from entry to liquidation for ``WB = N / L``."""
    s = _sign(side)
    mmr, _, cum = tier_params(notional, tiers)
    inv_l = div(1.0, asnum(leverage))
    c = div(cum, asnum(notional))
    d = 1.0 - (1.0 - inv_l - c) / (1.0 - mmr) if s == 1 else (1.0 + inv_l + c) / (1.0 + mmr) - 1.0
    return out(d)


def max_leverage_for_distance(side: Side, distance: ArrayLike, notional: ArrayLike,
                              tiers: Sequence[MarginTier]) -> ArrayLike:
    """Largest leverage whose liquidation is at least ``distance`` away (inf when any is)."""
    mmr, _, cum = tier_params(notional, tiers)
    return max_leverage_in_bracket(side, distance, notional, mmr, cum)


def max_leverage_in_bracket(side: Side, distance: ArrayLike, notional: ArrayLike,
                            mmr: ArrayLike, cum: ArrayLike) -> ArrayLike:
    """:func:`max_leverage_for_distance` once the bracket's ``mmr`` and ``cum`` are known."""
    s = _sign(side)
    d = asnum(distance)
    c = div(cum, asnum(notional))
    denom = 1.0 - c - (1.0 - d) * (1.0 - mmr) if s == 1 else (1.0 + d) * (1.0 + mmr) - 1.0 - c
    return out(where(denom > 0, div(1.0, denom), inf))
