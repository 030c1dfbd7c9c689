"""Configuration of the `monitoring` section: windows, thresholds and the age each source may
reach before the decision fails safe."""

from __future__ import annotations

import pandas as pd
from pydantic import Field, field_validator

from cascade_ml.config_base import StrictModel

DEFAULT_MAX_AGE = {"funding": "9h", "open_interest": "9h", "liquidations": "2d",
                   "sentiment": "2d", "depth": "2h", "positioning": "2h"}
"""Age limits as durations: Binance funding settles every 8 h, daily data (Fear & Greed,
liquidation totals) is complete one day after its stamp, plus slack for publication."""
DEFAULT_MAX_AGE_BARS = {"ohlcv": 2.0}
"""Age limits in bars of the partition's own interval (two missed candles)."""


class MonitoringConfig(StrictModel):
    """How drift, missing inputs, source ages and forecast quality are judged.

    A feature has *drifted* when the PSI of its last ``recent_rows`` rows against the training
    window exceeds both ``psi_alert`` and its limit calibrated on the training span: each
    feature's limit is the same quantile of the PSIs of the windows ending at every training bar,
    the lowest quantile at which the alarm fires on at most ``drift_alarm_rate`` of those bars
    (``monitoring.drift``). Level features such as ``rv_720h`` move slowly, so a week of them is
    "shifted" by the absolute reading most of the time; only a shift the training span rarely
    showed should raise the alarm.
    """

    recent_rows: int = Field(168, ge=10, description="Newest feature rows compared with the "
                             "training window (168 1h bars = one week).")
    psi_bins: int = Field(10, ge=2, le=100, description="Quantile bins of the training values.")
    psi_watch: float = Field(0.1, gt=0, description="PSI reading 'watch' from here.")
    psi_alert: float = Field(0.25, gt=0, description="PSI reading 'shifted' from here; the "
                             "lowest PSI that can count as drift.")
    drift_alarm_rate: float = Field(
        0.02, gt=0, le=1, description="The drift alarm's false-alarm rate: the largest share of "
        "the training span's bars on which it may fire (the limits are set to meet it).")
    degrade_on_drift: bool = Field(True, description="Drifted inputs the model uses degrade "
                                   "the decision (the loop falls back to the baseline "
                                   "forecaster, the service fails safe).")
    min_drifted_inputs: int = Field(1, ge=1, description="How many used inputs must have "
                                    "drifted at once to raise the drift alarm.")
    min_coverage: float = Field(0.5, ge=0, le=1, description="Features known in fewer of the "
                                "training rows are not used by the model (models.min_coverage); "
                                "their drift and absence are reported but never degrade.")
    missing_rows: int = Field(1, ge=1, description="Newest rows whose missing inputs are judged "
                              "(1: the row the current decision is made from).")
    max_missing_share: dict[str, float] = Field(
        default_factory=dict, description="Per feature family: the largest share of the inputs "
        "the model uses that may be NaN before the decision fails safe.")
    default_max_missing_share: float = Field(0.5, ge=0, le=1)
    max_age: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_MAX_AGE),
                                    description="Per dataset: age limit as a duration.")
    max_age_bars: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_MAX_AGE_BARS),
        description="Per dataset: age limit in intervals of the partition (wins over max_age).")
    qlike_window: int = Field(720, ge=1, description="Realised rows in the rolling QLIKE.")
    calibration_bins: int = Field(10, ge=2, le=50)
    calibration_window: int = Field(2160, ge=10, description="Realised rows in the calibration "
                                    "table (2160 1h rows = 90 days: cascades are rare).")

    @field_validator("max_missing_share")
    @classmethod
    def _shares(cls, values: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in values.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"missing shares must be in [0, 1], got {bad}")
        return values

    @field_validator("max_age")
    @classmethod
    def _durations(cls, values: dict[str, str]) -> dict[str, str]:
        for dataset, text in values.items():
            try:
                age = pd.Timedelta(text)
            except ValueError as exc:
                raise ValueError(f"max_age of {dataset}: not a duration {text!r} (e.g. '9h', "
                                 "'2d')") from exc
            if age <= pd.Timedelta(0):
                raise ValueError(f"max_age of {dataset} must be positive, got {text!r}")
        return values

    @field_validator("max_age_bars")
    @classmethod
    def _bars(cls, values: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in values.items() if v <= 0}
        if bad:
            raise ValueError(f"max_age_bars must be positive, got {bad}")
        return values

    def missing_limit(self, family: str) -> float:
        """The largest tolerated share of missing used inputs in ``family``."""
        return self.max_missing_share.get(family, self.default_max_missing_share)

    def age_limit(self, dataset: str, interval: str) -> pd.Timedelta | None:
        """How old ``dataset``'s newest record may be (None: not judged)."""
        if dataset in self.max_age_bars:
            return pd.Timedelta(interval) * self.max_age_bars[dataset]
        if dataset in self.max_age:
            return pd.Timedelta(self.max_age[dataset])
        return None
