"""The trading core's same-perp liquidation check by hand (NEAR brackets of REFERENCES.md).

Hedge mode: both legs carry their own maintenance margin on one isolated bucket, so the
bucket's equity less maintenance margin is linear in the price,
``f(x) = B - q_net p0 + cum + (q_net - M) x`` with ``M = long mmr_l + short mmr_s``. Its slope
decides the side: a long hedged above ``(1 - mmr) / (1 + mmr)`` (98.0 % at 1 %, 96.1 % at 2 %)
can only be liquidated by a *rise*. The old check read only the low for any net long and took
such a hedge as liquidated on its next bar.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cascade_ml.backtest.engine import simulate
from cascade_ml.policy.config import NEAR_TIERS, PolicyConfig
from cascade_ml.trading import core
from cascade_ml.trading.margin import Tiers, liquidation_bounds

FREE = PolicyConfig(taker_fee=0.0, spread=0.0)
RULES = core.CoreRules.of(FREE, leverage_tolerance=0.1, stop_cooldown=24)
T = Tiers(NEAR_TIERS)


def position(bucket: float, main_q: float, hedge_q: float, side: str = "long"
             ) -> core.PositionState:
    ps = core.PositionState(0, side)
    ps.bucket, ps.main_q, ps.hedge_q = bucket, main_q, hedge_q
    ps.entry = 5.0
    return ps


def settle(ps: core.PositionState, low: float, high: float, close: float | None = None) -> int:
    """Bar 1 after a close at 5.0: opens at 5.0, ranges over [low, high]."""
    close = (low + high) / 2 if close is None else close
    status = core.settle(ps, 1, [[5.0, 5.0]], [[5.0, high]], [[5.0, low]], [[5.0, close]],
                         [[0.0, 0.0]], [T], RULES)[0]
    return status


def test_98_percent_hedge_at_5x_in_the_2_percent_bracket_survives_a_1_percent_bar() -> None:
    # 40,000 NEAR at 5 = 200k (2 %, cum 550) on 40,000 margin (5x); hedge 39,200 (196k, 2 %):
    # q_net 800, M = 0.02 x 79,200 = 1,584, f(x) = 40,000 - 4,000 + 1,100 - 784 x
    assert liquidation_bounds(40_000, 39_200, 40_000.0, 5.0, T) == pytest.approx(
        (-math.inf, 37_100 / 784))  # 47.32: a rise of 846 %, never a fall
    assert settle(position(40_000.0, 40_000, 39_200), 4.95, 5.05) == core.HELD
    assert settle(position(40_000.0, 40_000, 39_200), 4.95, 47.33) == core.LIQUIDATED


def test_98_percent_hedge_in_the_1_percent_bracket_is_below_the_edge() -> None:
    # 1,000 at 5 on 1,000 (5x, 1 %), hedge 980: slope 20 - 19.8 = 0.2 > 0, level 900:
    # liquidated at -4,500 on the way down, i.e. never
    assert liquidation_bounds(1_000, 980, 1_000.0, 5.0, T) == pytest.approx((-4_500, math.inf))
    assert settle(position(1_000.0, 1_000, 980), 4.95, 5.05) == core.HELD


def test_100_percent_hedge_with_the_fee_sizing_residue_is_not_liquidated() -> None:
    # hedge = main x (1 - 1e-12): a net long of 1e-9 that the old check took as liquidated
    # (its "liquidation price" lay at 50, above the market); slope -20, level 1,000
    ps = position(1_000.0, 1_000, 1_000 * (1 - 1e-12))
    low, high = liquidation_bounds(1_000, 1_000 * (1 - 1e-12), 1_000.0, 5.0, T)
    assert low == -math.inf and high == pytest.approx(50.0)
    assert settle(ps, 4.95, 5.05) == core.HELD
    assert ps.bucket == pytest.approx(1_000.0)


def test_a_full_hedge_is_liquidated_only_when_the_price_rises_tenfold() -> None:
    # exactly flat: f(x) = 1,000 - 0.01 x 2,000 x = 0 at x = 50
    assert settle(position(1_000.0, 1_000, 1_000), 0.5, 49.9) == core.HELD
    assert settle(position(1_000.0, 1_000, 1_000), 4.95, 50.0) == core.LIQUIDATED


def test_half_hedge_is_liquidated_when_the_low_crosses_its_price() -> None:
    # 1,000 long at 5 (1 %), 500 short (1 %), bucket 1,000: slope 500 - 15 = 485,
    # level 1,000 - 2,500 = -1,500: liquidation at 1,500 / 485 = 3.0928
    assert liquidation_bounds(1_000, 500, 1_000.0, 5.0, T)[0] == pytest.approx(3.092784, 1e-6)
    assert settle(position(1_000.0, 1_000, 500), 3.09, 5.0, 3.09) == core.LIQUIDATED
    assert settle(position(1_000.0, 1_000, 500), 3.10, 5.0, 3.10) == core.HELD


def test_net_short_mirror() -> None:
    # short 1,000 at 5, long hedge 500, bucket 1,000: slope -500 - 15 = -515,
    # level 1,000 + 2,500 = 3,500: liquidated when the high reaches 3,500 / 515 = 6.7961
    ps = position(1_000.0, 1_000, 500, side="short")
    assert liquidation_bounds(500, 1_000, 1_000.0, 5.0, T)[1] == pytest.approx(6.796117, 1e-6)
    assert settle(ps, 5.0, 6.80, 6.80) == core.LIQUIDATED
    assert settle(position(1_000.0, 1_000, 500, side="short"), 5.0, 6.79, 6.79) == core.HELD
    # a short fully hedged with the residue on the long side (net long 1e-9): not liquidated
    full = position(1_000.0, 1_000, 1_000 * (1 + 1e-12), side="short")
    assert settle(full, 4.95, 5.05) == core.HELD


def test_stop_of_a_near_full_hedge_sits_below_the_entry() -> None:
    # 98 % hedged 200k long (the first test's bucket): no liquidation below, so the stop is the
    # 2 % rule's alone: loss 1,600 on exposure 0.02 x 200,000 = 4,000 -> 40 % below 5 = 3.0
    # (the old liquidation price above the market put the stop above the entry)
    ps = position(40_000.0, 40_000, 39_200)
    ps.h_cur, ps.hr2 = 0.98, 1.0
    assert core.stop_price(ps, [T], 5.0, 1_600.0, 0.5) == pytest.approx(3.0)


@pytest.mark.parametrize("hedge", [0.98, 0.99, 1.0])
def test_static_near_full_hedge_at_5x_survives_1_percent_bars(hedge: float) -> None:
    close = np.array([5.0, 5.05, 5.0, 4.95, 5.0, 5.05])
    n = len(close)
    res = simulate(close, close * 1.01, close * 0.99, close, np.zeros(n), np.full(n, 5.0),
                   np.full(n, hedge), np.full(n, 0.04), np.full(n, 0.05), side="long",
                   tiers=NEAR_TIERS, policy=FREE, initial_equity=200_000.0)
    assert res.liquidation_bars == []
    # 5x of 100,000 at 5, hedged: the equity moves by (1 - h) x 100,000 x 5 / 5 x the move
    assert res.equity[1] == pytest.approx(200_000 + (1 - hedge) * 500_000 * 0.01)
