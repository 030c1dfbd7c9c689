"""End to end on the shipped slice of real market data (data/sample): scoring builds the real
features, scores them with a bundle trained on them, and the service, six months after the data
ends, flags the forecast stale and answers with the fail-safe."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pandas as pd
from serving_helpers import SYMBOL, auth, write_pipeline

from cascade_ml.config import load_pipeline
from cascade_ml.data.store import MarketStore
from cascade_ml.features.build import build_and_store
from cascade_ml.serving.demo import make_demo_bundle
from cascade_ml.serving.scoring import score

SCORES = f"scores/symbol={SYMBOL}/scores.parquet"


def test_real_sample_scored_then_served_as_stale(sample_store: MarketStore, tmp_path: Path,
                                                 server_factory) -> None:
    shutil.copytree(sample_store.root, tmp_path / "store")  # the session store stays read-only
    pipeline = write_pipeline(tmp_path, references=("BTC", "ETH"))
    config = load_pipeline(pipeline)
    store = MarketStore(tmp_path / "store")
    build_and_store(store, SYMBOL, config)
    features = store.read_table(f"features/symbol={SYMBOL}/features.parquet")
    version = make_demo_bundle(tmp_path / "models" / SYMBOL, frame=features, n_rows=3000,
                               n_estimators=20, version="real-sample-1")

    [result] = score(store, config)
    assert result.ok, result.error
    scores = store.read_table(SCORES)
    bars = store.read("ohlcv", SYMBOL, venue="binance", interval="1h")
    assert len(scores) == 12 and scores.index[-1] == bars.index[-1]  # the newest real bar
    assert (scores["model_version"] == version).all()
    assert scores["vol_forecast"].gt(0).all() and scores["cascade_prob"].between(0, 1).all()
    # decided as of each bar's close: trusted data, hedge inside the 30-70% band
    assert not scores["fail_safe"].any()
    policy = config.policy
    assert scores["hedge_ratio"].between(policy.hedge_min, policy.hedge_max).all()
    assert "beta_btc_168h" in features.columns  # the cross-asset context the policy reads

    server = server_factory(pipeline).start()
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        forecast = http.get(f"/v1/forecasts/{SYMBOL}").json()
        assert pd.Timestamp(forecast["timestamp"]) == bars.index[-1]
        assert forecast["stale"] is True and forecast["age_seconds"] > 30 * 86400
        decision = http.post("/v1/decisions", json={"symbol": SYMBOL, "notional": 5000,
                                                    "mark_price": 2.5, "leverage": 3}).json()
        assert decision["fail_safe"] is True and decision["stale"] is True
        assert decision["hedge_ratio"] == policy.hedge_max
        assert decision["leverage_cap"] <= policy.fail_safe_leverage
        assert http.get("/ready").status_code == 503
