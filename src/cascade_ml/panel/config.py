"""Configuration of the ``panel`` pipeline section: one model for every perp of the universe.

The universe is the task's ``symbols``; ``holdout_symbols`` are left out of every panel fit
(leave-symbols-out) and judged as perps the panel has never seen. They are chosen here, before
any result is seen, and never tuned on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from cascade_ml.config_base import StrictModel
from cascade_ml.models.config import HarRollConfig, HeldOutCalendar, LgbmParams

PRICE_FEATURES = ("d", "w", "m", "rv_ratio_24_168", "semivar_asym_24h", "semivar_asym_168h",
                  "jump_24h", "dist_support_72h", "dist_support_168h", "zret_24h", "zret_168h",
                  "range_ratio_24h", "volume_z_24h", "drawdown_720h")
"""Scale-free price-only inputs of the pooled logistic cascade baseline."""


class RegimeRule(StrictModel):
    """Weekly market regimes of the evaluation, from realised outcomes (``panel/regimes.py``)."""

    crash_share: float = Field(0.8, gt=0, le=1, description="Crash week: at some hour at least "
                               "this share of the labelled symbols carry a cascade label...")
    crash_return: float = Field(-0.15, lt=0, description="... or at some hour the median "
                                "symbol's log return over the last 24 bars is at or below this.")
    trend_return: float = Field(0.10, gt=0, description="Trend week (not a crash): the median "
                                "symbol's log return over the week is beyond +- this.")
    min_symbols: int = Field(10, ge=1, description="Fewest labelled symbols for an hour's "
                             "cascade share to count.")


BASELINE_NAMES = ("har", "har_roll", "ewma", "naive", "garch", "gjr", "panel_har_roll")
"""Volatility baselines the panel evaluation can report (per symbol, then pooled)."""


class PanelConfig(HeldOutCalendar):
    """What the panel builds, fits and reports (horizon and side come from ``task``)."""

    enabled: bool = Field(False, description="Run the panel branch of the features, labels, "
                          "train, backtest and score steps for the task's symbols.")
    holdout_symbols: list[str] = Field(default_factory=list, description="Left out of every "
                                       "panel fit; scored as unseen perps.")
    market_symbols: list[str] = Field(default_factory=lambda: ["BTC", "ETH"],
                                      description="Symbols whose own state every row sees.")
    level_window: int = Field(2160, ge=24, description="Bars of the trailing variance level that "
                              "makes level features scale-free (90 days of 1h bars).")
    level_min_bars: int = Field(24, ge=2, description="Fewest bars for a level (cold start).")
    drawdown_window: int = Field(720, ge=24)
    drawdown_threshold: float = Field(0.2, gt=0, lt=1, description="A perp is in drawdown when "
                                      "below its trailing high by more than this.")
    funding_extreme_z: float = Field(2.0, gt=0)
    n_folds: int = Field(5, ge=1)
    min_train_frac: float = Field(0.4, gt=0, lt=1)
    final_frac: float = Field(0.15, ge=0, lt=1, description="Last share of the calendar kept "
                              "as the untouched final period.")
    val_frac: float = Field(0.2, gt=0, lt=1, description="Last share of each training span on "
                            "which model choice, shrinkage and combination weights are set.")
    cold_start_days: float = Field(30.0, gt=0, description="Symbols with less history are "
                                   "forecast by the panel alone.")
    blend_per_symbol: bool = Field(True, description="Each symbol gets its own HAR weight "
                                   "(shrunk toward the pooled one); False: one pooled weight.")
    blend_prior_days: float = Field(90.0, ge=0, description="Weight of the pooled loss curve in a "
                                    "symbol's HAR-weight choice, in days of its own rows.")
    blend_history: bool = Field(True, description="Choose the HAR weights on the validation slice "
                                "plus the earlier folds' out-of-sample rows (not the slice alone).")
    row_stride: int = Field(3, ge=1, description="LightGBM trains on every n-th hour of each "
                            "symbol (neighbouring H-bar labels overlap almost entirely).")
    baselines: list[str] = Field(default_factory=lambda: ["har", "ewma", "naive", "garch"],
                                 description="Volatility baselines: per symbol any of har, "
                                 "har_roll, ewma, naive, garch, gjr; pooled panel_har_roll (the "
                                 "pooled HAR with a rolling window chosen on the validation "
                                 "slice, re-estimated every har_roll.refit_every bars).")
    har_reference: Literal["har", "har_roll"] = Field(
        "har", description="The symbol's own HAR the served forecast is blended with and falls "
        "back to (blend weights, adverse baseline, the bundle's symbol HAR): har = refitted once "
        "per training span; har_roll = rolling window chosen on the training rows, re-estimated "
        "every har_roll.refit_every bars (docs/models.md).")
    har_roll: HarRollConfig = Field(default_factory=HarRollConfig,
                                    description="Settings of the har_roll baseline.")
    lgbm: LgbmParams = LgbmParams(n_estimators=300, learning_rate=0.03, num_leaves=15,
                                  min_child_samples=2000, colsample_bytree=0.7)
    cascade_lgbm: LgbmParams = LgbmParams(n_estimators=300, learning_rate=0.03, num_leaves=7,
                                          min_child_samples=2000, colsample_bytree=0.7)
    quantiles: list[float] = Field(default_factory=lambda: [0.5, 0.9, 0.95, 0.99])
    mcs_size: float = Field(0.1, gt=0, lt=1, description="Model Confidence Set size (alpha).")
    mcs_reps: int = Field(500, ge=50)
    seed: int = 42
    tune_trials: int = Field(0, ge=0, description="Optuna trials of the panel LightGBM on the "
                             "development folds (RDB storage, shared by all workers).")
    optuna_storage: str = "sqlite:///data/optuna/panel.db"
    bundle_dir: Path = Field(Path("models/panel"), description="Where the universe bundle goes.")
    report_dir: Path = Path("reports/panel")
    regimes: RegimeRule = Field(default_factory=RegimeRule, description="Calm / trend / crash "
                                "weeks of the evaluation (realised outcomes, evaluation only).")
    alert_rate: float = Field(0.05, gt=0, lt=1, description="Share of bars a bot acts on: the "
                              "cascade alert threshold is the (1 - alert_rate) quantile of the "
                              "walk-forward's out-of-sample probabilities (docs/panel.md).")

    @field_validator("baselines")
    @classmethod
    def _baselines(cls, values: list[str]) -> list[str]:
        unknown = sorted(set(values) - set(BASELINE_NAMES))
        if unknown:
            raise ValueError(f"unknown baselines {unknown}; known: {list(BASELINE_NAMES)}")
        return values
