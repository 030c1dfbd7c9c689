"""Configuration of the `backtest` pipeline section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from cascade_ml.config_base import StrictModel

StrategyName = Literal["unhedged", "static_hedge", "vol_target", "rule_triggers", "model_policy"]
ALL_STRATEGIES: list[StrategyName] = ["unhedged", "static_hedge", "vol_target", "rule_triggers",
                                      "model_policy"]


class BacktestConfig(StrictModel):
    """How the hedging bot is simulated; fees, band and risk limits come from `policy`."""

    strategies: list[StrategyName] = Field(default_factory=lambda: list(ALL_STRATEGIES))
    leverage: float = Field(5.0, gt=0, le=125, description="The bot's leverage (unhedged).")
    static_hedge: float = Field(0.5, ge=0, le=1, description="Hedge of the static strategy.")
    margin_fraction: float = Field(
        0.5, gt=0, le=1, description="Share of account equity posted as the position's margin; "
        "a liquidation loses it and the bot re-enters with the same share of what is left.")
    initial_equity: float = Field(10_000.0, gt=0)
    leverage_tolerance: float = Field(
        0.20, ge=0, lt=1, description="Relative leverage drift tolerated before re-levering.")
    funding_proxy: bool = Field(
        True, description="Where the venue has no funding data, charge other venues' funding "
        "(e.g. Hyperliquid hourly) instead of nothing.")
    venue: str | None = Field(None, description="Store venue of the bars; None = task.venue.")
    report_dir: Path = Path("reports/backtest")
    experiment: str = "backtest"
    log_mlflow: bool = True
