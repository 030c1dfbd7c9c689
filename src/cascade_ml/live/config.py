"""Settings of paper / testnet / live running (a pipeline section once the loop is wired in)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cascade_ml.config_base import StrictModel
from cascade_ml.live.db import DEFAULT_DB_URL
from cascade_ml.live.fills import FillModel

Mode = Literal["paper", "testnet", "live"]


class LiveConfig(StrictModel):
    """Where the book lives, how orders are executed and the bot position being hedged."""

    mode: Mode = Field("paper", description="paper: simulated fills into the book; testnet / "
                       "live: real orders through ccxt (API keys from the environment).")
    db_url: str = Field(DEFAULT_DB_URL, description="SQLAlchemy URL of the book.")
    initial_cash: float = Field(10_000.0, gt=0, description="Starting cash of a new book.")
    quote: str = "USDT"
    exchange: str = Field("binanceusdm", description="ccxt id for testnet / live orders.")
    fills: FillModel = Field(default_factory=FillModel)
    side: Literal["long", "short"] = Field("long", description="The bot's main position side.")
    target_notional: float = Field(5_000.0, gt=0,
                                   description="Main position the bot wants, quote currency.")
    min_order_notional: float = Field(
        10.0, ge=0, description="Smaller rebalances are skipped (exchange minimums, dust).")
    hedge_mode: bool = Field(
        False, description="The exchange account is in hedge (dual-side) mode: orders carry "
        "positionSide so the hedge leg does not net against the main leg.")
