"""The margin model: isolated margin per position, tiered maintenance margin (Binance brackets).

Each position (a main leg and its hedge) has its own margin bucket; a loss beyond it cannot
touch the rest of the account. Plain floats: the backtest calls these once per position-bar.
"""

from __future__ import annotations

import math
from bisect import bisect_right

from cascade_ml.policy.config import MarginTier
from cascade_ml.policy.liquidation import tier_arrays


class Tiers:
    """Bracket lookups of one perp's tiers without per-call array building."""

    def __init__(self, tiers: list[MarginTier]) -> None:
        bounds, mmr, _, cum = tier_arrays(tiers)
        self._b = [float(b) for b in bounds]
        self._m = [float(m) for m in mmr]
        self._c = [float(c) for c in cum]
        self.last = len(self._b) - 1
        self.top = max(self._m)  # the highest rate: a bound on any bracket's margin (cum >= 0)

    def get(self, notional: float) -> tuple[float, float]:
        """(maintenance margin rate, maintenance amount) of the bracket of ``notional``."""
        i = min(bisect_right(self._b, notional), self.last)
        return self._m[i], self._c[i]


def liquidation_bounds(long_q: float, short_q: float, equity: float, price: float,
                       t: Tiers) -> tuple[float, float]:
    """(low, high): a bucket of ``equity`` holding ``long_q`` and ``short_q`` of one perp
    (brackets at ``price``) reaches its maintenance margin when the price falls to ``low`` or
    rises to ``high``; -inf / inf on a side where it never does.

    Equity less the two legs' maintenance margin (hedge mode: each leg carries its own) is
    linear in the price, ``f(x) = equity - q_net price + cum + (q_net - M) x`` with
    ``M = long_q mmr_l + short_q mmr_s``: its slope, not the sign of ``q_net``, says the side.
    A near-full hedge of a long (``0 < q_net < M``, h above ``(1 - mmr) / (1 + mmr)``) is
    liquidated only by a rise. Same solution as
    ``policy.liquidation.bucket_liquidation_bounds`` (tested equal)."""
    q_net = long_q - short_q
    mmr_l, cum_l = t.get(long_q * price)
    mmr_s, cum_s = t.get(short_q * price)
    cum = (cum_l if long_q > 0 else 0.0) + (cum_s if short_q > 0 else 0.0)
    slope = q_net - (long_q * mmr_l + short_q * mmr_s)
    level = equity - q_net * price + cum
    if slope > 0:
        return -level / slope, math.inf
    if slope < 0:
        return -math.inf, -level / slope
    return (math.inf, -math.inf) if level <= 0 else (-math.inf, math.inf)


def maintenance_margin(q: float, price_now: float, price_ref: float, t: Tiers) -> float:
    """Maintenance margin of ``q`` (>= 0) at ``price_now`` with the bracket of its notional at
    ``price_ref``."""
    if q <= 0:
        return 0.0
    mmr, cum = t.get(q * price_ref)
    return q * price_now * mmr - cum
