"""Names of the trading vocabulary, each defined once.

``Side`` (the bot's position: long or short) is the task's, :data:`cascade_ml.contracts.task.Side`;
an order's direction is an ``OrderSide``; ``Mode`` says where orders go.
"""

from __future__ import annotations

from typing import Literal

from cascade_ml.contracts.task import Side

OrderSide = Literal["buy", "sell"]
Mode = Literal["paper", "testnet", "live"]
LegName = Literal["main", "hedge"]
OrderKind = Literal["trade", "stop", "liquidation"]
"""Why an order exists: a rebalance at the bar close, the protective stop inside the bar, or the
exchange's liquidation of the position's margin."""

__all__ = ["LegName", "Mode", "OrderKind", "OrderSide", "Side"]
