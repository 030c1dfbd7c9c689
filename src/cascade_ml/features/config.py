"""Configuration of the `features` pipeline section.

Windows are counted in bars of the target's grid (1h by default, so ``168`` is one week and the
column is named ``rv_168h``). Lags are pandas offsets (``"0h"``, ``"30min"``, ``"1d"``).
"""

from __future__ import annotations

import pandas as pd
from pydantic import Field, field_validator, model_validator

from cascade_ml.config_base import StrictModel

FAMILIES = ("volatility", "correlation", "funding", "open_interest", "sentiment", "volume",
            "liquidations", "depth")
PERP_ONLY_FAMILIES = ("funding", "open_interest", "liquidations", "depth")
"""Families a spot market has no data for: NaN on spot rows of a spliced history."""


def _positive_windows(values: list[int], name: str) -> list[int]:
    if not values:
        raise ValueError(f"{name} must list at least one window")
    bad = [v for v in values if v < 1]
    if bad:
        raise ValueError(f"{name} windows must be >= 1 bar, got {bad}")
    return values


class FeatureConfig(StrictModel):
    """Which feature families run, their windows, thresholds and as-of publication lags."""

    families: list[str] = Field(default_factory=lambda: list(FAMILIES))
    # volatility (HAR components) and range estimators
    rv_windows: list[int] = Field(default_factory=lambda: [1, 24, 168, 720])
    range_windows: list[int] = Field(default_factory=lambda: [24, 168])
    # correlation / beta to the reference markets
    corr_windows: list[int] = Field(default_factory=lambda: [168, 720])
    corr_change_lag: int = 24
    # funding
    funding_venues: list[str] = Field(default_factory=lambda: ["binance", "hyperliquid"])
    funding_z_windows: list[int] = Field(default_factory=lambda: [72, 168, 720])
    funding_pct_window: int = 720
    funding_cum_hours: list[int] = Field(default_factory=lambda: [24, 72])
    funding_lag: str = "0h"
    funding_max_age_settlements: float = 3.0
    funding_trigger_z: float = 2.0
    # open interest
    oi_venues: list[str] = Field(default_factory=lambda: ["binance", "binance_coinm"])
    oi_change_windows: list[int] = Field(default_factory=lambda: [4, 24, 168])
    oi_z_windows: list[int] = Field(default_factory=lambda: [168, 720])
    oi_lag: str = "0h"
    # the store stamps OI at snapshot time; list intervals whose rows are stamped at period START
    oi_period_end_intervals: list[str] = Field(default_factory=list)
    oi_max_age_intervals: float = 2.0
    oi_crowding_window: int = Field(24, ge=1)
    # sentiment (daily series: usable after the period ends + lag)
    sentiment_lag: str = "0h"
    sentiment_z_periods: int = 30
    sentiment_market_symbol: str = "MARKET"
    sentiment_trigger_z: float = 2.0
    greed_threshold: float = 75.0
    runup_window: int = 168
    runup_threshold: float = 0.10
    # volume breakdowns
    support_windows: list[int] = Field(default_factory=lambda: [72, 168])
    volume_windows: list[int] = Field(default_factory=lambda: [24, 168])
    breakdown_volume_ratio: float = 2.0
    # liquidations (daily totals)
    liquidation_lag: str = "0h"
    liquidation_norm_periods: int = 30
    # order-book depth (snapshots; NaN where none exist or the latest is older than the max age)
    depth_norm_window: int = Field(168, ge=2)
    depth_max_age: str = "2h"
    # shared
    min_periods_frac: float = Field(0.5, gt=0.0, le=1.0)

    @field_validator("families")
    @classmethod
    def _known_families(cls, values: list[str]) -> list[str]:
        unknown = [v for v in values if v not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown feature family {unknown}; known: {list(FAMILIES)}")
        return values

    @field_validator("funding_lag", "oi_lag", "sentiment_lag", "liquidation_lag", "depth_max_age")
    @classmethod
    def _offset(cls, value: str) -> str:
        try:
            lag = pd.Timedelta(value)
        except ValueError as exc:
            raise ValueError(f"not a time offset: {value!r} (e.g. '0h', '30min', '1d')") from exc
        if lag < pd.Timedelta(0):
            raise ValueError(f"a publication lag cannot be negative: {value!r}")
        return value

    @model_validator(mode="after")
    def _windows(self) -> FeatureConfig:
        for name in ("rv_windows", "range_windows", "corr_windows", "funding_z_windows",
                     "funding_cum_hours", "oi_change_windows", "oi_z_windows", "support_windows",
                     "volume_windows"):
            _positive_windows(getattr(self, name), name)
        return self

    def max_window(self) -> int:
        """The longest look-back (in bars) of the enabled families, checked against the data."""
        per_family = {
            "volatility": [*self.rv_windows, *self.range_windows],
            "correlation": [w + self.corr_change_lag for w in self.corr_windows],
            "funding": [*self.funding_z_windows, self.funding_pct_window],
            "open_interest": [*self.oi_change_windows, *self.oi_z_windows,
                              self.oi_crowding_window],
            "sentiment": [self.runup_window],
            "volume": [*self.support_windows, *self.volume_windows],
            "liquidations": [1],
            "depth": [self.depth_norm_window],
        }
        return max(max(per_family[f]) for f in self.families) if self.families else 1
