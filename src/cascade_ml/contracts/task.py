"""The task: which perps, on which bars, over which horizon, for which position side.

Every step reads these facts from the one ``task`` section of the pipeline file, so labels,
models, backtest, scoring and serving can never disagree on the horizon or the side.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import Field, field_validator

from cascade_ml.config_base import StrictModel

Side = Literal["long", "short"]


class TaskConfig(StrictModel):
    """What is forecast: ``horizon`` bars of ``interval`` ahead, for ``side`` positions.

    ``references`` are the markets features compare each symbol with (funding divergence, beta);
    a symbol that is also a reference simply drops itself from its own references.
    """

    symbols: list[str] = Field(default_factory=lambda: ["NEAR"], min_length=1)
    references: list[str] = Field(default_factory=lambda: ["BTC", "ETH"])
    venue: str = Field("binance", description="Store venue of the bars the task is built on.")
    interval: str = Field("1h", description="Bar interval, e.g. 1h.")
    horizon: int = Field(24, ge=1, description="Forecast horizon H in bars.")
    side: Side = Field("long", description="Side of the bot's positions; a cascade is a move "
                       "against it.")
    spot_venue: str | None = Field(
        None, description="Store venue of spot candles (e.g. binance_spot) that stand in for a "
        "perp's price strictly before its first bar (cascade_ml.data.history: one rule, marked "
        "is_spot, perp-only families NaN there); None = the perp's own bars only.")

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        try:
            step = pd.Timedelta(value)
        except ValueError as exc:
            raise ValueError(f"unknown interval {value!r}; use e.g. 5m, 1h, 4h") from exc
        if step <= pd.Timedelta(0):
            raise ValueError(f"interval {value!r} must be positive")
        return value

    @property
    def bar(self) -> pd.Timedelta:
        """One bar as a time span."""
        return pd.Timedelta(self.interval)

    @property
    def horizon_hours(self) -> float:
        """The horizon in hours, as the policy's annualisation needs it."""
        return self.horizon * self.bar / pd.Timedelta("1h")

    def references_for(self, symbol: str) -> list[str]:
        """The reference markets of ``symbol``, minus itself (BTC's references are ETH only)."""
        return [ref for ref in self.references if ref != symbol]

    @property
    def all_symbols(self) -> list[str]:
        """Targets then references, each once: what ingest and summary must cover."""
        return list(dict.fromkeys([*self.symbols, *self.references]))
