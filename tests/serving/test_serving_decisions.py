"""The served decision is ``decide`` on the served forecast: for three symbols whose newest bars
carry fired / unfired / unknown triggers and proxy-worthy betas, and many bot positions each,
every answer of ``POST /v1/decisions`` equals the policy's decision on inputs written out
independently (tests/decision_oracle.py), reasons included."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from decision_oracle import expected_decision
from demo_data import fresh_end, make_bundle, run_score, synthetic_features, write_features
from demo_data import write_pipeline as pipeline_file
from serving_helpers import auth

from cascade_ml.config import load_pipeline
from cascade_ml.contracts.columns import TRIGGERS, beta_column, corr_column
from cascade_ml.policy.schemas import Position

# each forecast read as it is (half-life 0): the smoothed one is tested in
# test_serving_smoothing.py
POLICY = {"proxy_window": 720, "same_perp_effectiveness": 0.85, "vol_reference_annual": 2.0,
          "forecast_halflife_bars": 0.0}
# The newest bar of each symbol: (trigger values by name, {(ref, window): (beta, corr)})
NEWEST = {
    "NEAR": ({"funding_divergence": 1.0, "sentiment_spike": 1.0, "volume_breakdown": 1.0},
             {("BTC", 720): (1.3, 0.97), ("ETH", 720): (0.9, 0.5),
              ("BTC", 168): (0.4, 0.2), ("ETH", 168): (1.1, 0.99)}),
    "SOL": ({"funding_divergence": 1.0, "sentiment_spike": 0.0, "volume_breakdown": np.nan},
            {("BTC", 720): (1.1, 0.92), ("ETH", 720): (0.8, 0.96),
             ("BTC", 168): (0.5, 0.3), ("ETH", 168): (0.5, 0.3)}),
    "AVAX": ({"funding_divergence": 0.0, "sentiment_spike": 0.0, "volume_breakdown": 0.0},
             {("BTC", 720): (0.7, 0.4), ("ETH", 720): (0.6, 0.5),
              ("BTC", 168): (1.2, 0.98), ("ETH", 168): (1.0, 0.97)}),
}


def _positions(n: int, seed: int) -> list[dict]:
    """Varied bot positions: both sides, 1-20x, hedges in place, fresher prices and triggers."""
    rng = np.random.default_rng(seed)
    markets = [None, {"price": 5.3}, {"funding_divergence": True},
               {"volume_breakdown": False, "funding_divergence": False}]
    out = []
    for i in range(n):
        mark = float(rng.uniform(1, 10))
        body = {"side": ["long", "short"][i % 2], "notional": float(rng.uniform(500, 200_000)),
                "mark_price": mark, "leverage": float(rng.uniform(1, 20)),
                "hedge_ratio": float(rng.uniform(0, 1))}
        if i % 3 == 0:
            body["entry_price"] = mark * float(rng.uniform(0.9, 1.1))
        if i % 4 == 1:
            body["portfolio_value"] = float(rng.uniform(10_000, 1_000_000))
        if markets[i % len(markets)] is not None:
            body["market"] = markets[i % len(markets)]
        out.append(body)
    return out


def _expected(symbol: str, body: dict, forecast: dict, row: dict, answer: dict, config) -> dict:
    mark = body.get("market", {}).get("price") or body["mark_price"]
    position = Position(side=body["side"], notional=body["notional"],
                        entry_price=body.get("entry_price") or mark, mark_price=mark,
                        leverage=body["leverage"], hedge_ratio=body["hedge_ratio"])
    equity = body.get("portfolio_value") or body["notional"] / body["leverage"]
    bot = {k: v for k, v in body.get("market", {}).items() if k in TRIGGERS}
    d = expected_decision(symbol, forecast, row, position, equity, config.task, config.policy,
                          answer["forecast_age_seconds"], bot_triggers=bot)
    return {"hedge_ratio": d.hedge_ratio, "current_hedge_ratio": d.current_hedge_ratio,
            "instrument": d.hedge_instrument, "hedge_notional": d.hedge_notional,
            "leverage_cap": d.leverage_cap, "size_cap": d.size_cap_notional,
            "liquidation_price": d.liquidation_price, "risk_score": d.risk_score,
            "action": d.action, "reasons": d.reasons, "fail_safe": d.fail_safe}


def test_served_decisions_equal_decide_on_the_served_forecast(tmp_path: Path,
                                                              server_factory) -> None:
    symbols = tuple(NEWEST)
    pipeline = pipeline_file(tmp_path, symbols=symbols, references=("BTC", "ETH"), policy=POLICY)
    newest_rows = {}
    for i, (symbol, (trig, cross)) in enumerate(NEWEST.items()):
        make_bundle(tmp_path / "models" / symbol, seed=50, symbol=symbol)  # one model, per symbol
        features = synthetic_features(100, fresh_end(), seed=51 + i)
        for name, value in trig.items():
            features.loc[features.index[-1], TRIGGERS[name]] = value
        for (ref, window), (beta, corr) in cross.items():
            features.loc[features.index[-1], beta_column(ref, window)] = beta
            features.loc[features.index[-1], corr_column(ref, window)] = corr
        write_features(tmp_path, features, symbol)
        newest_rows[symbol] = (features.index[-1], features.iloc[-1].to_dict())
    assert all(r.ok for r in run_score(pipeline))
    config = load_pipeline(pipeline)

    server = server_factory(pipeline).start()
    compared: list[dict] = []
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        for i, symbol in enumerate(symbols):
            forecast = http.get(f"/v1/forecasts/{symbol}").json()
            ts, row = newest_rows[symbol]
            assert pd.Timestamp(forecast["timestamp"]) == ts  # the bar whose triggers we set
            for body in _positions(25, seed=60 + i):
                answer = http.post("/v1/decisions", json={"symbol": symbol, **body})
                assert answer.status_code == 200, answer.text
                got = answer.json()
                want = _expected(symbol, body, forecast, row, got, config)
                assert {k: got[k] for k in want} == want, (symbol, body)
                compared.append(want)
    assert len(compared) == 75
    # the answers exercise what could go wrong: feature triggers, proxy hedges, both sides
    assert sum("trigger(s)" in w["reasons"][0] for w in compared) >= 40
    assert {w["instrument"] for w in compared} == {"same_perp", "BTC", "ETH"}
    assert not any(w["fail_safe"] for w in compared)
    # the service judges each forecast against its perp's own trailing vol, the newest feature
    # row's rv_720h annualised (sqrt(rv * 8760 / 720), by hand here), not the fixed reference
    for k, symbol in enumerate(symbols):
        rv = newest_rows[symbol][1]["rv_720h"]
        reference = f"its own trailing reference ({math.sqrt(rv * 8760 / 720):.0%} a year)"
        assert all(reference in w["reasons"][0] for w in compared[25 * k:25 * (k + 1)]), symbol
    # forecasts below and around that reference: not every hedge at the band's 70 % top
    hedges = [w["hedge_ratio"] for w in compared]
    assert all(0.3 - 1e-12 <= h <= 0.7 + 1e-12 for h in hedges)
    assert sum(h < 0.7 - 1e-9 for h in hedges) >= 25
    assert len({round(h, 6) for h in hedges}) >= 2
