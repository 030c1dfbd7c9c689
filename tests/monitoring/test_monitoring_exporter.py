"""Prometheus exposition of monitor reports, and the Grafana dashboard that reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from monitor_factories import FAMILIES, synthetic_features
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cascade_ml.contracts.columns import CASCADE, CASCADE_PROB, FWD_RV, VAR_FORECAST
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.drift import fit_profile
from cascade_ml.monitoring.exporter import METRIC_NAMES, export_reports, monitor_collector
from cascade_ml.monitoring.health import MonitorReport, health
from cascade_ml.monitoring.quality import HAR_FORECAST, forecast_quality
from cascade_ml.monitoring.staleness import SOURCE_COLUMNS
from cascade_ml.serving.metrics import ServiceMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "cascade-ml.json"
CFG = MonitoringConfig(recent_rows=168, qlike_window=200, calibration_bins=4)


def _report(symbol: str = "NEAR", shift: float = 2.0) -> MonitorReport:
    features = synthetic_features()
    features.iloc[-168:, 0] += shift
    profile = fit_profile(features, (features.index[0], features.index[1999]), FAMILIES, CFG)
    now = features.index[-1] + pd.Timedelta("1h")
    sources = pd.DataFrame([["funding", "binance", symbol, "8h", pd.NaT, pd.NaT, 36000.0],
                            ["sentiment", "alternative.me", "MARKET", "1d", pd.NaT, pd.NaT,
                             3600.0]], columns=SOURCE_COLUMNS)
    rng = np.random.default_rng(3)
    idx = features.index
    fc = pd.DataFrame({VAR_FORECAST: np.full(len(idx), 1e-3), HAR_FORECAST: np.full(len(idx), 2e-3),
                       CASCADE_PROB: rng.uniform(0, 0.3, len(idx))}, index=idx)
    labels = pd.DataFrame({FWD_RV: np.full(len(idx), 1e-3),
                           CASCADE: (rng.uniform(size=len(idx)) < 0.1) * 1.0}, index=idx)
    quality = forecast_quality(fc, labels, now=now, horizon=24, bar=pd.Timedelta("1h"), cfg=CFG)
    return health(symbol, features, profile, sources, CFG, now, quality=quality)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset], float]:
    text = generate_latest(registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_exposition_carries_the_report_values():
    report = _report()
    registry = CollectorRegistry()
    export_reports(registry, [report])
    got = _samples(registry)
    key = ("cascade_feature_psi", frozenset({"symbol": "NEAR", "feature": "x1"}.items()))
    assert got[key] == pytest.approx(report.drift.loc["x1", "psi"])
    assert got[("cascade_feature_drifted", frozenset({"symbol": "NEAR", "feature": "x1"}
                                                     .items()))] == 1.0
    # an input the model never had has no PSI and no drift flag; its family still counts it
    assert not any(k[0] == "cascade_feature_psi" and ("feature", "dead") in k[1] for k in got)
    assert got[("cascade_missing_share", frozenset({"symbol": "NEAR", "family": "sentiment"}
                                                   .items()))] == 0.5
    src = frozenset({"dataset": "funding", "venue": "binance", "symbol": "NEAR",
                     "interval": "8h"}.items())
    assert got[("cascade_source_age_seconds", src)] == 36000.0
    assert got[("cascade_source_stale", src)] == 1.0
    ratio = got[("cascade_qlike_ratio_vs_har", frozenset({"symbol": "NEAR"}.items()))]
    assert ratio == pytest.approx(report.quality.qlike.ratio) and ratio < 1
    assert got[("cascade_monitor_degraded", frozenset({"symbol": "NEAR"}.items()))] == 1.0
    bins = [k for k in got if k[0] == "cascade_calibration_event_rate"]
    assert len(bins) == 4
    assert {k[0] for k in got} <= METRIC_NAMES


def test_update_replaces_series_and_shares_the_service_registry():
    service = ServiceMetrics()  # the service's registry: both must live on one /metrics
    export_reports(service.registry, [_report("NEAR"), _report("BTC", shift=0.0)])
    got = _samples(service.registry)
    assert got[("cascade_monitor_degraded", frozenset({"symbol": "BTC"}.items()))] == 0.0
    families = {f.name for f in text_string_to_metric_families(service.render().decode())}
    assert {"cascade_model_loaded", "cascade_monitor_degraded"} <= families
    collector = export_reports(service.registry, [_report("BTC", shift=0.0)])
    assert collector is monitor_collector(service.registry)  # registered once
    got = _samples(service.registry)
    assert not any(("symbol", "NEAR") in k[1] for k in got if k[0].startswith("cascade_feature"))


def test_grafana_dashboard_queries_only_exported_metrics():
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    used = {m for e in exprs for m in re.findall(r"\bcascade_[a-z0-9_]+\b", e)}
    assert used and used <= METRIC_NAMES, used - METRIC_NAMES
    # the panels cover drift, missing inputs, staleness and quality
    assert {"cascade_feature_psi", "cascade_missing_share_used", "cascade_source_age_seconds",
            "cascade_qlike_ratio_vs_har", "cascade_calibration_event_rate"} <= used
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
