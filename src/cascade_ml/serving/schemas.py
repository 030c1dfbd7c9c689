"""Request and response bodies of the service (pydantic, so bad input is a 422 naming the field)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cascade_ml.contracts.task import Side


class _Strict(BaseModel):
    # NaN/inf are not numbers a bot should send; unknown keys are typos.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class MarketUpdate(_Strict):
    """Fresher market values the bot has seen since the last scored bar (all optional)."""

    price: float | None = Field(None, gt=0, description="Fresher mark price (overrides).")
    funding_divergence: bool | None = Field(None, description="Funding trigger seen by the bot.")
    volume_breakdown: bool | None = Field(None, description="Volume trigger seen by the bot.")
    observed_at: datetime | None = Field(None, description="When these values were observed.")


class DecisionRequest(_Strict):
    """The bot's position; the answer is how much of it to hedge and how much leverage to allow."""

    symbol: str = Field(..., pattern=r"^[A-Za-z0-9]{1,20}$", examples=["NEAR"])
    side: Side = "long"
    notional: float = Field(..., gt=0, description="Position notional in quote currency (USDT).")
    mark_price: float = Field(..., gt=0, description="Current mark price.")
    leverage: float = Field(..., gt=0, le=125, description="Current leverage.")
    entry_price: float | None = Field(None, gt=0, description="Defaults to the mark price.")
    portfolio_value: float | None = Field(
        None, gt=0, description="Account equity, quote ccy; defaults to notional / leverage.")
    hedge_ratio: float = Field(0.0, ge=0, le=1, description="Hedge ratio now in place.")
    market: MarketUpdate | None = None
    as_of: AwareDatetime | None = Field(
        None, description="Answer as of this time (ISO-8601 with a timezone): from the newest "
        "forecast available then, aged at this time (docs/serving.md). Absent: now.")


class ForecastOut(BaseModel):
    symbol: str
    timestamp: datetime = Field(description="Open time of the feature bar the forecast is for.")
    available_at: datetime = Field(description="Close of that bar: when the forecast could exist.")
    age_seconds: float
    stale: bool
    max_age_seconds: float
    model_version: str
    source: Literal["scores", "live", "predictions"] = Field(
        description="scores (batch scoring), live (scored by the service on the newest feature "
        "row) or predictions (the walk-forward's out-of-sample forecast; as_of only).")
    var_forecast: float | None = None
    vol_forecast: float | None = None
    cascade_prob: float | None = None
    var_q50: float | None = None
    var_q90: float | None = None
    var_q99: float | None = None
    as_of: datetime | None = Field(None, description="The time asked for; ages are measured "
                                   "at it. Null: now.")


class DecisionOut(BaseModel):
    symbol: str
    hedge_ratio: float
    current_hedge_ratio: float
    instrument: str = Field(description="'same_perp', 'BTC' or 'ETH'.")
    hedge_notional: float
    leverage_cap: float
    size_cap: float = Field(description="Largest position notional the risk budget allows.")
    liquidation_price: float | None = None
    risk_score: float | None = None
    action: str
    reasons: list[str]
    fail_safe: bool
    forecaster: str = Field("model", description="Whose forecast the policy read: 'model' (the "
                            "served model, model_version), or 'HAR + climatology' (the baseline "
                            "forecaster, when the monitor found the model's inputs drifted and "
                            "nothing else wrong; reasons[0] says why).")
    model_version: str | None
    forecast_timestamp: datetime | None
    forecast_age_seconds: float | None
    stale: bool
    as_of: datetime | None = Field(None, description="The time asked for; null: now.")


class ModelOut(BaseModel):
    symbol: str
    version: str | None
    horizon: int | None = None
    training_span: object | None = None
    metrics: dict | None = None
    n_features: int | None = None
    path: str | None = None
    loaded_at: datetime | None = None
    load_error: str | None = Field(None, description="Last failed reload; the old model is kept.")
    monitor: dict | None = Field(None, description="The monitor's latest stored report "
                                 "(MonitorReport.to_dict()) plus `bar` (the feature bar it "
                                 "judged) and `in_force` (it judged the served forecast's bar or "
                                 "a newer one, so its degrade_reasons make decisions fail safe).")
    monitor_error: str | None = Field(None, description="Why the latest report file could not "
                                      "be read; the previous report is kept.")


class ModelsOut(BaseModel):
    models: list[ModelOut]


class ErrorOut(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where, e.g. ['body', 'notional'].")
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """A 422: ``detail`` names each bad field in one line; ``errors`` lists them."""

    detail: str
    errors: list[FieldError]
