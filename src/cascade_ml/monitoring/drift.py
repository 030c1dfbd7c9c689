"""Feature drift against the training window: profile the window once, compare any recent rows.

``fit_profile`` records per feature its quantile bins and shares on the training rows, how many
of those rows knew it (coverage: below ``min_coverage`` the model does not use it) and its drift
limit. The limits are calibrated together on the training span itself: the PSI of the
``recent_rows`` window ending at every training bar is computed for each feature, and one
quantile level ``q`` of those PSIs (each feature's own ``q``-quantile, at least ``psi_alert``)
is chosen as low as possible while the alarm (at least ``min_drifted_inputs`` used inputs past
their limits) fires on at most ``drift_alarm_rate`` (2 %) of the training bars: the alarm's
false-alarm rate on the normal periods the model was fitted on. ``drift_table`` then needs only
the recent rows, so a service can keep the profile of its bundle and judge every new row cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cascade_ml.data.store import to_utc
from cascade_ml.errors import CascadeError
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.psi import (
    bin_shares,
    psi_from_shares,
    quantile_cuts,
    reading,
    rolling_psis,
)

UNKNOWN_FAMILY = "unknown"
DRIFT_COLUMNS = ["family", "psi", "psi_limit", "reading", "drifted", "used", "coverage",
                 "nan_share_train", "nan_share_recent", "recent_rows"]


@dataclass(frozen=True)
class FeatureProfile:
    """One feature on the training rows."""

    name: str
    family: str
    cuts: np.ndarray
    shares: np.ndarray
    coverage: float
    psi_limit: float
    envelope: float
    """The ``alarm_quantile`` of the PSIs of the training span's rolling windows (NaN with no
    full window)."""


@dataclass(frozen=True)
class TrainingProfile:
    """Every feature's training distribution, for drift and missing-input checks."""

    start: pd.Timestamp
    end: pd.Timestamp
    rows: int
    window: int
    min_coverage: float
    features: dict[str, FeatureProfile]
    alarm_quantile: float = float("nan")
    """The common quantile level of the training windows' PSIs the limits sit at."""
    alarm_rate: float = float("nan")
    """Share of the training span's rolling windows on which the drift alarm fires with these
    limits (at most ``drift_alarm_rate``; NaN when the span holds no full window)."""

    @property
    def used(self) -> list[str]:
        """Features known in at least ``min_coverage`` of the training rows: the model's inputs
        (the same coverage rule the estimators apply)."""
        return [n for n, f in self.features.items() if f.coverage >= self.min_coverage]

    @property
    def family_of(self) -> dict[str, str]:
        return {n: f.family for n, f in self.features.items()}


def training_rows(features: pd.DataFrame, training_span: tuple[object, object]) -> pd.DataFrame:
    """The feature rows of the training span (both ends included)."""
    start, end = (to_utc(t) for t in training_span)  # type: ignore[arg-type]
    if end < start:
        raise CascadeError(f"training span ends ({end}) before it starts ({start})")
    rows = features[(features.index >= start) & (features.index <= end)]
    if rows.empty:
        raise CascadeError(f"no feature rows in the training span {start} .. {end}",
                           hint=f"the table covers {features.index.min()} .. "
                                f"{features.index.max()}" if len(features) else "it is empty")
    return rows


def fit_profile(features: pd.DataFrame, training_span: tuple[object, object],
                family_of: Mapping[str, str] | None = None,
                cfg: MonitoringConfig | None = None) -> TrainingProfile:
    """Profile every column of ``features`` on the training span (see the module docstring)."""
    cfg = cfg or MonitoringConfig()
    family_of = family_of or {}
    train = training_rows(features, training_span)
    window, min_rows = cfg.recent_rows, cfg.recent_rows // 2
    bins: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    psis: dict[str, np.ndarray] = {}
    for name in train.columns:
        values = train[name].to_numpy(dtype=float)
        cuts = quantile_cuts(values, cfg.psi_bins)
        shares, finite = bin_shares(values, cuts)
        bins[name] = (cuts, shares, finite / len(values))
        psis[name] = (rolling_psis(values, cuts, shares, window, min_rows) if finite
                      else np.full(max(len(values) - window + 1, 0), np.nan))
    used = [n for n in train.columns if bins[n][2] >= cfg.min_coverage]
    level, rate = alarm_level(psis, used, cfg)
    out: dict[str, FeatureProfile] = {}
    for name, (cuts, shares, coverage) in bins.items():
        envelope = _quantile(psis[name], level)
        limit = max(cfg.psi_alert, envelope) if np.isfinite(envelope) else cfg.psi_alert
        out[name] = FeatureProfile(name, family_of.get(name, UNKNOWN_FAMILY), cuts, shares,
                                   coverage, limit, envelope)
    return TrainingProfile(train.index[0], train.index[-1], len(train), window,
                           cfg.min_coverage, out, level, rate)


def _quantile(values: np.ndarray, level: float) -> float:
    """The ``level``-quantile of the finite ``values`` (the higher of two neighbours); NaN
    when there is none."""
    return _sorted_quantile(np.sort(values[np.isfinite(values)]), level)


def _sorted_quantile(ordered: np.ndarray, level: float) -> float:
    if not len(ordered) or not np.isfinite(level):
        return float("nan")
    return float(ordered[int(np.ceil(level * (len(ordered) - 1)))])


def alarm_level(psis: Mapping[str, np.ndarray], used: list[str], cfg: MonitoringConfig,
                steps: int = 30) -> tuple[float, float]:
    """(the lowest common quantile level at which the drift alarm fires on at most
    ``drift_alarm_rate`` of the training windows, the share it fires on there); (NaN, NaN)
    when the span holds no full window. The alarm of a window: at least
    ``min_drifted_inputs`` used features above their limits (their own ``level``-quantile of
    the windows' PSIs, at least ``psi_alert``). The share falls as the level rises, so a
    bisection finds it; at level 1 no training window is above every limit."""
    if not used or not len(psis[used[0]]):
        return float("nan"), float("nan")
    matrix = np.column_stack([psis[n] for n in used])
    ordered = [np.sort(col[np.isfinite(col)]) for col in matrix.T]

    def share(level: float) -> float:
        limits = np.array([_sorted_quantile(o, level) for o in ordered])
        limits = np.where(np.isfinite(limits), np.maximum(limits, cfg.psi_alert),
                          cfg.psi_alert)
        with np.errstate(invalid="ignore"):
            over = (matrix > limits).sum(axis=1)
        return float(np.mean(over >= cfg.min_drifted_inputs))

    lo, hi = 0.0, 1.0
    if share(lo) <= cfg.drift_alarm_rate:
        return lo, share(lo)
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if share(mid) <= cfg.drift_alarm_rate else (mid, hi)
    return hi, share(hi)


def drift_table(profile: TrainingProfile, recent: pd.DataFrame,
                cfg: MonitoringConfig | None = None) -> pd.DataFrame:
    """Per profiled feature: PSI of ``recent`` against training, its limit and reading, whether
    it drifted, NaN shares. A feature with fewer than half a window of finite recent values gets
    PSI NaN (too few to judge; its absence is the missing-input check's job). A profiled feature
    absent from ``recent`` counts as all NaN."""
    cfg = cfg or MonitoringConfig()
    rows = []
    for name, prof in profile.features.items():
        values = (recent[name].to_numpy(dtype=float) if name in recent
                  else np.full(len(recent), np.nan))
        shares, finite = bin_shares(values, prof.cuts)
        enough = finite >= max(len(values) // 2, 1) and prof.coverage > 0
        value = float(psi_from_shares(prof.shares, shares)) if enough else float("nan")
        used = prof.coverage >= profile.min_coverage
        rows.append({"family": prof.family, "psi": value, "psi_limit": prof.psi_limit,
                     "reading": reading(value, cfg.psi_watch, cfg.psi_alert),
                     "drifted": bool(np.isfinite(value) and value > prof.psi_limit),
                     "used": used, "coverage": prof.coverage,
                     "nan_share_train": 1.0 - prof.coverage,
                     "nan_share_recent": 1.0 - finite / len(values) if len(values) else np.nan,
                     "recent_rows": len(values)})
    table = pd.DataFrame(rows, index=pd.Index(list(profile.features), name="feature"),
                         columns=DRIFT_COLUMNS)
    return table


def feature_drift(features: pd.DataFrame, training_span: tuple[object, object],
                  recent_rows: int | None = None, family_of: Mapping[str, str] | None = None,
                  cfg: MonitoringConfig | None = None) -> pd.DataFrame:
    """Per-feature PSI of the last ``recent_rows`` rows of ``features`` against its training
    span (``fit_profile`` then ``drift_table``)."""
    cfg = cfg or MonitoringConfig()
    if recent_rows is not None:
        cfg = MonitoringConfig.model_validate({**cfg.model_dump(), "recent_rows": recent_rows})
    profile = fit_profile(features, training_span, family_of, cfg)
    return drift_table(profile, features.tail(cfg.recent_rows), cfg)
