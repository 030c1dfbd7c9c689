"""Strategies on a real NEAR slice; the vectorised policy equals decide() row by row."""

from __future__ import annotations

import numpy as np
import pytest

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import align
from cascade_ml.backtest.simulate_all import run_strategies
from cascade_ml.backtest.strategies import Signals, policy_targets
from cascade_ml.policy import PolicyConfig, PolicyInputs, decide
from cascade_ml.trading.config import TradingConfig

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
    bt = BacktestConfig()
    runs = run_strategies(data, bt, CFG, "NEAR", "long", trading=TradingConfig(leverage=5.0))
    m = {k: v.metrics for k, v in runs.items()}
    assert set(m) == set(bt.strategies)
    for metrics in m.values():
        assert all(np.isfinite(v) for k, v in metrics.items() if k != "sortino")
        assert metrics["fees_paid"] > 0 and metrics["funding_paid"] != 0
    # the 2025-10-10 crash liquidates the 5x unhedged long, not the model policy
    assert m["unhedged"]["liquidations"] >= 1
    # without liquidations (2x), a 50% hedge at the same leverage about halves the volatility
    low = run_strategies(data, bt, CFG, "NEAR", "long", trading=TradingConfig(leverage=2.0))
    assert low["unhedged"].metrics["liquidations"] == 0
    ratio = low["static_hedge"].metrics["ann_vol"] / low["unhedged"].metrics["ann_vol"]
    assert 0.4 < ratio < 0.6
    assert m["unhedged"]["upside_capture"] == pytest.approx(1.0)
    assert m["model_policy"]["liquidations"] <= m["unhedged"]["liquidations"]
    pol = runs["model_policy"].result
    held = pol.notional > 0
    assert held.mean() > 0.5  # flat only after a stop, for the cooldown
    assert np.all(pol.hedge[held] >= 0.30 - 1e-9)  # the seed's 30-70 % band
    assert np.all(pol.hedge <= 0.70)
    # the size cap holds the policy far below the bot's 5x: exposure = notional / equity
    assert m["model_policy"]["mean_exposure"] < 0.5 * m["unhedged"]["mean_exposure"]
    # static_matched: the model policy's average size and hedge, held fixed
    assert m["static_matched"]["mean_leverage"] == pytest.approx(
        m["model_policy"]["mean_leverage"], rel=0.1)
    assert m["static_matched"]["turnover"] < m["model_policy"]["turnover"]


@pytest.mark.parametrize("cfg", [CFG, PolicyConfig(same_perp_effectiveness=0.5,
                                                    min_cross_hedge_r2=0.4,
                                                    vol_reference="trailing"),
                                 PolicyConfig(objective_weight=0.4, static_hedge=0.45)])
def test_vectorised_policy_matches_decide(data, cfg) -> None:
    # decide reads the forecast it is given: both read each bar's forecast as it is (half-life
    # 0); the smoothed one's parity is tests/forecasting/test_forecast_smoothing.py's
    cfg = cfg.model_copy(update={"forecast_halflife_bars": 0.0})
    rng = np.random.default_rng(1)
    sig = data.signals
    sigma = sig.sigma_h.copy()
    prob = sig.cascade_prob.copy()
    sigma[:5] = [np.nan, -0.1, 5.0, 0.04, 0.04]
    prob[:5] = [0.1, 0.1, 0.1, 1.5, np.nan]
    n = len(sigma)
    fired = rng.integers(0, 4, n).astype(float)
    cross = {"beta_btc": rng.uniform(-0.5, 2, n), "r2_btc": rng.uniform(0, 1, n),
             "beta_eth": rng.uniform(0.2, 2, n), "r2_eth": rng.uniform(0, 1, n)}
    cross["beta_eth"][::7] = np.nan
    trailing = rng.uniform(0.3, 1.5, n)
    trailing[::5] = np.nan
    sig2 = Signals(sigma, prob, fired, 24.0)
    notional, equity = 25_000.0, 10_000.0
    t = policy_targets(sig2, "long", notional, cfg.tiers_for("NEAR"), cfg,
                       trailing_vol_annual=trailing, cross=cross)
    rows = [*range(5), *rng.choice(n, 60, replace=False)]
    names = ["funding_divergence", "sentiment_spike", "volume_breakdown"]

    def num(x: float) -> float | None:
        return None if np.isnan(x) else float(x)

    for i in rows:
        inputs = PolicyInputs.model_validate({
            "forecast": {"sigma_h": num(sigma[i]), "cascade_prob": num(prob[i]),
                         "horizon_hours": 24},
            "triggers": {n: k < fired[i] for k, n in enumerate(names)},
            "cross_asset": {k: num(v[i]) for k, v in cross.items()},
            "trailing_vol_annual": num(trailing[i]),
            "position": {"side": "long", "notional": notional, "entry_price": 5, "mark_price": 5,
                         "leverage": 1},
            "equity": equity, "freshness": {"forecast_age_s": 0, "features_age_s": 0}})
        d = decide(inputs, cfg)
        assert d.fail_safe == bool(t["fail_safe"][i])
        assert d.hedge_ratio == pytest.approx(t["hedge"][i])
        assert d.leverage_cap == pytest.approx(t["cap"][i])
        assert d.hedge_instrument == ("same_perp", "BTC", "ETH")[t["instrument"][i]]
        assert d.hedge_beta == pytest.approx(t["beta"][i])
        # the engine's size cap: risk budget over loss per notional, the leverage cap on the
        # equity, and no new exposure when failing safe
        cap = min(0.02 * equity / t["loss_per_notional"][i],  # the 2 % rule
                  t["cap"][i] * equity, notional if t["fail_safe"][i] else np.inf)
        assert d.size_cap_notional == pytest.approx(cap)


def test_each_feed_is_compared_with_its_own_matched_static_hedge(data) -> None:
    """static_matched_<feed> holds <feed>_policy's own mean leverage and hedge (the oracle's,
    not the model's); static_matched keeps holding the model policy's."""
    bt = BacktestConfig(strategies=["oracle_policy", "har_policy", "model_policy",
                                    "static_matched", "static_matched_oracle",
                                    "static_matched_har"])
    runs = run_strategies(data, bt, CFG, "NEAR", "long", trading=TradingConfig(leverage=5.0))
    for static, policy in (("static_matched", "model_policy"),
                           ("static_matched_oracle", "oracle_policy"),
                           ("static_matched_har", "har_policy")):
        s, p = runs[static].result, runs[policy].result
        target = float(np.mean(p.hedge))
        held = s.notional > 0
        assert np.allclose(s.hedge[held], target)  # one hedge ratio, the policy's mean
        assert runs[static].metrics["mean_leverage"] == pytest.approx(
            runs[policy].metrics["mean_leverage"], rel=0.1)
    # the oracle hedges differently from the model, so the two statics differ
    assert runs["static_matched_oracle"].metrics["mean_hedge"] != pytest.approx(
        runs["static_matched"].metrics["mean_hedge"], abs=1e-3)


def test_a_matched_static_alone_brings_its_policy_without_reporting_it(data) -> None:
    bt = BacktestConfig(strategies=["static_matched_oracle"])
    runs = run_strategies(data, bt, CFG, "NEAR", "long", trading=TradingConfig(leverage=5.0))
    assert set(runs) == {"static_matched_oracle"}
