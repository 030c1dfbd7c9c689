"""The same-size static hedge (``static_sized*``): a policy's own plan (main leg, size cap, stop,
fail-safe) with its hedge held at the policy's mean hedge, checked by hand and bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from cascade_ml.backtest.engine import simulate
from cascade_ml.backtest.simulate_all import mean_held_hedge, mean_size
from cascade_ml.backtest.strategies import MATCHED, SIZED, Plan, with_static_hedge
from cascade_ml.policy import PolicyConfig

FREE = PolicyConfig(taker_fee=0.0, maker_fee=0.0, spread=0.0)  # no costs: numbers by hand


def _sim(plan: Plan, close, policy: PolicyConfig = FREE, high=None, low=None):
    c = np.asarray(close, dtype=float)
    h = c if high is None else np.asarray(high, dtype=float)
    lo = c if low is None else np.asarray(low, dtype=float)
    return simulate(c, h, lo, c, np.zeros(len(c)), plan.target_leverage, plan.target_hedge,
                    plan.sigma_h, plan.cascade_prob, side="long", tiers=policy.default_tiers,
                    policy=policy, initial_equity=10_000.0, margin_fraction=0.5,
                    **plan.engine)


def _plan(hedge, lpn: float = 0.1, **engine) -> Plan:
    n = len(hedge)
    return Plan(np.full(n, 5.0), np.asarray(hedge, dtype=float), np.full(n, 0.05),
                np.full(n, 0.1), {"loss_per_notional": np.full(n, lpn), "stops": False,
                                  **engine})


def test_names_follow_the_matched_statics_one_per_feed() -> None:
    assert SIZED == {"static_sized": "model_policy", "static_sized_har": "har_policy",
                     "static_sized_ewma": "ewma_policy", "static_sized_oracle": "oracle_policy"}
    assert set(SIZED.values()) == set(MATCHED.values())


def test_same_size_static_holds_the_hand_computed_mean_hedge_on_the_same_main_leg() -> None:
    # 5x wanted on a 5,000 margin, but the 2 % rule allows 0.02 x 10,000 / 0.1 = 2,000 of
    # notional; fail-safe on the first two bars (no forecast yet: no position may open), then
    # the policy holds 30 % for three bars and 70 % for three, price flat then +10 %
    close = [100.0] * 5 + [110.0] * 3
    safe = np.array([True, True] + [False] * 6)
    plan = _plan([0.7, 0.7, 0.3, 0.3, 0.3, 0.7, 0.7, 0.7], no_new_exposure=safe)
    pol = _sim(plan, close)
    assert pol.notional[:2].tolist() == [0.0, 0.0]
    assert pol.hedge.tolist() == pytest.approx([0.0, 0.0, 0.3, 0.3, 0.3, 0.7, 0.7, 0.7])
    # the mean over the six bars it holds a position: (3 x 0.3 + 3 x 0.7) / 6 = 0.5 (over all
    # eight bars, flat ones as 0, it would be 3 / 8: what static_matched holds)
    assert mean_held_hedge(pol) == pytest.approx(0.5)
    assert mean_size(pol)[1] == pytest.approx(3.0 / 8)
    static = with_static_hedge(plan, mean_held_hedge(pol), 1.0)
    np.testing.assert_array_equal(static.target_leverage, plan.target_leverage)
    np.testing.assert_array_equal(static.engine["loss_per_notional"],
                                  plan.engine["loss_per_notional"])
    np.testing.assert_array_equal(static.engine["no_new_exposure"], safe)
    st = _sim(static, close)
    # flat where the policy is flat, then 50 %: the same average hedge over the span
    assert st.hedge.tolist() == pytest.approx([0.0, 0.0] + [0.5] * 6)
    assert np.mean(st.hedge) == pytest.approx(np.mean(pol.hedge))
    # the same main leg while the states are the same (flat price): 2,000 each
    assert st.notional[:5].tolist() == pytest.approx([0.0, 0.0] + [2_000.0] * 3)
    assert pol.notional[:5].tolist() == pytest.approx([0.0, 0.0] + [2_000.0] * 3)
    # +10 %: main leg +200 on 20 units; the hedge loses 10 x its units (6 for the policy at
    # 30 %, 10 for the static at 50 %); each is cut back to 2 % of its own equity / 0.1
    assert pol.equity[5] == pytest.approx(10_000 + 200 - 60)
    assert st.equity[5] == pytest.approx(10_000 + 200 - 100)
    assert pol.notional[5] == pytest.approx(0.02 * 10_140 / 0.1)
    assert st.notional[5] == pytest.approx(0.02 * 10_100 / 0.1)


def test_a_constant_hedge_gives_a_same_size_static_identical_to_the_policy() -> None:
    # a path with stops and fail-safe bars: a 60 % policy hedge held at 60 % changes nothing
    rng = np.random.default_rng(5)
    n = 400
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    high, low = close * 1.01, close * 0.97
    low[[200, 300]] *= 0.7  # two wicks through the stop (20 % away: 2 % / (0.25 x 0.4))
    safe = np.zeros(n, dtype=bool)
    safe[150:160] = True
    pol_cfg = PolicyConfig()
    plan = _plan(np.full(n, 0.6), lpn=0.08, stops=True, no_new_exposure=safe,
                 hedge_r2=np.full(n, pol_cfg.same_perp_effectiveness))
    a = _sim(plan, close, pol_cfg, high, low)
    assert len(a.stop_bars) > 0  # the stop state matters on this path
    # flat after each stop, yet the mean over the bars it holds a position is its 60 % exactly
    assert (a.notional == 0).any() and mean_held_hedge(a) == 0.6
    b = _sim(with_static_hedge(plan, mean_held_hedge(a), pol_cfg.same_perp_effectiveness),
             close, pol_cfg, high, low)
    for x, y in ((a.equity, b.equity), (a.notional, b.notional), (a.hedge, b.hedge),
                 (a.leverage, b.leverage)):
        np.testing.assert_array_equal(x, y)
    assert a.stop_bars == b.stop_bars and a.fees == b.fees


def test_the_static_hedges_the_perp_itself_and_keeps_no_decision_bars() -> None:
    n = 4
    plan = _plan([0.3, np.nan, 0.7, 0.7], hedge_instrument=np.array([1, 1, 0, 2]),
                 hedge_beta=np.full(n, 1.3), hedge_r2=np.array([0.85, 0.85, 0.9, 0.82]))
    st = with_static_hedge(plan, 0.45, 0.9)
    assert "hedge_instrument" not in st.engine and "hedge_beta" not in st.engine
    assert st.engine["hedge_r2"].tolist() == [0.9] * n
    assert st.target_hedge[0] == 0.45 and np.isnan(st.target_hedge[1])
    assert st.target_hedge[2:].tolist() == [0.45, 0.45]
    # the plan it came from is left as it was
    assert plan.engine["hedge_instrument"].tolist() == [1, 1, 0, 2]


def test_run_strategies_static_sized_is_the_feed_policy_with_its_mean_hedge(
        near_ohlcv, near_funding, trailing_preds, labels) -> None:
    from cascade_ml.backtest.config import BacktestConfig
    from cascade_ml.backtest.data import align
    from cascade_ml.backtest.simulate_all import run_strategies
    from cascade_ml.trading.config import TradingConfig

    data = align(near_ohlcv, trailing_preds, horizon=24, funding=near_funding, labels=labels)
    # shrunk all the way to the band's midpoint, no stops: the model-fed policy's hedge is 50 %
    # on every bar, so its same-size static is that policy itself, bit for bit
    cfg = PolicyConfig(objective_weight=0.0)
    bt = BacktestConfig(strategies=["unhedged", "capped_unhedged", "static_sized",
                                    "oracle_policy", "static_sized_oracle"],
                        proxy_hedges=False, feed_objective_weight={"oracle": 1.0})
    trading = TradingConfig(stops=False)
    runs = run_strategies(data, bt, cfg, "NEAR", "long", trading=trading)
    assert list(runs) == bt.strategies  # model_policy runs for its static, is not reported
    st = runs["static_sized"]
    assert (st.plan.target_hedge == 0.5).all()
    pol = run_strategies(data, bt.model_copy(update={"strategies": ["unhedged",
                                                                    "model_policy"]}),
                         cfg, "NEAR", "long", trading=trading)["model_policy"]
    assert (pol.plan.target_hedge == 0.5).all()
    for key in ("equity", "notional", "hedge", "leverage"):
        np.testing.assert_array_equal(getattr(st.result, key), getattr(pol.result, key))
    # the oracle-fed policy (weight 1) moves its hedge; its static holds the oracle run's mean
    # hedge on the oracle's main-leg plan, and is measured against the oracle's own position
    # without the hedge
    o, so = runs["oracle_policy"], runs["static_sized_oracle"]
    assert o.result.hedge.max() - o.result.hedge.min() >= 0.2
    held = o.result.notional > 0
    assert held.all()  # no stops here: the oracle holds a position on every bar
    assert (so.plan.target_hedge == o.metrics["mean_hedge"]).all()
    np.testing.assert_array_equal(so.plan.target_leverage, o.plan.target_leverage)
    np.testing.assert_array_equal(so.plan.engine["loss_per_notional"],
                                  o.plan.engine["loss_per_notional"])
    np.testing.assert_array_equal(so.capped, o.capped)
    assert so.metrics["mean_hedge"] == pytest.approx(o.metrics["mean_hedge"])
