"""Configuration of the `backtest` pipeline section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field, field_validator, model_validator

from cascade_ml.config_base import StrictModel

StrategyName = Literal["unhedged", "capped_unhedged", "static_hedge", "vol_target",
                       "rule_triggers", "model_policy", "har_policy", "ewma_policy",
                       "oracle_policy", "static_matched", "static_matched_har",
                       "static_matched_ewma", "static_matched_oracle", "static_sized",
                       "static_sized_har", "static_sized_ewma", "static_sized_oracle"]
ALL_STRATEGIES: list[StrategyName] = ["unhedged", "capped_unhedged", "static_hedge", "vol_target",
                                      "rule_triggers", "model_policy", "har_policy",
                                      "ewma_policy", "oracle_policy", "static_matched",
                                      "static_matched_har", "static_matched_oracle",
                                      "static_sized", "static_sized_har", "static_sized_oracle"]
BOOK_STRATEGIES: list[StrategyName] = ["unhedged", "capped_unhedged", "static_hedge",
                                       "model_policy", "har_policy", "static_matched"]


class Period(StrictModel):
    """A named span [start, end] (UTC dates, end inclusive) reported as its own table."""

    name: str
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _date(cls, value: str) -> str:
        try:
            pd.Timestamp(value)
        except ValueError as exc:
            raise ValueError(f"not a date: {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if pd.Timestamp(self.start) > pd.Timestamp(self.end):
            raise ValueError(f"period {self.name}: start {self.start} is after end {self.end}")
        return self

    def bounds(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """[start 00:00, end 23:59:59] in UTC."""
        start = pd.Timestamp(self.start, tz="UTC")
        end = pd.Timestamp(self.end, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta("1ns")
        return start, end


DEFAULT_PERIODS = [
    Period(name="2023 range", start="2023-01-01", end="2023-12-31"),
    Period(name="2024 bull", start="2024-09-06", end="2024-12-17"),
    Period(name="2024-08-05 crash", start="2024-08-01", end="2024-08-09"),
    Period(name="2025-10-10 liquidations", start="2025-10-08", end="2025-10-14"),
    Period(name="2025-26 decline", start="2025-10-06", end="2026-05-18"),
]


class BookConfig(StrictModel):
    """The portfolio backtest: several perps on one account (`cascade-ml backtest --book`)."""

    symbols: list[str] = Field(default_factory=list, description="Perps of the book; empty = "
                               "task.symbols. Each needs its OOS predictions in the store.")
    strategies: list[StrategyName] = Field(default_factory=lambda: list(BOOK_STRATEGIES))
    proxy_hedges: bool = Field(True, description="Let the policy hedge in BTC/ETH when its "
                               "instrument rule picks them.")
    proxy_effectiveness: float | None = Field(
        None, ge=0, le=1, description="Also run the book's strategies as a proxy-hedged "
        "variant: policy.same_perp_effectiveness set to this for every position but BTC/ETH "
        "(an account in one-way mode, or a desk hedging alts through BTC/ETH), so a BTC/ETH "
        "hedge with R^2 >= policy.min_cross_hedge_r2 and above it is chosen; None: not run.")

    @model_validator(mode="after")
    def _proxy_variant(self) -> BookConfig:
        if self.proxy_effectiveness is not None and not self.proxy_hedges:
            raise ValueError("proxy_effectiveness runs a proxy-hedged variant: it needs "
                             "proxy_hedges: true")
        return self


FeedName = Literal["model", "har", "ewma", "oracle"]
DEFAULT_VARIANTS: list[dict[str, float | str | bool]] = [
    {"hedge_min": 0.1, "hedge_max": 0.5}, {}, {"hedge_min": 0.5, "hedge_max": 0.9}]
"""The hedge band at 10-50 %, as configured (30-70 % by default) and at 50-90 %."""


class FrontierConfig(StrictModel):
    """The efficiency frontier (docs/policy.md): static hedges at every ratio against the
    policy's variants fed by each forecast, hedge cost against CVaR, vol and drawdown."""

    enabled: bool = Field(True, description="Compute the frontier (19 more simulations per "
                          "perp with the defaults: 11 static ratios, 2 new variants x 4 feeds).")
    static_ratios: list[float] = Field(
        default_factory=lambda: [round(0.1 * k, 1) for k in range(11)],
        description="Hedge ratios of the static curve, at the model policy's mean leverage.")
    variants: list[dict[str, float | str | bool]] = Field(
        default_factory=lambda: [dict(v) for v in DEFAULT_VARIANTS],
        description="The swept trade-off: each entry overrides fields of the policy section "
        "({} = the policy as configured), e.g. the band's position (hedge_min, hedge_max) or "
        "any risk-aversion / cost knob of PolicyConfig.")
    feeds: list[FeedName] = Field(default_factory=lambda: ["ewma", "har", "model", "oracle"],
                                  description="Forecast feeds the policy's curves are drawn for.")

    @field_validator("static_ratios")
    @classmethod
    def _ratios(cls, value: list[float]) -> list[float]:
        bad = [r for r in value if not 0 <= r <= 1]
        if bad:
            raise ValueError(f"static hedge ratios must lie in [0, 1], got {bad}")
        return value


class UniverseConfig(StrictModel):
    """The universe backtest (`cascade-ml backtest` without --symbol on a many-symbol task)."""

    book: bool = Field(True, description="Also run the one-book view: every perp on one "
                       "account (the `book` section's strategies and proxy hedges).")
    symbol_reports: bool = Field(False, description="Also write each perp's plots and HTML "
                                 "report (slow: four figures per perp).")


class BacktestConfig(StrictModel):
    """Which strategies are simulated and how they are reported; the bot (equity, leverage,
    margin, stops) is the `trading` section, fees, band and risk limits come from `policy`."""

    strategies: list[StrategyName] = Field(default_factory=lambda: list(ALL_STRATEGIES))
    static_hedge: float = Field(0.5, ge=0, le=1, description="Hedge of the static strategy.")
    feed_objective_weight: dict[FeedName, float] = Field(
        default_factory=dict, description="policy.objective_weight of the policy fed by each "
        "named feed (har, ewma, oracle), each chosen for its own feed on the development "
        "folds; a feed not named (and the model feed always: what decide uses live) reads "
        "policy.objective_weight.")
    enforce_size_cap: bool = Field(
        True, description="Policy strategies hold each position to the policy's size cap "
        "(max_risk_fraction of equity lost on the adverse move).")
    proxy_hedges: bool = Field(True, description="Simulate BTC/ETH proxy hedges when the policy "
                               "picks them (needs BTC/ETH bars in the store).")
    funding_proxy: bool = Field(
        True, description="Where the venue has no funding data, charge other venues' funding "
        "(e.g. Hyperliquid hourly) instead of nothing.")
    venue: str | None = Field(None, description="Store venue of the bars; None = task.venue.")
    periods: list[Period] = Field(default_factory=lambda: list(DEFAULT_PERIODS),
                                  description="Regimes reported as their own tables.")
    bootstrap_reps: int = Field(1000, ge=50, description="Stationary-bootstrap resamples of the "
                                "forecast-value interval.")
    bootstrap_block_days: float | None = Field(
        None, gt=0, description="Mean block length (days); None = arch's optimal_block_length.")
    seed: int = 0
    book: BookConfig = BookConfig()

    @field_validator("feed_objective_weight")
    @classmethod
    def _feed_weights(cls, value: dict[str, float]) -> dict[str, float]:
        if "model" in value:
            raise ValueError("the model feed reads policy.objective_weight (what decide uses "
                             "live); name only har, ewma or oracle here")
        bad = {k: w for k, w in value.items() if not 0 <= w <= 1}
        if bad:
            raise ValueError(f"objective weights must lie in [0, 1], got {bad}")
        return value
    frontier: FrontierConfig = FrontierConfig()
    universe: UniverseConfig = UniverseConfig()
    report_dir: Path = Path("reports/backtest")
    html_report: bool = Field(True, description="Write <SYMBOL>_report.html beside the JSON.")
    experiment: str = "backtest"
    log_mlflow: bool = True
