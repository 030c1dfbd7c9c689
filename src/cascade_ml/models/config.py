"""Configuration of the `models` pipeline section."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cascade_ml.config_base import StrictModel

# Scale-free cascade inputs: the label's threshold scales with trailing volatility, so raw
# variance levels (which drift across regimes) are left out; ratios, z-scores and distances stay.
CASCADE_FEATURES = ("rv_ratio_24_168", "semivar_asym_168h", "dist_support_72h",
                    "dist_support_168h", "funding_z_72h", "funding_z_168h", "ret_168h",
                    "range_ratio_24h", "volume_z_24h")


def utc_time(value: object) -> datetime:
    """A time from a pipeline file as an aware UTC datetime: an ISO string or a YAML date /
    datetime; a date or a time without zone is read as UTC."""
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, date):
        ts = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ISO date or time") from exc
    else:
        raise ValueError(f"{value!r} is not an ISO date or time")
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def optional_utc_time(value: object) -> datetime | None:
    return None if value is None else utc_time(value)


class HoldoutPeriod(StrictModel):
    """A period inside the history held out like the final period: no choice and no fit reads
    its rows (nor the H bars around it); models fitted on the rows before it score it once."""

    name: str = Field(pattern=r"^[A-Za-z0-9_]+$", description="Its key in the evaluation.")
    start: datetime = Field(description="First bar (UTC; a date means 00:00 UTC).")
    end: datetime = Field(description="End, exclusive (UTC).")

    _utc = field_validator("start", "end", mode="before")(utc_time)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value in ("walk_forward", "final"):
            raise ValueError(f"a holdout period cannot be called {value!r}")
        return value

    @model_validator(mode="after")
    def _order(self) -> HoldoutPeriod:
        if self.end <= self.start:
            raise ValueError(f"holdout period {self.name}: end {self.end} is not after start "
                             f"{self.start}")
        return self


def check_periods(final_start: datetime | None, periods: list[HoldoutPeriod]) -> None:
    """Held-out periods: distinct names, no overlap, all before ``final_start``."""
    names = [p.name for p in periods]
    if len(set(names)) < len(names):
        raise ValueError(f"holdout period names repeat: {names}")
    ordered = sorted(periods, key=lambda p: p.start)
    for a, b in zip(ordered[:-1], ordered[1:], strict=True):
        if b.start < a.end:
            raise ValueError(f"holdout periods {a.name} and {b.name} overlap")
    for p in periods:
        if final_start is not None and p.end > final_start:
            raise ValueError(f"holdout period {p.name} ends {p.end}, after final_start "
                             f"{final_start}")


class HeldOutCalendar(StrictModel):
    """The held-out parts of a section's calendar: the final period's start and the periods
    held out like it (both untouched by every choice and fit). Shared by ``models`` and
    ``panel`` so the two sections read, validate and check them the same way."""

    final_start: datetime | None = Field(
        None, description="First bar of the untouched final period (ISO date or time, UTC if "
        "no zone); takes precedence over final_frac, so a longer history keeps the same final "
        "rows.")
    holdout_periods: list[HoldoutPeriod] = Field(
        default_factory=list, description="Periods inside the history held out like the final "
        "period (no fold, choice, tuning or fit reads them; scored once by the models fitted "
        "before each).")

    _final_start = field_validator("final_start", mode="before")(optional_utc_time)

    @model_validator(mode="after")
    def _periods(self) -> HeldOutCalendar:
        check_periods(self.final_start, self.holdout_periods)
        return self


class LgbmParams(StrictModel):
    """LightGBM settings shared by the volatility and cascade models (moderate, deterministic)."""

    n_estimators: int = Field(300, ge=1)
    learning_rate: float = Field(0.02, gt=0)
    num_leaves: int = Field(7, ge=2)
    min_child_samples: int = Field(500, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    subsample_freq: int = Field(1, ge=0)
    colsample_bytree: float = Field(0.5, gt=0, le=1)
    reg_lambda: float = Field(10.0, ge=0)


class HarRollConfig(StrictModel):
    """The strong HAR baseline ``har_roll`` (``cascade_ml.models.baselines.RollingHAR``)."""

    windows: list[int] = Field(
        default_factory=lambda: [720, 2160, 4320, 8760, 0],
        description="Candidate rolling windows in rows (30, 90, 180, 365 days of 1h bars; 0 = "
        "expanding); the one with the lowest QLIKE on the training rows' last select_frac, "
        "forecast the same rolling way, is used.")
    refit_every: int = Field(24, ge=1, description="Re-estimate every this many forecast rows, "
                             "on rows whose labels are complete by then.")
    select_frac: float = Field(0.3, gt=0, lt=1, description="Last share of the training rows "
                               "the window is chosen on.")
    min_rows: int = Field(100, ge=10, description="Fewest rows for a refit (else NaN).")

    @field_validator("windows")
    @classmethod
    def _windows(cls, values: list[int]) -> list[int]:
        if not values or any(v < 0 or 0 < v < 24 for v in values):
            raise ValueError(f"windows must be 0 (expanding) or >= 24 rows, got {values}")
        return values


class ModelConfig(HeldOutCalendar):
    """What the train step fits, how it is evaluated, tracked, promoted and exported."""

    n_folds: int = Field(5, ge=1)
    min_train_frac: float = Field(0.4, gt=0, lt=1,
                                  description="Share of the development rows in the first fold's "
                                  "training window.")
    final_frac: float = Field(0.15, ge=0, lt=1,
                              description="Last share of rows kept untouched by tuning.")
    embargo: int = Field(24, ge=0, description="Bars dropped from training after a test window.")
    min_rows: int = Field(500, ge=10, description="Fewest usable rows for one fold.")
    features: list[str] | None = Field(None, description="Feature columns; None = all numeric.")
    exclude_features: list[str] = Field(default_factory=list)
    lgbm: LgbmParams = LgbmParams()
    anchor: Literal["rv_24h", "rv_168h", "rv_720h"] | None = Field(
        "rv_168h", description="Volatility model learns log(fwd_rv) minus log of this RV scaled "
        "to H; None = plain log RV.")
    objective: Literal["gamma", "l2"] = Field(
        "l2", description="l2: log RV, smearing back (more robust out of sample on NEAR); "
        "gamma: boost fwd_rv under Gamma deviance (= 2 QLIKE).")
    min_coverage: float = Field(0.5, ge=0, le=1, description="Features known in fewer of the "
                                "training rows are ignored by the trees of that fit.")
    har_offset: bool = Field(True, description="Trees correct a HAR-RV fit (re-estimated on "
                             "each training window) instead of the anchor alone.")
    vol_shrink_frac: float = Field(
        0.2, ge=0, lt=1, description="Last share of each training window (after a gap of H rows) "
        "on which the weight of the tree correction over HAR is chosen by QLIKE (0..1 in steps "
        "of 0.05; trees and HAR refitted on the earlier rows for it); 0 = full correction.")
    cascade_features: list[str] | None = Field(
        default_factory=lambda: list(CASCADE_FEATURES),
        description="Scale-free inputs of the cascade classifier and the logistic baseline "
        "(names absent from a symbol's table are skipped); None = all model features.")
    cascade_lgbm: LgbmParams = LgbmParams(n_estimators=200, min_child_samples=200)
    quantiles: list[float] = Field(default_factory=lambda: [0.5, 0.9, 0.99])
    calibration: Literal["isotonic", "platt"] = Field(
        "platt", description="Cascade calibration map; Platt (2 parameters) is steadier than "
        "isotonic on the few events of a calibration slice.")
    calibration_frac: float = Field(0.2, gt=0, lt=1)
    alert_threshold: float = Field(0.2, gt=0, lt=1)
    garch_window: int = Field(3000, ge=200)
    har_roll: HarRollConfig = Field(default_factory=HarRollConfig, description="The strong HAR "
                                    "baseline (rolling window, frequent refits), var_har_roll.")
    ewma_lambda: float = Field(0.94, gt=0, lt=1)
    seed: int = 42
    num_threads: int = Field(2, ge=1)
    tune_trials: int = Field(0, ge=0)
    optuna_storage: str = "sqlite:///data/optuna/optuna.db"
    experiment: str = "cascade-ml"
    models_dir: Path = Path("models")
    reports_dir: Path = Path("reports")
    shap_sample: int = Field(500, ge=10)
