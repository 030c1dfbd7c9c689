"""Every stored decision is ``decide`` on that row's stored forecast and its bar's feature row
(sigma = the forecast vol, the bar's triggers, betas at policy.proxy_window), for many rows of
several symbols; not merely a value in range."""

from __future__ import annotations

from pathlib import Path

from decision_oracle import expected_decision
from demo_data import fresh_end, make_bundle, run_score, synthetic_features, write_features
from demo_data import write_pipeline as pipeline_file

from cascade_ml.config import load_pipeline
from cascade_ml.contracts.layout import features_path, scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.policy.schemas import Position

SYMBOLS = ("NEAR", "SOL")
# A proxy hedge can win (same perp 0.85 < R^2 of a 0.93+ correlation) at the 720 h window only
# (the 168 h columns hold other values), and a reference vol and objective (gamma 0.08, a
# 3-horizon hold) that spread hedges across the band. Each row's forecast read as it is
# (half-life 0): the smoothed one is tested in test_scoring_smoothing.py.
POLICY = {"proxy_window": 720, "same_perp_effectiveness": 0.85, "vol_reference_annual": 2.0,
          "forecast_halflife_bars": 0.0, "risk_aversion": 0.08, "holding_horizons": 3.0}


def test_stored_decisions_equal_decide_on_the_stored_forecasts(tmp_path: Path) -> None:
    pipeline = pipeline_file(tmp_path, symbols=SYMBOLS, references=("BTC", "ETH"),
                             policy=POLICY, score_rows=80)
    for symbol in SYMBOLS:
        make_bundle(tmp_path / "models" / symbol, seed=40, symbol=symbol)
    for i, symbol in enumerate(SYMBOLS):
        write_features(tmp_path, synthetic_features(200, fresh_end(), seed=41 + i), symbol)
    assert all(r.ok for r in run_score(pipeline))

    config = load_pipeline(pipeline)
    task, policy, scoring = config.task, config.policy, config.scoring
    store = MarketStore(tmp_path / "store")
    position = Position(side=task.side, notional=scoring.default_position_notional,
                        entry_price=1.0, mark_price=1.0, leverage=1.0, hedge_ratio=0.0)
    seen: list = []
    for symbol in SYMBOLS:
        scores = store.read_table(scores_path(symbol))
        features = store.read_table(features_path(symbol))
        assert len(scores) == 80
        for ts, stored in scores.iterrows():
            want = expected_decision(symbol, stored.to_dict(), features.loc[ts].to_dict(),
                                     position, position.notional, task, policy, age=0.0)
            got = (stored["hedge_ratio"], stored["hedge_instrument"], stored["leverage_cap"],
                   stored["size_cap"], stored["action"], bool(stored["fail_safe"]),
                   stored["reasons"])
            assert got == (  # the same computation on the same float64s: exactly equal
                want.hedge_ratio, want.hedge_instrument, want.leverage_cap,
                want.size_cap_notional, want.action, want.fail_safe, " | ".join(want.reasons)
            ), (symbol, ts)
            seen.append(want)
    # the rows exercise what could go wrong: fired triggers, proxy hedges, a spread of hedges
    assert sum("trigger(s)" in d.reasons[0] for d in seen) >= 20
    assert {d.hedge_instrument for d in seen} >= {"same_perp", "BTC", "ETH"}
    # the objective rule sits on a band edge often (30 % or 70 %); the rest spread inside it
    hedges = {round(d.hedge_ratio, 6) for d in seen}
    assert len(hedges) >= 8 and {0.3, 0.7} <= hedges
    assert not any(d.fail_safe for d in seen)
