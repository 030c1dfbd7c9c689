"""health(): which findings degrade the decision, the reasons they give, and the policy gate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from monitor_factories import FAMILIES, synthetic_features

from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.drift import feature_drift, fit_profile
from cascade_ml.monitoring.health import health
from cascade_ml.monitoring.staleness import SOURCE_COLUMNS
from cascade_ml.policy import PolicyConfig, PolicyInputs, decide

CFG = MonitoringConfig(recent_rows=168)
FEATURES = synthetic_features()
SPAN = (FEATURES.index[0], FEATURES.index[1999])
PROFILE = fit_profile(FEATURES, SPAN, FAMILIES, CFG)
NOW = FEATURES.index[-1] + pd.Timedelta("1h")
NO_SOURCES = pd.DataFrame(columns=SOURCE_COLUMNS)


def _sources(*rows: tuple[str, str, str, str, float]) -> pd.DataFrame:
    return pd.DataFrame([[d, v, s, i, pd.NaT, pd.NaT, age] for d, v, s, i, age in rows],
                        columns=SOURCE_COLUMNS)


def test_profile_marks_inputs_the_model_never_had_as_unused():
    assert PROFILE.used == ["x1", "x2", "y1"]
    assert PROFILE.features["dead"].coverage == 0.0
    assert PROFILE.rows == 2000 and PROFILE.end == SPAN[1]
    # a stationary series: the envelope of its own weekly windows is the alert threshold or a bit
    assert 0.25 <= PROFILE.features["x1"].psi_limit < 0.5  # 0.25: PSI's 'shifted' reading


def test_healthy_inputs_give_no_reason():
    report = health("NEAR", FEATURES, PROFILE, NO_SOURCES, CFG, NOW)
    assert report.degrade_reasons == [] and not report.degraded
    assert report.drifted == [] and report.missing_families == []
    assert report.last_row == FEATURES.index[-1]
    assert report.missing_share == {"sentiment": 0.5, "volatility": 0.0}  # 'dead' counts here
    assert report.missing_share_used == {"sentiment": 0.0, "volatility": 0.0}  # but not here


def test_a_drifted_input_degrades_with_its_name():
    shifted = FEATURES.copy()
    shifted.iloc[-168:, 0] += 2.0
    report = health("NEAR", shifted, PROFILE, NO_SOURCES, CFG, NOW)
    assert report.drifted == ["x1"]
    assert len(report.degrade_reasons) == 1
    assert report.degrade_reasons[0].startswith("input x1 (volatility) has drifted: PSI ")
    assert report.drift.loc["x1", "reading"] == "shifted"
    quiet = MonitoringConfig(recent_rows=168, degrade_on_drift=False)
    assert health("NEAR", shifted, PROFILE, NO_SOURCES, quiet, NOW).degrade_reasons == []
    two = MonitoringConfig(recent_rows=168, min_drifted_inputs=2)
    assert health("NEAR", shifted, PROFILE, NO_SOURCES, two, NOW).degrade_reasons == []
    shifted.iloc[-168:, 1] -= 2.0
    both = health("NEAR", shifted, PROFILE, NO_SOURCES, two, NOW)
    assert both.drifted == ["x1", "x2"] and len(both.degrade_reasons) == 2
    # the convenience wrapper gives the same PSI
    table = feature_drift(shifted, SPAN, recent_rows=168, family_of=FAMILIES)
    assert table.loc["x1", "psi"] == pytest.approx(report.drift.loc["x1", "psi"])


def test_missing_inputs_degrade_only_past_the_family_limit():
    gone = FEATURES.copy()
    gone.iloc[-1, gone.columns.get_loc("x1")] = np.nan
    report = health("NEAR", gone, PROFILE, NO_SOURCES, CFG, NOW)
    assert report.missing_share_used["volatility"] == 0.5 and report.degrade_reasons == []
    strict = MonitoringConfig(recent_rows=168, max_missing_share={"volatility": 0.0})
    report = health("NEAR", gone, PROFILE, NO_SOURCES, strict, NOW)
    assert report.missing_families == ["volatility"]
    assert report.degrade_reasons == ["1 of the 2 volatility inputs the model uses are missing "
                                      "(x1); at most 0% may be"]


def test_rows_after_now_are_not_seen():
    now = FEATURES.index[2100]  # row 2099 closed at row 2100's open
    late = FEATURES.copy()
    late.iloc[2100:, 0] = 50.0  # a wild future the monitor must not see
    report = health("NEAR", late, PROFILE, NO_SOURCES, CFG, now)
    assert report.last_row == FEATURES.index[2099] and report.drifted == []
    nothing = health("NEAR", FEATURES, PROFILE, NO_SOURCES, CFG, FEATURES.index[0])
    assert nothing.degrade_reasons == [f"no feature row of NEAR is available at "
                                       f"{FEATURES.index[0]}"]


def test_stale_sources_degrade_only_when_they_feed_used_inputs():
    sources = _sources(("sentiment", "alternative.me", "MARKET", "1d", 5 * 86400.0),
                       ("funding", "binance", "NEAR", "8h", 20 * 3600.0),
                       ("ohlcv", "binance", "NEAR", "1h", 1800.0))
    report = health("NEAR", FEATURES, PROFILE, sources, CFG, NOW)
    assert report.stale_sources == ["sentiment/alternative.me/MARKET/1d",
                                    "funding/binance/NEAR/8h"]
    # no funding input is used by this model, so only the sentiment source degrades
    assert report.degrade_reasons == ["sentiment of MARKET is stale: the newest record "
                                      "(alternative.me) is 5.0 days old, more than the 2.0 "
                                      "days allowed"]
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["degraded"] is True
    assert payload["source_age_s"]["sentiment/alternative.me/MARKET"] == 5 * 86400


def _inputs() -> PolicyInputs:
    return PolicyInputs.model_validate({
        "symbol": "NEAR", "forecast": {"sigma_h": 0.04, "horizon_hours": 24,
                                       "cascade_prob": 0.05},
        "position": {"side": "long", "notional": 5000.0, "entry_price": 5.0, "mark_price": 5.0,
                     "leverage": 3.0, "hedge_ratio": 0.3},
        "equity": 100_000.0, "freshness": {"forecast_age_s": 60.0, "features_age_s": 60.0}})


def test_gate_fails_safe_with_the_monitor_reason_named():
    cfg = PolicyConfig()
    normal = decide(_inputs(), cfg)
    assert not normal.fail_safe
    assert decide(_inputs(), cfg, monitor_reasons=[]) == normal
    degraded = decide(_inputs(), cfg,
                      monitor_reasons=["input fng_z_30d (sentiment) has drifted"])
    assert degraded.fail_safe and degraded.hedge_ratio == 0.70  # the band's top
    assert degraded.reasons[0] == "FAIL-SAFE: monitor: input fng_z_30d (sentiment) has drifted"
    assert degraded.leverage_cap <= 1.0  # the fail-safe's 1x
