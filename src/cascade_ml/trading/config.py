"""The `trading` pipeline section: the bot's account and position, read by the backtest and by the
live paper book alike (so both simulate the same bot)."""

from __future__ import annotations

from pydantic import Field

from cascade_ml.config_base import StrictModel


class TradingConfig(StrictModel):
    """The bot: its starting equity, its leverage on an isolated margin share, and how the
    trading core applies the policy's decisions to it (fees, spread and the no-trade band come
    from the `policy` section)."""

    initial_equity: float = Field(10_000.0, gt=0, description="Starting equity of the account "
                                  "(quote currency): the backtest's and a new paper book's.")
    leverage: float = Field(5.0, gt=0, le=125, description="The bot's leverage on its margin "
                            "when the policy does not cap it (the unhedged benchmark's).")
    margin_fraction: float = Field(
        0.5, gt=0, le=1, description="Share of account equity posted as the positions' isolated "
        "margin, divided equally among them; a liquidation loses that margin and the position "
        "re-enters with the same share of what is left.")
    leverage_tolerance: float = Field(
        0.20, ge=0, lt=1, description="How far (relative) leverage may sit below its cap "
        "before re-levering up (the main leg's no-trade band); one-sided: above the cap is "
        "never tolerated, the position is cut back to it at that close.")
    stops: bool = Field(True, description="Honour the protective stop (policy strategies in the "
                        "backtest; the paper book always follows this flag).")
    stop_cooldown_bars: int = Field(24, ge=1, description="Bars a position stays flat once its "
                                    "stop fired, the stop's own bar included.")

    def nominal_notional(self, positions: int = 1) -> float:
        """The main leg the bot means to hold at its starting equity (what the policy's margin
        tier is looked up with)."""
        return self.leverage * self.initial_equity * self.margin_fraction / max(positions, 1)
