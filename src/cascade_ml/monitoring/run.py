"""The I/O edge: read a symbol's features, sources, scores and labels from the store, judge them.

:func:`monitor_symbol` runs the whole check once (tests, notebooks); the live loop keeps the
:class:`TrainingProfile` of each loaded bundle (``live.guard.Guard``) and stores each report with
:func:`cascade_ml.monitoring.persist.write_report`, which the service reads, exports with
:func:`cascade_ml.monitoring.exporter.export_reports` and enforces.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cascade_ml.atomic import read_json
from cascade_ml.contracts.columns import CASCADE_PROB, VAR_FORECAST
from cascade_ml.contracts.layout import features_path, labels_path, manifest_path, scores_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore, PartitionKey, to_utc
from cascade_ml.errors import CascadeError
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import load_inputs
from cascade_ml.features.registry import feature_specs
from cascade_ml.forecasting import Forecaster
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.drift import TrainingProfile, fit_profile
from cascade_ml.monitoring.health import MonitorReport, health
from cascade_ml.monitoring.quality import ForecastQuality, forecast_quality, har_forecast
from cascade_ml.monitoring.staleness import parse_key, source_staleness

Span = tuple[pd.Timestamp, pd.Timestamp]


def training_span_of(bundle: Forecaster) -> Span:
    """The (start, end) of the rows the bundle was trained on."""
    try:
        return to_utc(bundle.training_span["start"]), to_utc(bundle.training_span["end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CascadeError(f"bundle {bundle.model_name} v{bundle.version} has no usable training "
                           f"span ({bundle.training_span!r})") from exc


def family_map(symbol: str, task: TaskConfig, features_cfg: FeatureConfig,
               names: Sequence[str] | None = None) -> dict[str, str]:
    """Feature -> family for ``symbol``'s table (restricted to ``names``, e.g. a bundle's)."""
    specs = {s.name: s.family for s in feature_specs(features_cfg, task.references_for(symbol))}
    return specs if names is None else {n: specs.get(n, "unknown") for n in names}


def symbol_sources(store: MarketStore, symbol: str, task: TaskConfig,
                   features_cfg: FeatureConfig) -> list[PartitionKey]:
    """The partitions ``symbol``'s features read: the inputs its features manifest records, or
    (no manifest yet) those the feature loader selects."""
    manifest = read_json(store.root / manifest_path(features_path(symbol)))
    if manifest and manifest.get("inputs"):
        keys = [parse_key(p) for p in manifest["inputs"]]
        return sorted(k for k in keys if k is not None)
    inputs = load_inputs(store, symbol, task.references_for(symbol), venue=task.venue,
                         interval=task.interval, funding_venues=features_cfg.funding_venues,
                         oi_venues=features_cfg.oi_venues,
                         market_symbol=features_cfg.sentiment_market_symbol)
    keys = [parse_key(str(p.relative_to(store.root))) for p in inputs.sources]
    return sorted(k for k in keys if k is not None)


def _table(store: MarketStore, relpath: str) -> pd.DataFrame | None:
    return store.read_table(relpath) if (store.root / relpath).exists() else None


def served_quality(store: MarketStore, symbol: str, task: TaskConfig, features: pd.DataFrame,
                   training_span: Span, cfg: MonitoringConfig, now: pd.Timestamp
                   ) -> ForecastQuality | None:
    """Quality of the scored forecasts (``scores`` table) against the labels table, with HAR
    refitted on the training span as the yardstick; None without scores or labels."""
    scores = _table(store, scores_path(symbol))
    labels = _table(store, labels_path(symbol, task.horizon))
    if scores is None or labels is None or scores.empty:
        return None
    forecasts = scores[[c for c in (VAR_FORECAST, CASCADE_PROB) if c in scores]].copy()
    try:
        har = har_forecast(features, labels, training_span, forecasts.index, task.horizon)
        forecasts[har.name] = har
    except CascadeError:
        pass  # too few labelled training rows: report calibration only
    return forecast_quality(forecasts, labels, now=now, horizon=task.horizon, bar=task.bar,
                            cfg=cfg)


def monitor_symbol(store: MarketStore, symbol: str, task: TaskConfig,
                   features_cfg: FeatureConfig, cfg: MonitoringConfig, *, training_span: Span,
                   now: pd.Timestamp | None = None, feature_names: Sequence[str] | None = None,
                   profile: TrainingProfile | None = None,
                   quality: ForecastQuality | None = None) -> MonitorReport:
    """Read what the monitor needs for ``symbol`` from the store and judge it at ``now``.

    ``feature_names``: the bundle's inputs (default: every column of the table). ``profile``:
    a profile kept from an earlier call with the same bundle. ``quality``: precomputed forecast
    quality (default: the scored forecasts against the labels, when both tables exist).
    """
    now = to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    features = _table(store, features_path(symbol))
    if features is None:
        raise CascadeError("no features table", features_path(symbol),
                           hint="run the features step first")
    names = list(feature_names) if feature_names is not None else list(features.columns)
    family_of = family_map(symbol, task, features_cfg, names)
    frame = features.reindex(columns=names)
    if profile is None:
        profile = fit_profile(frame, training_span, family_of, cfg)
    keys = symbol_sources(store, symbol, task, features_cfg)
    sources = source_staleness(store, now, keys)
    if quality is None:
        quality = served_quality(store, symbol, task, features, training_span, cfg, now)
    return health(symbol, frame, profile, sources, cfg, now, bar=task.bar, quality=quality)
