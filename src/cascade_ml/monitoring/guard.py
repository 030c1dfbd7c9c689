"""The monitor wired into the loop: one ``Guard`` per loaded bundle judges every cycle's inputs.

Rule for missing inputs (docs/live.md): a missing input family degrades the decision only if the
model was validated with that family present. The rows of the evaluation that justified the
bundle (its final period, else its training span) are checked with the monitor's own
missing-input rule; a family that would have failed it on most of those rows was absent when the
model was judged good enough to promote, so its absence now is a condition the model was
validated in, and it is waived: its missing share is not limited and the sources that feed only
waived families are not judged for staleness. Everything else stands: drift, the families that
were present (a source the loop collects, such as candles or funding, going stale still fails
safe), and the reasons are named in the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore, PartitionKey, to_utc
from cascade_ml.features.config import FeatureConfig
from cascade_ml.forecasting import Forecaster
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.drift import TrainingProfile, fit_profile
from cascade_ml.monitoring.health import MonitorReport, health
from cascade_ml.monitoring.run import family_map, symbol_sources, training_span_of
from cascade_ml.monitoring.staleness import DATASET_FAMILIES, source_staleness

Span = tuple[pd.Timestamp, pd.Timestamp]


@dataclass(frozen=True)
class Waiver:
    """A family whose absence does not degrade the decision, and why."""

    family: str
    absent_share: float
    span: Span

    def reason(self) -> str:
        return (f"{self.family} inputs were missing on {self.absent_share:.0%} of the evaluation "
                f"rows {self.span[0]:%Y-%m-%d}..{self.span[1]:%Y-%m-%d} that justified the model, "
                "so their absence is not a reason to fail safe")


def evaluation_span(bundle: Forecaster) -> Span:
    """The rows the bundle was judged on: its final period when it records one, else its
    training span."""
    final = (bundle.metrics or {}).get("final") or {}
    if final.get("start") and final.get("end"):
        return to_utc(final["start"]), to_utc(final["end"])
    return training_span_of(bundle)


def absent_families(features: pd.DataFrame, profile: TrainingProfile, span: Span,
                    cfg: MonitoringConfig, majority: float = 0.5) -> list[Waiver]:
    """Families the monitor would call missing on more than ``majority`` of the rows in
    ``span`` (only families holding inputs the model uses)."""
    rows = features[(features.index >= span[0]) & (features.index <= span[1])]
    family_of, used = profile.family_of, profile.used
    if rows.empty or not used:
        return []
    missing = ~np.isfinite(rows.reindex(columns=used).to_numpy(dtype=float))
    families = np.array([family_of[n] for n in used])
    out = []
    for family in sorted(set(families)):  # the gate's per-row rule, on every evaluation row
        share = missing[:, families == family].mean(axis=1)
        failed = float((share > cfg.missing_limit(str(family))).mean())
        if failed > majority:
            out.append(Waiver(str(family), failed, span))
    return out


def waived_config(cfg: MonitoringConfig, waived: list[str]) -> MonitoringConfig:
    """``cfg`` with the waived families' missing share unlimited and the datasets that feed only
    waived families left unjudged for staleness."""
    if not waived:
        return cfg
    only_waived = {d for d, fams in DATASET_FAMILIES.items() if fams and set(fams) <= set(waived)}
    return cfg.model_copy(update={
        "max_missing_share": {**cfg.max_missing_share, **dict.fromkeys(waived, 1.0)},
        "max_age": {d: v for d, v in cfg.max_age.items() if d not in only_waived},
        "max_age_bars": {d: v for d, v in cfg.max_age_bars.items() if d not in only_waived},
    })


class Guard:
    """The monitor of one symbol under one bundle: the training profile and the waivers are
    computed once, ``check`` runs every cycle.

    ``features`` (here and in ``check``): the rows the bundle reads, by its input names: the
    symbol's feature table for a per-symbol bundle, its panel rows for a panel bundle.
    ``family_of``: input -> feature family; default the feature table's families (a panel
    bundle's inputs take the family of the feature each is computed from,
    ``panel.dataset.column_families``)."""

    def __init__(self, store: MarketStore, symbol: str, task: TaskConfig,
                 features_cfg: FeatureConfig, cfg: MonitoringConfig, bundle: Forecaster,
                 features: pd.DataFrame, family_of: dict[str, str] | None = None) -> None:
        self.store, self.symbol, self.task = store, symbol, task
        self.names = list(bundle.feature_names)
        if family_of is None:
            family_of = family_map(symbol, task, features_cfg, self.names)
        frame = features.reindex(columns=self.names)
        self.profile = fit_profile(frame, training_span_of(bundle), family_of, cfg)
        self.waivers = absent_families(frame, self.profile, evaluation_span(bundle), cfg)
        self.cfg = waived_config(cfg, [w.family for w in self.waivers])
        self.keys: list[PartitionKey] = symbol_sources(store, symbol, task, features_cfg)

    def check(self, features: pd.DataFrame, now: pd.Timestamp) -> MonitorReport:
        """The monitor's verdict at ``now`` (reads only the sources' newest records)."""
        sources = source_staleness(self.store, now, self.keys)
        return health(self.symbol, features.reindex(columns=self.names), self.profile, sources,
                      self.cfg, now, bar=self.task.bar)
