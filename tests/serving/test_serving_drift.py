"""Drift is graded in the service as in the live loop: a stored report naming drift alone makes
/v1/decisions answer on the baseline forecaster (HAR and climatology, fitted on the serving
model's training span), not fail safe, and say so; a clean report leaves the model's answer; drift
with a stale input still fails safe. Through the real server over a socket."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
from demo_data import (
    SYMBOL,
    fresh_end,
    make_demo_bundle,
    run_score,
    synthetic_features,
    write_features,
    write_pipeline,
)
from prometheus_client.parser import text_string_to_metric_families
from serving_helpers import auth, monitor_report, until

from cascade_ml.contracts.layout import labels_path
from cascade_ml.data.store import MarketStore
from cascade_ml.monitoring.persist import write_report

DECISION = {"symbol": SYMBOL, "notional": 2000.0, "mark_price": 4.0, "leverage": 2.0}
HORIZON = 24


def _labels(features: pd.DataFrame) -> pd.DataFrame:
    """Forward realised variance over the next 24 bars and a cascade flag (its top decile)."""
    rv1 = features["rv_1h"].to_numpy(float)
    fwd = np.array([rv1[i + 1: i + 1 + HORIZON].sum() if i + HORIZON < len(rv1) else np.nan
                    for i in range(len(rv1))])
    cascade = np.where(np.isfinite(fwd), fwd > np.nanquantile(fwd, 0.9), np.nan)
    return pd.DataFrame({"fwd_rv": fwd, "cascade": cascade}, index=features.index)


def test_drift_alone_answers_on_the_baseline_and_names_it(tmp_path, server_factory) -> None:  # noqa: ANN001
    pipeline = write_pipeline(tmp_path)
    end = fresh_end()
    features = synthetic_features(900, end, seed=3)
    write_features(tmp_path, features)
    labels = _labels(features)
    MarketStore(tmp_path / "store").write_table(labels_path(SYMBOL, HORIZON), labels, {})
    # the model was trained on the 400 rows ending 300 h before the served bar (24 more rows
    # give its last labels); the baseline stands in for it on the same span
    trained = features[features.index <= end - pd.Timedelta("300h")]
    version = make_demo_bundle(tmp_path / "models" / SYMBOL, frame=trained, n_rows=400,
                               n_estimators=15, symbol=SYMBOL, seed=3)
    span = trained.index[-(400 + HORIZON):][:400]
    climatology = labels.loc[span, "cascade"].mean()  # the training base rate, by hand
    assert 0.05 < climatology < 0.2
    assert run_score(pipeline)[0].ok
    store = tmp_path / "store"
    server = server_factory(pipeline).start()

    with httpx.Client(base_url=server.url, headers=auth()) as http:
        model = http.post("/v1/decisions", json=DECISION).json()
        assert model["fail_safe"] is False and model["forecaster"] == "model"
        assert model["model_version"] == version

        # 1. drift alone on the forecast's bar: the baseline's answer, not the fail-safe
        drifted = monitor_report(features, end, drift=True)
        assert drifted.drift_reasons and drifted.fail_safe_reasons == []
        write_report(store, drifted, end)
        got = until(lambda: (d := http.post("/v1/decisions", json=DECISION).json())
                    ["forecaster"] != "model" and d)
        assert got["fail_safe"] is False and got["forecaster"] == "HAR + climatology"
        assert got["model_version"] == version  # the model it stands in for
        assert not any(r.startswith("FAIL-SAFE") for r in got["reasons"])
        reason = got["reasons"][0]
        assert reason.startswith("BASELINE: forecast by HAR + climatology (vol ")
        assert f"instead of model v{version}, whose inputs drifted: input ret_1h" in reason
        assert f"cascade probability {climatology:.1%})" in reason  # the span's base rate
        # the policy read the baseline's forecast, not the model's
        assert f"cascade probability {climatology:.1%} vs the" in got["reasons"][1]
        assert f"cascade probability {climatology:.1%} vs the" not in model["reasons"][0]
        assert got["risk_score"] != model["risk_score"]
        failsafe = [s for fam in text_string_to_metric_families(http.get("/metrics").text)
                    for s in fam.samples if s.name == "cascade_failsafe_decisions_total"]
        assert failsafe == []

        # 2. a clean report on the bar: the model's answer again
        write_report(store, monitor_report(features, end), end)
        clean = until(lambda: (d := http.post("/v1/decisions", json=DECISION).json())
                      ["forecaster"] == "model" and d)
        assert clean["fail_safe"] is False and clean["hedge_ratio"] == model["hedge_ratio"]
        assert not any(r.startswith("BASELINE") for r in clean["reasons"])

        # 3. drift with a stale source: not graded, the fail-safe with both named
        both = monitor_report(features, end, drift=True, stale=True)
        write_report(store, both, end)
        safe = until(lambda: (d := http.post("/v1/decisions", json=DECISION).json())
                     ["fail_safe"] and d)
        assert safe["forecaster"] == "model"
        assert [r for r in safe["reasons"] if r.startswith("FAIL-SAFE: monitor: ")] == [
            f"FAIL-SAFE: monitor: {r}" for r in both.degrade_reasons]
        assert any("drifted" in r for r in both.degrade_reasons)
