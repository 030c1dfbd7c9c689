"""Fail-safe answers: no model, stale data; and /ready going 503 -> 200 when a model arrives."""

from __future__ import annotations

import time

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
from serving_helpers import auth

DECISION = {"symbol": SYMBOL, "notional": 2000.0, "mark_price": 4.0, "leverage": 2.0}


def _wait_for(check, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_no_model_fails_safe_then_ready_after_bundle_lands(tmp_path, server_factory) -> None:
    pipeline = write_pipeline(tmp_path)
    write_features(tmp_path, synthetic_features(300, fresh_end()))
    server = server_factory(pipeline).start()
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        not_ready = http.get("/ready")
        assert not_ready.status_code == 503
        assert any("no model" in p for p in not_ready.json()["problems"])
        decision = http.post("/v1/decisions", json=DECISION).json()
        assert decision["fail_safe"] is True and decision["model_version"] is None
        # the fail-safe's answer: the band's 70 % top, at most 1x
        assert decision["hedge_ratio"] == 0.70 and decision["leverage_cap"] <= 1.0
        assert any("no model" in r for r in decision["reasons"])
        assert http.get(f"/v1/forecasts/{SYMBOL}").status_code == 404
        assert 'cascade_failsafe_decisions_total{reason="no_model",symbol="NEAR"} 1.0' \
            in http.get("/metrics").text

        version = make_bundle(tmp_path / "models" / SYMBOL, seed=3)  # hot reload picks it up
        assert _wait_for(lambda: http.get("/ready").status_code == 200), http.get("/ready").text
        forecast = http.get(f"/v1/forecasts/{SYMBOL}").json()
        assert forecast["model_version"] == version and forecast["source"] == "live"
        assert http.post("/v1/decisions", json=DECISION).json()["fail_safe"] is False


def test_stale_forecast_is_flagged_and_decision_fails_safe(tmp_path, server_factory) -> None:
    pipeline = write_pipeline(tmp_path, max_age_s=3 * 3600)
    make_bundle(tmp_path / "models" / SYMBOL, seed=4)
    old_end = fresh_end() - pd.Timedelta("6h")  # bar closed 6-7 h ago > 3 h allowed
    write_features(tmp_path, synthetic_features(300, old_end))
    [result] = run_score(pipeline)
    assert result.ok, result.error
    server = server_factory(pipeline).start()
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        forecast = http.get(f"/v1/forecasts/{SYMBOL}").json()
        assert forecast["stale"] is True and forecast["age_seconds"] > 6 * 3600
        assert forecast["source"] == "scores"
        decision = http.post("/v1/decisions", json=DECISION).json()
        assert decision["fail_safe"] is True and decision["stale"] is True
        assert decision["hedge_ratio"] == 0.70 and decision["leverage_cap"] <= 1.0
        assert any("old" in r for r in decision["reasons"])
        ready = http.get("/ready")
        assert ready.status_code == 503 and "stale" in " ".join(ready.json()["problems"])
        assert f'cascade_forecast_stale{{symbol="{SYMBOL}"}} 1.0' in http.get("/metrics").text

        # fresh rows arrive (features step + scoring): the service picks them up, no restart
        write_features(tmp_path, synthetic_features(300, fresh_end()))
        run_score(pipeline)
        assert _wait_for(lambda: http.get("/ready").status_code == 200)
        assert http.get(f"/v1/forecasts/{SYMBOL}").json()["stale"] is False
        assert http.post("/v1/decisions", json=DECISION).json()["fail_safe"] is False
