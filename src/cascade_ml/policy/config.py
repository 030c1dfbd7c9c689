"""Configuration of the `policy` pipeline section: hedge band, leverage limits, risk budget, fees.

Defaults follow the product brief (30-70% hedge, at most 5x, 2% of equity at risk, rebalance only
when the benefit beats fees and spread) and the domain references in docs/policy.md (NEAR margin
tiers, fees).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from cascade_ml.config_base import StrictModel

HARD_LEVERAGE_LIMIT = 20.0


class MarginTier(StrictModel):
    """One maintenance-margin bracket: applies to position notional below ``max_notional``."""

    max_notional: float = Field(gt=0, description="Upper notional bound (quote) of the bracket.")
    mmr: float = Field(gt=0, lt=1, description="Maintenance margin rate.")
    max_leverage: float = Field(gt=0, description="Highest leverage the exchange allows here.")
    cum: float = Field(0.0, ge=0, description="Maintenance amount (Binance 'cum'), quote.")


def _tiers(rows: list[tuple[float, float, float, float]]) -> list[MarginTier]:
    return [MarginTier(max_notional=n, mmr=m, max_leverage=lv, cum=c) for n, m, lv, c in rows]


# Binance USD-M NEARUSDT brackets (snapshot 2024-10, REFERENCES.md); the last one is open-ended.
NEAR_TIERS = _tiers([
    (10_000, 0.01, 75, 0), (100_000, 0.015, 50, 50), (500_000, 0.02, 25, 550),
    (1_000_000, 0.025, 20, 3_050), (math.inf, 0.05, 10, 28_050),
])
# Conservative brackets for a symbol without its own: higher MMR than any major perp's first tiers.
GENERIC_TIERS = _tiers([
    (50_000, 0.02, 20, 0), (250_000, 0.05, 10, 1_500), (1_000_000, 0.10, 5, 14_000),
    (math.inf, 0.125, 4, 39_000),
])


class PolicyConfig(StrictModel):
    """Every number the policy uses; ``decide`` has no other constants."""

    # hedge ratio
    hedge_rule: Literal["objective", "score"] = Field(
        "objective", description="'objective': the hedge that maximises the mean-variance "
        "utility of the hedged position with a cascade jump term, net of expected costs "
        "(docs/policy.md); 'score': the older risk score mapped onto the band.")
    hedge_min: float = Field(0.30, ge=0, le=1, description="Hedge ratio in calm markets.")
    hedge_max: float = Field(0.70, ge=0, le=1, description="Hedge ratio at the highest risk.")
    vol_reference_annual: float = Field(0.80, gt=0, description="'Normal' annualised vol (the "
                                        "reference in 'fixed' mode, the fallback otherwise).")
    vol_reference: Literal["fixed", "trailing"] = Field(
        "trailing", description="'fixed': every perp is judged against vol_reference_annual; "
        "'trailing': against its own trailing realised vol (PolicyInputs.trailing_vol_annual), "
        "so a high-vol alt is not at the top of the band all the time.")
    vol_reference_window: int = Field(720, ge=24, description="Bars of the trailing realised "
                                      "vol used as the reference in 'trailing' mode.")
    vol_ratio_low: float = Field(0.5, gt=0, description="Vol/reference where vol risk is 0.")
    vol_ratio_high: float = Field(2.0, gt=0, description="Vol/reference where vol risk is 1.")
    cascade_prob_low: float = Field(0.02, ge=0, le=1, description="Cascade prob with risk 0.")
    cascade_prob_high: float = Field(0.30, ge=0, le=1, description="Cascade prob with risk 1.")
    vol_weight: float = Field(0.5, ge=0, le=1, description="Weight of vol in the risk score.")
    trigger_bump: float = Field(0.05, ge=0, le=1, description="Hedge added per fired trigger.")
    trigger_bump_max: float = Field(0.10, ge=0, le=1, description="Cap on the trigger bump.")
    # the objective (hedge_rule 'objective'): returns in units of the perp's reference vol
    # risk_aversion, holding_horizons, forecast_halflife_bars and stop_reset_bars: chosen
    # together on the development folds of the 21 perps of pipelines/universe.yaml (NEAR
    # included; docs/policy.md, "Choice on the development folds")
    risk_aversion: float = Field(0.04, gt=0, description="gamma of the mean-variance utility "
                                 "of the hedged position's H-bar return in reference-vol units.")
    expected_sharpe: float = Field(1.0, ge=0, le=5, description="Annual Sharpe ratio the bot "
                                   "expects of its position: the drift a hedge gives up.")
    jump_sigmas: float = Field(3.0, ge=0, description="Size of a cascade's jump against the "
                               "position, in forecast sigmas over H.")
    cascade_prob_base: float = Field(0.04, ge=0, lt=1, description="Cascade probability "
                                     "already priced into the drift (the labels' base rate); "
                                     "only the excess lowers the expected return.")
    holding_horizons: float = Field(1.0, gt=0, description="Horizons a hedge change is "
                                    "expected to be held: its round-trip trading cost (the "
                                    "move and the move back) is spread over them.")
    forecast_halflife_bars: float = Field(
        72.0, ge=0, description="Half-life (bars) of the EWMA of the log-vol forecast the "
        "policy reads (rules.smooth_log_vol): 0 reads each bar's forecast as it is. The "
        "backtest, the batch scorer, the service and the live loop smooth the stored forecasts "
        "(forecasting.smoothing); decide itself reads the forecast it is given, so a caller of "
        "decide gets the same policy only if it feeds the same smoothed forecast.")
    objective_weight: float = Field(
        1.0, ge=0, le=1, description="w: the objective's hedge shrunk toward the static ratio, "
        "h = static + w (h_objective - static) (rules.shrink_to_static): 1 is the objective "
        "alone, 0 the static hedge; for a forecast whose trades cost more than its information "
        "is worth. The objective rule only.")
    static_hedge: float | None = Field(
        None, ge=0, le=1, description="The fixed hedge ratio the objective's hedge is shrunk "
        "toward (known in advance, inside the band); None: the band's midpoint.")
    hedge_funding_8h: float = Field(-0.0001, ge=-0.01, le=0.01, description="Expected "
                                    "funding the hedge leg pays per 8 h, per unit of hedge "
                                    "notional (negative: it earns; a long's short hedge earns "
                                    "the usual positive rate, 0.01 % per 8 h).")
    # hedge instrument
    min_cross_hedge_r2: float = Field(0.80, ge=0, le=1,
                                      description="Least R^2 for a BTC/ETH proxy hedge.")
    proxy_window: int = Field(168, ge=2, description="Window (bars) of the beta/correlation "
                              "features a proxy hedge is judged by; one of features.corr_windows.")
    same_perp_effectiveness: float = Field(
        1.0, ge=0, le=1, description="Hedge effectiveness of the same perp (1 in hedge mode; "
        "lower it when the account cannot hold both sides).")
    # leverage
    max_leverage: float = Field(5.0, gt=0, description="Configured leverage ceiling (the "
                                "objective rule's cap in calm markets).")
    min_leverage: float = Field(3.0, gt=0, description="The objective rule's cap at the top "
                                "of the hedge band (the ceiling when that is lower); only the "
                                "liquidation distance and the exchange tier may set a lower "
                                "cap.")
    allow_above_20x: bool = Field(False, description="Explicit override of the 20x hard limit.")
    target_vol_annual: float = Field(3.0, gt=0,
                                     description="Vol target of the margin (leverage x vol).")
    k_sigma_base: float = Field(3.0, gt=0, description="Sigmas to liquidation in calm markets.")
    k_sigma_cascade: float = Field(5.0, gt=0, description="Sigmas to liquidation at top risk.")
    fail_safe_leverage: float = Field(1.0, gt=0, description="Leverage cap when failing safe.")
    # size
    max_risk_fraction: float = Field(0.02, gt=0, le=1,
                                     description="Equity share a k-sigma move may cost.")
    size_k_sigma: float = Field(3.0, gt=0, description="The k of that k-sigma move (a tail "
                                "quantile, in reference sigmas over H): the adverse move the "
                                "size cap and the stop are built on.")
    stop_reset_bars: int = Field(
        72, ge=0, description="Bars after which the protective stop is re-anchored at the "
        "close (the 2 % rule measured from there, on the equity then): the stop bounds the "
        "loss over each holding window instead of the loss since the first entry. 0: from "
        "the entry price, re-set only by a trade.")
    stop_liquidation_buffer: float = Field(
        0.8, gt=0, lt=1, description="The protective stop sits at most this share of the way "
        "from entry to liquidation, so it fires before the exchange liquidates.")
    # costs and no-trade band
    taker_fee: float = Field(0.0005, ge=0, lt=0.1)
    maker_fee: float = Field(0.0002, ge=0, lt=0.1)
    use_maker: bool = Field(False, description="Price rebalances at the maker fee.")
    spread: float = Field(0.0002, ge=0, lt=0.1, description="Full bid-ask spread (fraction).")
    no_trade_band: float = Field(0.05, ge=0, le=1, description="Least hedge-ratio change.")
    benefit_cost_multiple: float = Field(2.0, ge=0,
                                         description="Benefit must beat costs this many times.")
    tail_weight_floor: float = Field(0.05, ge=0, le=1,
                                     description="Least weight of the tail loss in the benefit.")
    # fail-safe
    max_data_age_s: float = Field(
        7200.0, gt=0, description="Freshness limit (seconds since a forecast's bar closed): "
        "older forecasts are served as stale and decisions fall back to the fail-safe.")
    max_sigma_h: float = Field(1.0, gt=0, description="Largest sane forecast vol over H.")
    # margin tiers
    tiers: dict[str, list[MarginTier]] = Field(default_factory=lambda: {"NEAR": NEAR_TIERS})
    default_tiers: list[MarginTier] = Field(default_factory=lambda: list(GENERIC_TIERS))

    @model_validator(mode="after")
    def _check(self) -> PolicyConfig:
        if self.hedge_min > self.hedge_max:
            raise ValueError("hedge_min must be <= hedge_max")
        if self.static_hedge is not None and not (
                self.hedge_min <= self.static_hedge <= self.hedge_max):
            raise ValueError(f"static_hedge {self.static_hedge:g} must lie inside the hedge "
                             f"band [{self.hedge_min:g}, {self.hedge_max:g}]")
        if self.objective_weight < 1 and self.hedge_rule != "objective":
            raise ValueError("objective_weight < 1 shrinks the objective rule's hedge: it "
                             "needs hedge_rule 'objective'")
        if self.vol_ratio_low >= self.vol_ratio_high:
            raise ValueError("vol_ratio_low must be < vol_ratio_high")
        if self.cascade_prob_low >= self.cascade_prob_high:
            raise ValueError("cascade_prob_low must be < cascade_prob_high")
        if self.k_sigma_cascade < self.k_sigma_base:
            raise ValueError("k_sigma_cascade must be >= k_sigma_base")
        for name, tiers in [*self.tiers.items(), ("default_tiers", self.default_tiers)]:
            bounds = [t.max_notional for t in tiers]
            if not tiers or bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
                raise ValueError(f"margin tiers for {name} must be non-empty and ascending")
        return self

    @property
    def leverage_ceiling(self) -> float:
        """The configured ceiling, held to 20x unless ``allow_above_20x`` says otherwise."""
        if self.allow_above_20x:
            return self.max_leverage
        return min(self.max_leverage, HARD_LEVERAGE_LIMIT)

    @property
    def static_ratio(self) -> float:
        """The static hedge the objective's hedge is shrunk toward: ``static_hedge``, or the
        band's midpoint."""
        if self.static_hedge is not None:
            return self.static_hedge
        return (self.hedge_min + self.hedge_max) / 2

    @property
    def trade_cost(self) -> float:
        """Cost of trading one unit of notional: fee plus half the spread."""
        return (self.maker_fee if self.use_maker else self.taker_fee) + self.spread / 2

    def tiers_for(self, symbol: str) -> list[MarginTier]:
        """The symbol's margin tiers, or the conservative generic ones."""
        return self.tiers.get(symbol.upper(), self.default_tiers)
