"""Configuration of the `models` pipeline section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from cascade_ml.config_base import StrictModel

# Scale-free cascade inputs: the label's threshold scales with trailing volatility, so raw
# variance levels (which drift across regimes) are left out; ratios, z-scores and distances stay.
CASCADE_FEATURES = ("rv_ratio_24_168", "semivar_asym_168h", "dist_support_72h",
                    "dist_support_168h", "funding_z_72h", "funding_z_168h", "ret_168h",
                    "range_ratio_24h", "volume_z_24h")


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


class ModelConfig(StrictModel):
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
