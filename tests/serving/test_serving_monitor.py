"""The monitor's stored report in the service: /metrics exports it with the loop's metric names,
/v1/models carries it, and its degrade reasons (drift with missing and stale inputs) make
/v1/decisions fail safe for the forecast's bar (or a newer one) but not for a newer forecast.
Drift alone is graded instead: test_serving_drift.py."""

from __future__ import annotations

import httpx
import pandas as pd
from demo_data import (
    SYMBOL,
    fresh_end,
    make_bundle,
    run_score,
    synthetic_features,
    write_features,
    write_pipeline,
)
from prometheus_client.parser import text_string_to_metric_families
from serving_helpers import auth, monitor_report, until

from cascade_ml.contracts.layout import monitor_path
from cascade_ml.monitoring.persist import write_report

DECISION = {"symbol": SYMBOL, "notional": 2000.0, "mark_price": 4.0, "leverage": 2.0}
HOUR = pd.Timedelta("1h")


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_stored_report_governs_decisions_of_its_bar_and_is_exported(
        tmp_path, server_factory) -> None:  # noqa: ANN001
    pipeline = write_pipeline(tmp_path)
    make_bundle(tmp_path / "models" / SYMBOL, seed=5)
    end = fresh_end()
    features = synthetic_features(300, end)
    write_features(tmp_path, features)
    assert run_score(pipeline)[0].ok
    store = tmp_path / "store"
    bad = monitor_report(features, end, drift=True, missing=True, stale=True)
    assert len(bad.degrade_reasons) == 3, bad.degrade_reasons  # drift, missing, stale
    server = server_factory(pipeline).start()

    with httpx.Client(base_url=server.url, headers=auth()) as http:
        def monitor(bar: pd.Timestamp) -> dict | None:
            block = http.get("/v1/models").json()["models"][0]["monitor"]
            return block if block and pd.Timestamp(block["bar"]) == bar else None

        assert http.get(f"/v1/forecasts/{SYMBOL}").json()["timestamp"] == end.isoformat().replace(
            "+00:00", "Z")
        assert http.get("/v1/models").json()["models"][0]["monitor"] is None
        assert http.post("/v1/decisions", json=DECISION).json()["fail_safe"] is False

        # 1. a degraded report on the forecast's bar: fail-safe, every reason named
        write_report(store, bad, end)
        block = until(lambda: monitor(end))
        assert block["in_force"] is True and block["degraded"] is True
        assert block["degrade_reasons"] == bad.degrade_reasons
        assert block["missing_families"] == ["funding"] and "ret_1h" in block["drifted_features"]
        decision = http.post("/v1/decisions", json=DECISION).json()
        assert decision["fail_safe"] is True and decision["stale"] is False
        named = [r for r in decision["reasons"] if r.startswith("FAIL-SAFE: monitor: ")]
        assert named == [f"FAIL-SAFE: monitor: {r}" for r in bad.degrade_reasons]

        got = _samples(http.get("/metrics").text)
        near = frozenset({"symbol": SYMBOL}.items())
        psi = ("cascade_feature_psi", frozenset({"symbol": SYMBOL, "feature": "ret_1h"}.items()))
        assert got[psi] == bad.drift.at["ret_1h", "psi"] and got[psi] > 1.0
        funding = frozenset({"symbol": SYMBOL, "family": "funding"}.items())
        assert got[("cascade_missing_share", funding)] == 1.0
        src = frozenset({"dataset": "funding", "venue": "binance", "symbol": SYMBOL,
                         "interval": "8h"}.items())
        assert got[("cascade_source_age_seconds", src)] == 36_000.0
        assert got[("cascade_source_stale", src)] == 1.0
        assert got[("cascade_monitor_degraded", near)] == 1.0
        assert got[("cascade_failsafe_decisions_total",
                    frozenset({"symbol": SYMBOL, "reason": "monitor"}.items()))] == 1.0

        # 2. a degraded report on an older bar than the forecast: shown and exported, ignored
        write_report(store, monitor_report(features, end - HOUR, drift=True, missing=True,
                                                stale=True), end - HOUR)
        block = until(lambda: monitor(end - HOUR))
        assert block["in_force"] is False and block["degraded"] is True
        assert http.post("/v1/decisions", json=DECISION).json()["fail_safe"] is False
        got = _samples(http.get("/metrics").text)
        assert got[("cascade_monitor_degraded", near)] == 1.0

        # 3. a clean report on the forecast's bar: the model's decision, gauges follow
        write_report(store, monitor_report(features, end), end)
        assert until(lambda: monitor(end))["degraded"] is False
        assert http.post("/v1/decisions", json=DECISION).json()["fail_safe"] is False
        got = _samples(http.get("/metrics").text)
        assert got[("cascade_monitor_degraded", near)] == 0.0
        assert got[("cascade_source_age_seconds", src)] == 600.0

        # 4. a degraded report on a newer bar than the forecast still holds for it
        write_report(store, bad, end + HOUR)
        until(lambda: monitor(end + HOUR))
        assert http.post("/v1/decisions", json=DECISION).json()["fail_safe"] is True

        # 5. an unreadable report: named in /v1/models, the last good one still applies
        (store / monitor_path(SYMBOL)).write_text("{ not json")
        model = until(lambda: (m := http.get("/v1/models").json()["models"][0])
                       ["monitor_error"] and m)
        assert "unreadable monitor report" in model["monitor_error"]
        assert model["monitor"]["degraded"] is True
        assert http.post("/v1/decisions", json=DECISION).json()["fail_safe"] is True
