"""Strategies on a real NEAR slice; the vectorised policy equals decide() row by row."""

from __future__ import annotations

import numpy as np
import pytest

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import align
from cascade_ml.backtest.simulate_all import run_strategies
from cascade_ml.backtest.strategies import Signals, policy_targets
from cascade_ml.policy import PolicyConfig, PolicyInputs, decide

CFG = PolicyConfig()


@pytest.fixture(scope="module")
def data(near_ohlcv, near_funding, trailing_preds, labels):
    return align(near_ohlcv, trailing_preds, horizon=24, funding=near_funding, labels=labels)


def test_alignment_uses_settlements_at_bar_close(data, near_funding) -> None:
    assert len(data.index) == len(data.signals.sigma_h) == len(data.funding_rate)
    paid = data.funding_rate != 0
    # Binance settles every 8 h: rates land on the bars that close at 00/08/16 UTC
    assert set((data.index[paid] + np.timedelta64(1, "h")).hour) <= {0, 8, 16}
    assert paid.sum() == pytest.approx(len(data.index) / 8, abs=2)
    assert data.funding_coverage > 0.99 and data.forecast_coverage == 1.0


def test_strategies_on_real_prices(data) -> None:
    bt = BacktestConfig(leverage=5.0)
    runs = run_strategies(data, bt, CFG, "NEAR")
    m = {k: v.metrics for k, v in runs.items()}
    assert set(m) == set(bt.strategies)
    for metrics in m.values():
        assert all(np.isfinite(v) for k, v in metrics.items() if k != "sortino")
        assert metrics["fees_paid"] > 0 and metrics["funding_paid"] != 0
    # the 2025-10-10 crash liquidates the 5x unhedged long, not the model policy
    assert m["unhedged"]["liquidations"] >= 1
    # without liquidations (2x), a 50% hedge at the same leverage about halves the volatility
    low = run_strategies(data, BacktestConfig(leverage=2.0), CFG, "NEAR")
    assert low["unhedged"].metrics["liquidations"] == 0
    ratio = low["static_hedge"].metrics["ann_vol"] / low["unhedged"].metrics["ann_vol"]
    assert 0.4 < ratio < 0.6
    assert m["unhedged"]["upside_capture"] == pytest.approx(1.0)
    assert m["model_policy"]["liquidations"] <= m["unhedged"]["liquidations"]
    pol = runs["model_policy"].result
    assert np.all(pol.hedge[1:] >= CFG.hedge_min - 1e-9) and np.all(pol.hedge <= CFG.hedge_max)


def test_vectorised_policy_matches_decide(data) -> None:
    rng = np.random.default_rng(1)
    sig = data.signals
    sigma = sig.sigma_h.copy()
    prob = sig.cascade_prob.copy()
    sigma[:5] = [np.nan, -0.1, 5.0, 0.04, 0.04]
    prob[:5] = [0.1, 0.1, 0.1, 1.5, np.nan]
    fired = rng.integers(0, 4, len(sigma)).astype(float)
    sig2 = Signals(sigma, prob, fired, 24.0)
    notional = 25_000.0
    t = policy_targets(sig2, "long", notional, CFG.tiers_for("NEAR"), CFG)
    rows = [*range(5), *rng.choice(len(sigma), 60, replace=False)]
    names = ["funding_divergence", "sentiment_spike", "volume_breakdown"]
    for i in rows:
        inputs = PolicyInputs.model_validate({
            "forecast": {"sigma_h": None if np.isnan(sigma[i]) else sigma[i],
                         "cascade_prob": None if np.isnan(prob[i]) else prob[i],
                         "horizon_hours": 24},
            "triggers": {n: k < fired[i] for k, n in enumerate(names)},
            "position": {"side": "long", "notional": notional, "entry_price": 5, "mark_price": 5,
                         "leverage": 1},
            "equity": 10_000, "freshness": {"forecast_age_s": 0, "features_age_s": 0}})
        d = decide(inputs, CFG)
        assert d.fail_safe == bool(t["fail_safe"][i])
        assert d.hedge_ratio == pytest.approx(t["hedge"][i])
        assert d.leverage_cap == pytest.approx(t["cap"][i])
