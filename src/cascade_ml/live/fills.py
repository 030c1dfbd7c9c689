"""The paper fill model: a market order fills at the reference price moved against the trader by
a fixed slippage, and pays the taker fee on the filled notional.

Pure (no I/O): the book stores what it returns, so fees and slippage in the book are exactly
these numbers and can be checked by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from cascade_ml.config_base import StrictModel
from cascade_ml.errors import CascadeError

Side = Literal["buy", "sell"]


@dataclass(frozen=True)
class SimulatedFill:
    """One fill: ``slippage`` is its cost in quote currency (``qty x |price - ref_price|``)."""

    side: Side
    qty: float
    price: float
    ref_price: float
    fee: float
    slippage: float


class FillModel(StrictModel):
    """Taker fee (Binance USD-M regular tier 0.05%) plus a slippage of ``slippage_bps``."""

    taker_fee: float = Field(0.0005, ge=0, lt=0.1, description="Fee rate on filled notional.")
    slippage_bps: float = Field(2.0, ge=0, lt=1000,
                                description="Adverse price move per fill, basis points.")

    def fill(self, side: Side, qty: float, ref_price: float) -> SimulatedFill:
        """Fill ``qty`` (> 0, base units) at ``ref_price`` moved ``slippage_bps`` against us."""
        if side not in ("buy", "sell"):
            raise CascadeError(f"unknown order side {side!r}; use buy or sell")
        if not qty > 0 or not ref_price > 0:
            raise CascadeError(f"a fill needs a positive quantity and price, got qty={qty}, "
                               f"price={ref_price}")
        move = self.slippage_bps / 10_000
        price = ref_price * (1 + move) if side == "buy" else ref_price * (1 - move)
        return SimulatedFill(side=side, qty=qty, price=price, ref_price=ref_price,
                             fee=self.taker_fee * qty * price,
                             slippage=qty * abs(price - ref_price))
