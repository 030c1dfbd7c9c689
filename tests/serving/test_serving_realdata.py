"""End to end on the shipped slice of real market data (data/sample): the score step builds the
real features, scores them with a bundle trained on them, and the service, six months after the
data ends, flags the forecast stale and answers with the fail-safe."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pandas as pd
import pytest
from decision_oracle import expected_decision
from demo_data import SYMBOL, make_demo_bundle, write_pipeline
from serving_helpers import auth

from cascade_ml.config import load_pipeline
from cascade_ml.contracts.columns import beta_column
from cascade_ml.contracts.layout import features_path, scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.pipeline import score_step
from cascade_ml.policy.schemas import Position


def test_real_sample_scored_then_served_as_stale(sample_store: MarketStore, tmp_path: Path,
                                                 server_factory, capsys) -> None:
    shutil.copytree(sample_store.root, tmp_path / "store")  # the session store stays read-only
    # each bar's forecast read as it is (half-life 0), so a stored decision is decide() on it;
    # the smoothed forecast is tested in tests/scoring/test_scoring_smoothing.py
    pipeline = write_pipeline(tmp_path, references=("BTC", "ETH"),
                              policy={"forecast_halflife_bars": 0.0})
    config = load_pipeline(pipeline)
    store = MarketStore(tmp_path / "store")
    # a pipeline of [score] only: the step brings the features up to date itself, once with a
    # bundle that cannot exist yet (fails), then with one trained on those very features
    with pytest.raises(CascadeError, match="scoring failed"):
        score_step(config)
    assert "bundle.json missing" in capsys.readouterr().out
    features = store.read_table(features_path(SYMBOL))
    version = make_demo_bundle(tmp_path / "models" / SYMBOL, frame=features, n_rows=3000,
                               n_estimators=20, version="real-sample-1")
    score_step(config)
    assert f"{SYMBOL}: scored 12 row(s)" in capsys.readouterr().out
    scores = store.read_table(scores_path(SYMBOL))
    bars = store.read("ohlcv", SYMBOL, venue="binance", interval="1h")
    assert len(scores) == 12 and scores.index[-1] == bars.index[-1]  # the newest real bar
    assert (scores["model_version"] == version).all()
    assert scores["vol_forecast"].gt(0).all() and scores["cascade_prob"].between(0, 1).all()
    # decided as of each bar's close: trusted data, hedge inside the 30-70% band
    assert not scores["fail_safe"].any()
    policy = config.policy
    assert scores["hedge_ratio"].between(0.30, 0.70).all()
    # the cross-asset context the policy reads, at the default 168-bar proxy window
    assert beta_column("BTC", 168) in features.columns
    # each stored decision is decide() on that bar's real forecast, triggers and betas
    scoring = config.scoring
    position = Position(side=config.task.side, notional=scoring.default_position_notional,
                        entry_price=1.0, mark_price=1.0, leverage=1.0, hedge_ratio=0.0)
    for ts, stored in scores.iterrows():
        want = expected_decision(SYMBOL, stored.to_dict(), features.loc[ts].to_dict(), position,
                                 position.notional, config.task, policy, age=0.0)
        assert (stored["hedge_ratio"], stored["hedge_instrument"], stored["leverage_cap"],
                stored["reasons"]) == (want.hedge_ratio, want.hedge_instrument,
                                       want.leverage_cap, " | ".join(want.reasons)), ts

    server = server_factory(pipeline).start()
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        forecast = http.get(f"/v1/forecasts/{SYMBOL}").json()
        assert pd.Timestamp(forecast["timestamp"]) == bars.index[-1]
        assert forecast["stale"] is True and forecast["age_seconds"] > 30 * 86400
        decision = http.post("/v1/decisions", json={"symbol": SYMBOL, "notional": 5000,
                                                    "mark_price": 2.5, "leverage": 3}).json()
        assert decision["fail_safe"] is True and decision["stale"] is True
        assert decision["hedge_ratio"] == 0.70  # the band's top
        assert decision["leverage_cap"] <= 1.0  # the fail-safe's 1x
        assert http.get("/ready").status_code == 503
