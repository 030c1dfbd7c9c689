"""A position that opens from flat takes the bar's target hedge (backtest = live).

Under the ``objective`` rule the held hedge moves to the target only when the move pays; live,
a flat position's hedge ratio is 0, outside the 30-70 % band, so ``decide`` moves it to the
target whatever the cost. The engine restarts the held path there (first entry after fail-safe
bars, re-entry after a stop); a position held throughout keeps the precomputed path, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.engine import simulate
from cascade_ml.backtest.strategies import Plan, Signals, strategy_plan
from cascade_ml.policy import PolicyConfig
from cascade_ml.trading.config import TradingConfig

# objective weight 0: every forecast bar's target is the static 50 %, the fail-safe's 70 %.
# Moving a held 70 % to 50 % gains 0.2 x A/2 x 0.2 = 0.02 A (A = gamma v ~ 0.04 x 0.5 at a 3 %
# daily forecast) ~ 4e-4 and costs 0.2 x 2 x 6 bp / 0.042 (the reference vol over 24 h) ~
# 6e-3: it never pays, so a position held through a fail-safe bar keeps 70 %.
STATIC = PolicyConfig(objective_weight=0.0)
BT = BacktestConfig(strategies=["model_policy"])


def _plan(sigma: np.ndarray, policy: PolicyConfig = STATIC, cooldown: int = 2) -> Plan:
    n = len(sigma)
    trading = TradingConfig(stop_cooldown_bars=cooldown)
    sig = Signals(sigma, np.full(n, 0.02), np.zeros(n), 24.0)
    plan = strategy_plan("model_policy", sig, BT, trading, policy, policy.default_tiers,
                         trading.nominal_notional(), "long")
    assert plan is not None
    return plan


def _sim(plan: Plan, close: np.ndarray, low: np.ndarray | None = None,
         policy: PolicyConfig = STATIC, cooldown: int = 2, hold: bool = True):
    engine = dict(plan.engine)
    if not hold:
        engine.pop("hedge_hold")
    lo = close if low is None else low
    return simulate(close, close, lo, close, np.zeros(len(close)), plan.target_leverage,
                    plan.target_hedge, plan.sigma_h, plan.cascade_prob, side="long",
                    tiers=policy.default_tiers, policy=policy, stop_cooldown=cooldown, **engine)


def test_a_position_opening_after_fail_safe_bars_takes_the_target_not_the_fail_safe_hedge() -> None:
    # three bars without a forecast (fail-safe: flat, hedge 70 %), then a 50 % target
    sigma = np.array([np.nan] * 3 + [0.03] * 5)
    plan = _plan(sigma)
    assert plan.decisions["fail_safe"].tolist() == [True] * 3 + [False] * 5
    assert plan.decisions["hedge"].tolist() == [0.7] * 3 + [0.5] * 5
    # a position held throughout would keep 70 % (the move back does not pay) ...
    assert plan.target_hedge.tolist() == [0.7] * 8
    r = _sim(plan, np.full(8, 100.0))
    # ... but this one is flat until bar 3 and opens there at the bar's 50 %
    assert r.notional[:3].tolist() == [0.0] * 3 and (r.notional[3:] > 0).all()
    assert r.hedge.tolist() == [0.0] * 3 + [0.5] * 5


def test_a_re_entry_after_a_stop_restarts_from_the_re_entry_bar_target() -> None:
    # forecasts from bar 0 (50 %), a fail-safe bar at 4 (the held position moves to 70 % and
    # keeps it: the move back does not pay), a wick through the stop at bar 7, flat for the
    # 2-bar cooldown, re-entry at bar 9 at the bar's 50 % target (live: 0 -> target)
    sigma = np.full(12, 0.03)
    sigma[4] = np.nan
    plan = _plan(sigma)
    close = np.full(12, 100.0)
    low = close.copy()
    low[7] = 40.0
    r = _sim(plan, close, low)
    assert r.stop_bars == [7]
    assert r.hedge.tolist() == [0.5] * 4 + [0.7] * 3 + [0.0] * 2 + [0.5] * 3
    assert (r.notional[9:] > 0).all()
    # without the restart (the old path) it reopened at the 70 % held before the stop
    old = _sim(plan, close, low, hold=False)
    assert old.hedge[9:].tolist() == [0.7] * 3


def test_a_position_held_throughout_keeps_the_precomputed_path_bit_for_bit() -> None:
    # a moving forecast (the objective's own hedge, weight 1): the held path differs from the
    # target on many bars; the position opens at bar 0 and is never flat again
    rng = np.random.default_rng(3)
    n = 600
    policy = PolicyConfig()
    sigma = 0.03 * np.exp(np.cumsum(rng.normal(0, 0.08, n)))
    plan = _plan(sigma, policy, cooldown=24)
    assert (plan.target_hedge != plan.decisions["hedge"]).sum() > 50
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    a = _sim(plan, close, policy=policy, cooldown=24)
    b = _sim(plan, close, policy=policy, cooldown=24, hold=False)
    assert (a.notional > 0).all() and a.stop_bars == []
    for name in ("equity", "hedge", "notional", "leverage", "pnl", "cum_costs"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.fees, a.funding, a.trades) == (b.fees, b.funding, b.trades)


def test_the_hold_path_from_a_bar_holding_its_target_is_the_tail_of_the_whole_path() -> None:
    # the rule reads only the hedge held: restarted where held == target, nothing changes
    rng = np.random.default_rng(4)
    # a forecast swinging around the reference vol, unsmoothed: the held hedge moves often
    sigma = 0.04 * np.exp(0.8 * np.sin(np.arange(400) / 10) + rng.normal(0, 0.1, 400))
    plan = _plan(sigma, PolicyConfig(forecast_halflife_bars=0))
    hold = plan.engine["hedge_hold"]
    whole = hold.path()
    assert whole == plan.target_hedge.tolist()
    at = [i for i in range(1, 400) if whole[i] == hold.target[i] and whole[i - 1] != whole[i]]
    assert len(at) >= 10
    for i in at:
        assert hold.path(i) == whole[i:]
    # restarted where they differ, it takes that bar's target
    off = next(i for i in range(400) if whole[i] != hold.target[i])
    assert hold.path(off)[0] == pytest.approx(float(hold.target[off]))
