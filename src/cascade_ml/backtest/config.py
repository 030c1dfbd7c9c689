"""Configuration of the `backtest` pipeline section."""

from __future__ import annotations

from cascade_ml.config_base import StrictModel


class BacktestConfig(StrictModel):
    """Settings for backtest (filled in by its module)."""
