"""The fee and spread model, one source: the `policy` section's fee (taker, or maker with
``use_maker``) and full spread. A fill at reference price ``ref`` moves half the spread against
the trader and pays the fee on ``qty x ref``, so trading a notional costs
``policy.trade_cost = fee + spread / 2`` of it, in the backtest and in the paper book alike."""

from __future__ import annotations

from dataclasses import dataclass

from cascade_ml.errors import CascadeError
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.trading.types import OrderSide


@dataclass(frozen=True)
class Fill:
    """One fill: ``slippage`` is its spread cost in quote (``qty x |price - ref_price|``)."""

    side: OrderSide
    qty: float
    price: float
    ref_price: float
    fee: float
    slippage: float


def fee_rate(policy: PolicyConfig) -> float:
    """The fee on traded notional (maker when ``use_maker``, else taker)."""
    return policy.maker_fee if policy.use_maker else policy.taker_fee


def simulate_fill(side: OrderSide, qty: float, ref_price: float, policy: PolicyConfig,
                  *, fee: float | None = None) -> Fill:
    """Fill ``qty`` (> 0, base units) at ``ref_price`` moved half the spread against us, paying
    the fee on ``qty x ref_price``; ``fee`` overrides it (a liquidation's clearance)."""
    if side not in ("buy", "sell"):
        raise CascadeError(f"unknown order side {side!r}; use buy or sell")
    if not qty > 0 or not ref_price > 0:
        raise CascadeError(f"a fill needs a positive quantity and price, got qty={qty}, "
                           f"price={ref_price}")
    half = policy.spread / 2 if fee is None else 0.0
    price = ref_price * (1 + half) if side == "buy" else ref_price * (1 - half)
    return Fill(side=side, qty=qty, price=price, ref_price=ref_price,
                fee=fee_rate(policy) * qty * ref_price if fee is None else fee,
                slippage=qty * abs(price - ref_price))
