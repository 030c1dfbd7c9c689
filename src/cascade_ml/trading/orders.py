"""Target position -> orders: the quantities each leg must trade, including a hedge that moves to
another instrument (the old leg closed, the new one opened), and what a fill does to a leg."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from cascade_ml.errors import CascadeError
from cascade_ml.trading.types import LegName, OrderKind, OrderSide

FLAT = 1e-12  # |qty| below this is flat (float dust after closing)
Legs = Mapping[tuple[LegName, str], float]
"""Signed quantity (long > 0) per (leg, instrument)."""


@dataclass(frozen=True)
class OrderIntent:
    """An order a cycle wants: ``qty`` > 0 base units of ``instrument`` on one leg.

    ``ref_price`` is the price the trading core traded at (the bar close for a rebalance, the
    stop or the gapped open for a stop); ``fee`` overrides the fee model (a liquidation's
    clearance: the margin that was left)."""

    leg: LegName
    instrument: str
    side: OrderSide
    qty: float
    kind: OrderKind = "trade"
    ref_price: float | None = None
    fee: float | None = None

    def __post_init__(self) -> None:
        if self.leg not in ("main", "hedge") or self.side not in ("buy", "sell"):
            raise CascadeError(f"bad order intent {self}: leg main/hedge, side buy/sell")
        if self.kind not in ("trade", "stop", "liquidation"):
            raise CascadeError(f"bad order kind {self.kind!r}: trade, stop or liquidation")
        if not (self.qty > 0 and math.isfinite(self.qty)):
            raise CascadeError(f"order quantity must be positive and finite, got {self.qty}")

    @property
    def signed_qty(self) -> float:
        return self.qty if self.side == "buy" else -self.qty


def orders_between(before: Legs, after: Legs, *, kind: OrderKind = "trade",
                   prices: Mapping[str, float] | None = None,
                   fees: Mapping[LegName, float] | None = None) -> list[OrderIntent]:
    """The orders that take the legs from ``before`` to ``after``: one per (leg, instrument)
    whose quantity changes (main first, then hedges), at ``prices[instrument]``."""
    keys = sorted(set(before) | set(after), key=lambda k: (k[0] != "main", k[1]))
    out = []
    for leg, instrument in keys:
        dq = after.get((leg, instrument), 0.0) - before.get((leg, instrument), 0.0)
        if abs(dq) <= FLAT:
            continue
        out.append(OrderIntent(leg, instrument, "buy" if dq > 0 else "sell", abs(dq), kind,
                               None if prices is None else prices[instrument],
                               None if fees is None else fees.get(leg)))
    return out


def position_after_fill(qty: float, entry: float, dq: float,
                        price: float) -> tuple[float, float, float]:
    """(new qty, new entry, realised P&L) of a leg holding ``qty`` at ``entry`` after a fill of
    signed ``dq`` at ``price``."""
    if qty == 0 or (qty > 0) == (dq > 0):
        new = qty + dq
        return new, (qty * entry + dq * price) / new, 0.0
    closed = min(abs(dq), abs(qty))
    realised = closed * (price - entry) * (1.0 if qty > 0 else -1.0)
    new = qty + dq
    if abs(new) <= FLAT:
        return 0.0, 0.0, realised
    if (new > 0) == (qty > 0):
        return new, entry, realised
    return new, price, realised  # flipped: the remainder opened at the fill price
