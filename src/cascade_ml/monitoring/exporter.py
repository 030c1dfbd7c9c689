"""Prometheus exposition of monitor reports: one collector per registry, swapped atomically.

The collector yields gauges built from the latest reports at scrape time, so a feature that
stops drifting or a source that disappears leaves no stale series behind, and a scrape never
sees half an update. ``export_reports(registry, reports)`` registers the collector on first use
and replaces the reports after; the service mounts the registry on ``/metrics``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cascade_ml.monitoring.breakers import BreakerStatus
from cascade_ml.monitoring.health import MonitorReport

METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cascade_feature_psi": ("PSI of the feature's recent rows against the training window",
                            ("symbol", "feature")),
    "cascade_feature_psi_limit": ("PSI above which the feature counts as drifted",
                                  ("symbol", "feature")),
    "cascade_feature_drifted": ("1 when an input the model uses drifted past its limit",
                                ("symbol", "feature")),
    "cascade_missing_share": ("Share of the family's inputs missing (NaN) in the newest row",
                              ("symbol", "family")),
    "cascade_missing_share_used": ("Share of the family's inputs the model uses that are missing "
                                   "in the newest row", ("symbol", "family")),
    "cascade_source_age_seconds": ("Seconds since the source's newest record became available",
                                   ("dataset", "venue", "symbol", "interval")),
    "cascade_source_max_age_seconds": ("Age limit of the source", ("dataset", "venue", "symbol",
                                                                   "interval")),
    "cascade_source_stale": ("1 when the source is older than its limit",
                             ("dataset", "venue", "symbol", "interval")),
    "cascade_qlike": ("Mean realised QLIKE over the rolling window (model or har)",
                      ("symbol", "model")),
    "cascade_qlike_ratio_vs_har": ("Rolling realised QLIKE of the model / of HAR (< 1: better)",
                                   ("symbol",)),
    "cascade_qlike_rows": ("Realised rows behind the rolling QLIKE", ("symbol",)),
    "cascade_calibration_ece": ("Expected calibration error of the cascade probabilities",
                                ("symbol",)),
    "cascade_calibration_mean_prob": ("Mean cascade probability per calibration bin",
                                      ("symbol", "bin")),
    "cascade_calibration_event_rate": ("Observed cascade rate per calibration bin",
                                       ("symbol", "bin")),
    "cascade_calibration_rows": ("Realised rows behind the calibration table", ("symbol",)),
    "cascade_monitor_degraded": ("1 when the monitor degrades the decision to the fail-safe",
                                 ("symbol",)),
    "cascade_monitor_degrade_reasons": ("Number of reasons degrading the decision", ("symbol",)),
    "cascade_monitor_drifted_features": ("Used inputs past their drift limit", ("symbol",)),
    "cascade_monitor_timestamp_seconds": ("Unix time the report was computed for", ("symbol",)),
}
METRIC_NAMES = frozenset(METRICS)


def _finite(value: object) -> bool:
    try:
        return bool(np.isfinite(float(value)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


class MonitorCollector(Collector):
    """Gauges of the latest reports (one per symbol), built at scrape time."""

    def __init__(self) -> None:
        self._reports: tuple[MonitorReport, ...] = ()
        self._lock = threading.Lock()

    def update(self, reports: Iterable[MonitorReport]) -> None:
        """Replace the reports (a symbol missing from ``reports`` disappears from /metrics)."""
        fresh = tuple(reports)
        with self._lock:
            self._reports = fresh

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, (text, labels) in METRICS.items():
            yield GaugeMetricFamily(name, text, labels=labels)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            reports = self._reports
        families = {name: GaugeMetricFamily(name, text, labels=labels)
                    for name, (text, labels) in METRICS.items()}

        def add(name: str, labels: Sequence[str], value: object) -> None:
            if _finite(value):
                families[name].add_metric(list(labels), float(value))  # type: ignore[arg-type]

        sources_seen: set[tuple[str, ...]] = set()
        for rep in reports:
            s = rep.symbol
            for feature, row in rep.drift.iterrows():
                add("cascade_feature_psi", (s, str(feature)), row["psi"])
                add("cascade_feature_psi_limit", (s, str(feature)), row["psi_limit"])
                if row["used"]:
                    add("cascade_feature_drifted", (s, str(feature)), float(row["drifted"]))
            for family, share in rep.missing_share.items():
                add("cascade_missing_share", (s, family), share)
            for family, share in rep.missing_share_used.items():
                add("cascade_missing_share_used", (s, family), share)
            for r in rep.sources.itertuples(index=False):
                key = (r.dataset, r.venue, r.symbol, r.interval)
                if key in sources_seen:  # a reference's source is shared by several symbols
                    continue
                sources_seen.add(key)
                add("cascade_source_age_seconds", key, r.age_s)
                add("cascade_source_max_age_seconds", key, r.max_age_s)
                add("cascade_source_stale", key, float(r.stale))
            q = rep.quality
            if q is not None and q.qlike is not None:
                add("cascade_qlike", (s, "model"), q.qlike.model)
                add("cascade_qlike", (s, "har"), q.qlike.har)
                add("cascade_qlike_ratio_vs_har", (s,), q.qlike.ratio)
                add("cascade_qlike_rows", (s,), q.qlike.rows)
            if q is not None and q.calibration is not None:
                add("cascade_calibration_ece", (s,), q.ece)
                add("cascade_calibration_rows", (s,), q.cascade_rows)
                for b, row in q.calibration.iterrows():
                    add("cascade_calibration_mean_prob", (s, str(b)), row["mean_prob"])
                    add("cascade_calibration_event_rate", (s, str(b)), row["event_rate"])
            add("cascade_monitor_degraded", (s,), float(rep.degraded))
            add("cascade_monitor_degrade_reasons", (s,), len(rep.degrade_reasons))
            add("cascade_monitor_drifted_features", (s,), len(rep.drifted))
            add("cascade_monitor_timestamp_seconds", (s,), rep.now.timestamp())
        yield from families.values()


_COLLECTORS: weakref.WeakKeyDictionary[CollectorRegistry, MonitorCollector] = \
    weakref.WeakKeyDictionary()
_REGISTER_LOCK = threading.Lock()


def monitor_collector(registry: CollectorRegistry) -> MonitorCollector:
    """The registry's monitor collector, registered on first use."""
    with _REGISTER_LOCK:
        collector = _COLLECTORS.get(registry)
        if collector is None:
            collector = MonitorCollector()
            registry.register(collector)
            _COLLECTORS[registry] = collector
        return collector


def export_reports(registry: CollectorRegistry, reports: Iterable[MonitorReport]
                   ) -> MonitorCollector:
    """Publish ``reports`` (the latest one per symbol) on ``registry``."""
    collector = monitor_collector(registry)
    collector.update(reports)
    return collector


# ---------------------------------------------------------------------------- circuit breakers
BREAKER_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cascade_breaker_tripped": ("1 while the circuit breaker is tripped (the decisions it covers "
                                "fail safe)", ("breaker", "scope")),
    "cascade_breaker_value": ("The breaker's reading: daily loss or drawdown as a share of "
                              "equity, bars since a fresh row", ("breaker", "scope")),
    "cascade_breaker_limit": ("The reading at which the breaker trips", ("breaker", "scope")),
}


class BreakerCollector(Collector):
    """Gauges of the breakers' latest readings, built at scrape time."""

    def __init__(self) -> None:
        self._status: tuple[BreakerStatus, ...] = ()
        self._lock = threading.Lock()

    def update(self, status: Iterable[BreakerStatus]) -> None:
        fresh = tuple(status)
        with self._lock:
            self._status = fresh

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, (text, labels) in BREAKER_METRICS.items():
            yield GaugeMetricFamily(name, text, labels=labels)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            status = self._status
        tripped, value, limit = (GaugeMetricFamily(n, t, labels=lb)
                                 for n, (t, lb) in BREAKER_METRICS.items())
        for s in status:
            labels = [s.breaker, s.scope]
            tripped.add_metric(labels, float(s.tripped))
            if _finite(s.value):
                value.add_metric(labels, float(s.value))
            limit.add_metric(labels, float(s.limit))
        yield from (tripped, value, limit)


_BREAKERS: weakref.WeakKeyDictionary[CollectorRegistry, BreakerCollector] = \
    weakref.WeakKeyDictionary()


def export_breakers(registry: CollectorRegistry, status: Iterable[BreakerStatus]
                    ) -> BreakerCollector:
    """Publish the breakers' readings (``BreakerState.status()``) on ``registry``."""
    with _REGISTER_LOCK:
        collector = _BREAKERS.get(registry)
        if collector is None:
            collector = BreakerCollector()
            registry.register(collector)
            _BREAKERS[registry] = collector
    collector.update(status)
    return collector
