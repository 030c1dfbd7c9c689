"""What the policy reads and returns (pydantic, so bad requests fail with the field's name).

Structural errors (negative notional, leverage <= 0, unknown side, no forecast block) are
validation errors. Forecast *values* are accepted as given (NaN, negative, null) because judging
them is the policy's job: out-of-bounds values make it fail safe with a reason instead of failing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cascade_ml.contracts.task import Side


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Forecast(_Model):
    """The model's view of the next H hours."""

    sigma_h: float | None = Field(description="Forecast vol over the horizon (fraction).")
    horizon_hours: float = Field(24.0, gt=0)
    cascade_prob: float | None = Field(description="Probability of a cascade within H.")
    vol_q90: float | None = Field(None, description="90% quantile of vol over H (optional).")
    vol_q99: float | None = Field(None, description="99% quantile of vol over H (optional).")


class Triggers(_Model):
    """Rule triggers from the features (None when their input data is missing)."""

    funding_divergence: bool | None = None
    sentiment_spike: bool | None = None
    volume_breakdown: bool | None = None

    def fired(self) -> list[str]:
        return [name for name, value in self.model_dump().items() if value]


class CrossAsset(_Model):
    """Beta, correlation and hedge effectiveness (R^2) of the symbol against BTC and ETH."""

    beta_btc: float | None = None
    corr_btc: float | None = None
    r2_btc: float | None = Field(None, ge=0, le=1, description="Defaults to corr_btc^2.")
    beta_eth: float | None = None
    corr_eth: float | None = None
    r2_eth: float | None = Field(None, ge=0, le=1, description="Defaults to corr_eth^2.")

    def proxy(self, name: str) -> tuple[float | None, float | None]:
        """(beta, R^2) for 'btc' or 'eth', None where unknown or not finite."""
        beta = getattr(self, f"beta_{name}")
        r2 = getattr(self, f"r2_{name}")
        corr = getattr(self, f"corr_{name}")
        if r2 is None and corr is not None:
            r2 = corr * corr
        ok = beta is not None and r2 is not None and beta == beta and r2 == r2  # NaN check
        return (beta, r2) if ok else (None, None)


class Position(_Model):
    """The bot's current position in the symbol."""

    side: Side
    notional: float = Field(gt=0, description="Position notional in quote currency.")
    entry_price: float = Field(gt=0)
    mark_price: float = Field(gt=0)
    leverage: float = Field(gt=0)
    margin_mode: Literal["isolated", "cross"] = "isolated"
    hedge_ratio: float = Field(0.0, ge=0, le=1, description="Share of notional hedged now.")


class Freshness(_Model):
    """Age of the forecast and of the features it was made from."""

    forecast_age_s: float | None = Field(None, ge=0)
    features_age_s: float | None = Field(None, ge=0)
    max_age_s: float | None = Field(None, gt=0, description="Defaults to the policy config's.")


class PolicyInputs(_Model):
    """Everything ``decide`` needs for one decision."""

    symbol: str = "NEAR"
    forecast: Forecast
    model_available: bool = True
    triggers: Triggers = Triggers()
    cross_asset: CrossAsset = CrossAsset()
    position: Position
    equity: float = Field(gt=0, description="Account equity in quote currency.")
    freshness: Freshness = Freshness()
    trailing_vol_annual: float | None = Field(
        None, description="The symbol's own trailing realised vol, annualised: the vol "
        "reference when policy.vol_reference is 'trailing' (the fixed reference when absent).")


class Decision(_Model):
    """The policy's answer, with a plain-language reason for every number."""

    symbol: str
    action: Literal["rebalance", "hold"]
    hedge_ratio: float
    current_hedge_ratio: float
    hedge_instrument: str = Field(description="'same_perp', 'BTC' or 'ETH'.")
    hedge_beta: float
    hedge_effectiveness: float
    hedge_notional: float = Field(description="Notional of the hedge instrument to hold.")
    leverage_cap: float
    leverage_caps: dict[str, float]
    size_cap_notional: float
    required_liquidation_distance: float | None
    liquidation_price: float | None = Field(description="At the current leverage (isolated).")
    liquidation_distance: float | None
    risk_score: float | None
    fail_safe: bool
    reasons: list[str]
    max_loss: float | None = Field(
        None, description="Most the position may lose at its protective stop (quote): "
        "max_risk_fraction x equity, fixed before entering.")
    stop_price: float | None = Field(
        None, description="Protective stop, measured from the entry price: close the position "
        "(both legs) there. None when even a move to zero stays within max_loss.")
    stop_distance: float | None = Field(None, description="Stop distance from entry (fraction).")
    loss_per_notional: float | None = Field(
        None, description="What a unit of notional loses on the tail move the 2 % rule is "
        "sized on (unhedged): the size cap's risk budget is max_risk_fraction x equity / this.")
    binding: dict[str, str] = Field(
        default_factory=dict, description="The limit that bound each answer: 'hedge', "
        "'leverage', 'size', 'stop' and 'action' -> the name of the binding limit or reason.")
