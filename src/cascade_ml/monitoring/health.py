"""One symbol's health at ``now`` and the reasons, if any, its decision must fail safe.

``health`` is pure: it takes the feature table, the training profile, the ages of the symbol's
sources and (optionally) the realised forecast quality, and returns a :class:`MonitorReport`.
Reasons that degrade the decision (``degrade_reasons``):

- no feature row is available at ``now``;
- at least ``min_drifted_inputs`` inputs the model uses have drifted beyond their limits
  (``MonitoringConfig`` explains the limit);
- a family has more of its used inputs missing in the newest row than ``max_missing_share``;
- every source of a dataset for a symbol is older than its age limit, and the dataset feeds a
  family holding inputs the model uses.

Drift is graded, not a breaker: its reasons are also listed apart (``drift_reasons``), and the
live loop and the service answer them with the baseline forecaster (HAR and climatology,
``monitoring.fallback``) instead of the fail-safe; ``fail_safe_reasons`` are the others (no
row, missing inputs, stale sources), which always fail safe.

Forecast quality (QLIKE vs HAR, calibration) is reported and exported but never degrades a
decision by itself: it is measured a horizon late and over weeks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.drift import TrainingProfile, drift_table
from cascade_ml.monitoring.missing import missing_features, missing_share_by_family
from cascade_ml.monitoring.quality import ForecastQuality
from cascade_ml.monitoring.staleness import DATASET_FAMILIES, judge_sources, stale_groups


@dataclass(frozen=True)
class MonitorReport:
    """What the monitor found for one symbol; ``degraded`` when ``degrade_reasons`` is set."""

    symbol: str
    now: pd.Timestamp
    last_row: pd.Timestamp | None
    drift: pd.DataFrame
    """Per feature: family, psi, psi_limit, reading, drifted, used, coverage, NaN shares."""
    drifted: list[str]
    """Used features whose PSI is past their limit."""
    missing_share: dict[str, float]
    """Per family: share of all its inputs NaN in the newest row(s)."""
    missing_share_used: dict[str, float]
    """Per family: share of the inputs the model uses NaN in the newest row(s)."""
    missing_families: list[str]
    sources: pd.DataFrame
    """The symbol's sources: dataset, venue, symbol, interval, last, age_s, max_age_s, stale."""
    stale_sources: list[str]
    """Stale (dataset/venue/symbol) sources, whether or not they degrade the decision."""
    quality: ForecastQuality | None = None
    degrade_reasons: list[str] = field(default_factory=list)
    drift_reasons: list[str] = field(default_factory=list)
    """The drift alarm's part of ``degrade_reasons`` (the loop's baseline fallback)."""

    @property
    def degraded(self) -> bool:
        return bool(self.degrade_reasons)

    @property
    def fail_safe_reasons(self) -> list[str]:
        """``degrade_reasons`` that are not drift: missing or stale inputs, no row."""
        return [r for r in self.degrade_reasons if r not in self.drift_reasons]

    def to_dict(self) -> dict:
        """JSON-ready summary (for ``/v1/models``): no per-feature tables beyond the drifted."""
        drifted = {n: {"psi": _num(self.drift.at[n, "psi"]),
                       "limit": _num(self.drift.at[n, "psi_limit"])} for n in self.drifted}
        out: dict = {
            "symbol": self.symbol, "now": self.now.isoformat(),
            "last_row": None if self.last_row is None else self.last_row.isoformat(),
            "degraded": self.degraded, "degrade_reasons": list(self.degrade_reasons),
            "drifted_features": drifted,
            "shifted_features": int((self.drift["reading"] == "shifted").sum()),
            "missing_share": {k: _num(v) for k, v in self.missing_share.items()},
            "missing_share_used": {k: _num(v) for k, v in self.missing_share_used.items()},
            "missing_families": list(self.missing_families),
            "stale_sources": list(self.stale_sources),
            "source_age_s": {f"{r.dataset}/{r.venue}/{r.symbol}": _num(r.age_s)
                             for r in self.sources.itertuples(index=False)},
        }
        q = self.quality
        if q is not None:
            out["qlike"] = None if q.qlike is None else {
                "model": _num(q.qlike.model), "har": _num(q.qlike.har),
                "ratio_vs_har": _num(q.qlike.ratio), "rows": q.qlike.rows}
            out["calibration"] = {"ece": _num(q.ece), "rows": q.cascade_rows,
                                  "event_rate": _num(q.cascade_rate),
                                  "mean_prob": _num(q.mean_prob)}
        return out


def _num(value: object) -> float | None:
    out = float(value)  # type: ignore[arg-type]
    return out if np.isfinite(out) else None


def _age(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "no record"
    hours = seconds / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def health(symbol: str, features: pd.DataFrame, profile: TrainingProfile,
           sources: pd.DataFrame, cfg: MonitoringConfig, now: pd.Timestamp, *,
           bar: pd.Timedelta = pd.Timedelta("1h"),
           quality: ForecastQuality | None = None) -> MonitorReport:
    """Judge ``symbol`` at ``now`` (see the module docstring).

    ``features``: the symbol's feature table (rows after ``now`` minus one bar are ignored: row
    ``t`` is known at its close). ``sources``: :func:`~cascade_ml.monitoring.staleness.
    source_staleness` rows of the partitions the symbol's features read.
    """
    visible = features[features.index + bar <= now]
    recent = visible.tail(cfg.recent_rows)
    newest = visible.tail(cfg.missing_rows)
    reasons: list[str] = []
    if visible.empty:
        reasons.append(f"no feature row of {symbol} is available at {now}")

    drift = drift_table(profile, recent, cfg)
    drifted = list(drift.index[drift["drifted"] & drift["used"]])
    drift_reasons = []
    if cfg.degrade_on_drift and len(drifted) >= cfg.min_drifted_inputs:
        for name in drifted:
            row = drift.loc[name]
            drift_reasons.append(f"input {name} ({row.family}) has drifted: PSI {row.psi:.2f} "
                                 f"over the last {row.recent_rows} rows vs the training window, "
                                 f"above its limit {row.psi_limit:.2f}")
    reasons += drift_reasons

    family_of = profile.family_of
    used = profile.used
    share_all = missing_share_by_family(newest, family_of)
    share_used = missing_share_by_family(newest, family_of, only=used)
    missing_families = []
    if not visible.empty:
        last = newest.iloc[-1]
        for family, share in share_used.items():
            limit = cfg.missing_limit(str(family))
            if share > limit:
                missing_families.append(str(family))
                names = [n for n in used if family_of[n] == family]
                gone = missing_features(last, names)
                reasons.append(f"{len(gone)} of the {len(names)} {family} inputs the model uses "
                               f"are missing ({', '.join(gone[:6])}"
                               f"{', ...' if len(gone) > 6 else ''}); at most {limit:.0%} may be")

    judged = judge_sources(sources, cfg)
    stale_names = [f"{r.dataset}/{r.venue}/{r.symbol}/{r.interval}"
                   for r in judged[judged["stale"]].itertuples(index=False)]
    used_families = {family_of[n] for n in used}
    for r in stale_groups(judged).itertuples(index=False):
        if used_families & set(DATASET_FAMILIES.get(r.dataset, ())):
            reasons.append(f"{r.dataset} of {r.symbol} is stale: the newest record "
                           f"({r.venue}) is {_age(r.age_s)} old, more than the "
                           f"{_age(r.max_age_s)} allowed")

    return MonitorReport(
        symbol=symbol, now=now, last_row=visible.index[-1] if len(visible) else None,
        drift=drift, drifted=drifted, missing_share=share_all.to_dict(),
        missing_share_used=share_used.to_dict(), missing_families=missing_families,
        sources=judged.reset_index(drop=True), stale_sources=stale_names, quality=quality,
        degrade_reasons=reasons, drift_reasons=drift_reasons)
