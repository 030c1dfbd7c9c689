"""A monitor report stored as JSON and read back: the same gauges, the same summary, strict JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from monitor_factories import FAMILIES, synthetic_features
from prometheus_client import CollectorRegistry, generate_latest

from cascade_ml.contracts.columns import CASCADE, CASCADE_PROB, FWD_RV, VAR_FORECAST
from cascade_ml.contracts.layout import monitor_path
from cascade_ml.errors import CascadeError
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.drift import fit_profile
from cascade_ml.monitoring.exporter import export_reports
from cascade_ml.monitoring.health import MonitorReport, health
from cascade_ml.monitoring.persist import read_report, write_report
from cascade_ml.monitoring.quality import HAR_FORECAST, forecast_quality
from cascade_ml.monitoring.staleness import SOURCE_COLUMNS

CFG = MonitoringConfig(recent_rows=168, qlike_window=200, calibration_bins=4)


def _report(quality: bool = True) -> MonitorReport:
    """x1 shifted (drift), 'dead' all NaN (missing share), a stale funding source, a sentiment
    source with no record (NaN age), realised QLIKE and calibration."""
    features = synthetic_features()
    features.iloc[-168:, 0] += 2.0
    profile = fit_profile(features, (features.index[0], features.index[1999]), FAMILIES, CFG)
    now = features.index[-1] + pd.Timedelta("1h")
    sources = pd.DataFrame(
        [["funding", "binance", "NEAR", "8h", now - pd.Timedelta("10h"),
          now - pd.Timedelta("10h"), 36000.0],
         ["sentiment", "alternative.me", "MARKET", "1d", pd.NaT, pd.NaT, np.nan]],
        columns=SOURCE_COLUMNS)
    q = None
    if quality:
        rng = np.random.default_rng(3)
        idx = features.index
        fc = pd.DataFrame({VAR_FORECAST: np.full(len(idx), 1e-3),
                           HAR_FORECAST: np.full(len(idx), 2e-3),
                           CASCADE_PROB: rng.uniform(0, 0.3, len(idx))}, index=idx)
        labels = pd.DataFrame({FWD_RV: np.full(len(idx), 1e-3),
                               CASCADE: (rng.uniform(size=len(idx)) < 0.1) * 1.0}, index=idx)
        q = forecast_quality(fc, labels, now=now, horizon=24, bar=pd.Timedelta("1h"), cfg=CFG)
    return health("NEAR", features, profile, sources, CFG, now, quality=q)


def _exposition(report: MonitorReport) -> str:
    registry = CollectorRegistry()
    export_reports(registry, [report])
    return generate_latest(registry).decode()


@pytest.mark.parametrize("quality", [True, False])
def test_round_trip_gives_the_same_gauges_summary_and_tables(tmp_path, quality: bool) -> None:  # noqa: ANN001
    report = _report(quality)
    assert report.degraded and report.drifted == ["x1"]
    bar = report.last_row
    path = write_report(tmp_path, report)
    assert path == tmp_path / monitor_path("NEAR")
    stored = read_report(path, "NEAR")
    assert stored is not None and stored.bar == bar
    back = stored.report
    assert _exposition(back) == _exposition(report)
    assert back.to_dict() == report.to_dict()
    pd.testing.assert_frame_equal(back.drift, report.drift)
    pd.testing.assert_frame_equal(back.sources, report.sources, check_dtype=False)
    assert back.sources["last"].iloc[0] == report.sources["last"].iloc[0]
    assert np.isnan(back.sources["age_s"].iloc[1])
    if quality:
        pd.testing.assert_frame_equal(back.quality.calibration, report.quality.calibration,
                                      check_index_type=False)
        assert back.quality.qlike == report.quality.qlike
    else:
        assert back.quality is None


def test_file_is_strict_json_with_the_bar(tmp_path) -> None:  # noqa: ANN001
    report = _report(quality=False)
    bar = report.last_row - pd.Timedelta("1h")  # the bar it stands for may be given
    path = write_report(tmp_path, report, bar)

    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    payload = json.loads(path.read_text(), parse_constant=refuse)
    assert payload["format"] == 1 and payload["symbol"] == "NEAR"
    assert pd.Timestamp(payload["bar"]) == bar
    assert read_report(path).bar == bar
    assert not list(tmp_path.rglob(".tmp-*"))  # written through the atomic writer


def test_missing_unreadable_or_foreign_reports(tmp_path) -> None:  # noqa: ANN001
    assert read_report(tmp_path / monitor_path("NEAR")) is None
    path = write_report(tmp_path, _report(quality=False))
    with pytest.raises(CascadeError, match="'NEAR' where 'BTC'"):
        read_report(path, "BTC")
    path.write_text('{"format": 1, "bar": "2026-01-01"}')
    with pytest.raises(CascadeError, match="malformed monitor report") as exc:
        read_report(path)
    assert str(path) in exc.value.message
    path.write_text('{"format": 7}')
    with pytest.raises(CascadeError, match="format 1"):
        read_report(path)
    path.write_text("{ not json")
    with pytest.raises(CascadeError, match="unreadable"):
        read_report(path)
