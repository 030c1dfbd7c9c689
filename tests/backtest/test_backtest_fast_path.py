"""The engine's inlined quiet bars (a book of one) against the core's functions on every bar.

``simulate_book(inline=False)`` runs each bar through ``trading.core`` (settle, allocate,
rebalance); the default path does the held position's quiet bars in locals. The two must agree
bit for bit, on paths that reach every branch: liquidations (10x on wild bars), stops and their
cooldown, re-levering, hedge moves, a BTC proxy leg (left inside the no-trade band where it no
longer qualifies), the size cap, fail-safe bars and NaN targets, long and short.
"""

from __future__ import annotations

import numpy as np
import pytest

from cascade_ml.backtest.engine import Market, PositionPlan, simulate_book
from cascade_ml.policy.config import GENERIC_TIERS, NEAR_TIERS, PolicyConfig

POLICY = PolicyConfig()


def market(n: int, seed: int) -> Market:
    rng = np.random.default_rng(seed)
    rows = []
    for k, start in enumerate((5.0, 60_000.0)):
        r = rng.standard_t(3, n) * 0.012 * (1 + 2 * (rng.random(n) < 0.05))
        if k == 1:
            r = 0.6 * rows[0][0] + 0.4 * r  # a correlated proxy
        c = start * np.exp(np.cumsum(r))
        o = np.r_[start, c[:-1]] * np.exp(rng.normal(0, 0.002, n))
        wick = np.abs(rng.standard_t(3, (2, n))) * 0.008
        rows.append((r, o, np.maximum(o, c) * (1 + wick[0]), np.minimum(o, c) * (1 - wick[1]),
                     c, rng.normal(1e-5, 5e-5, n)))
    stack = [np.vstack([rows[0][k], rows[1][k]]) for k in range(1, 6)]
    return Market(["NEAR", "BTC"], *stack, tiers=[NEAR_TIERS, GENERIC_TIERS])


def plans(n: int, seed: int, side: str) -> list[PositionPlan]:
    rng = np.random.default_rng(seed + 100)
    lev = np.where(rng.random(n) < 0.5, 5.0, rng.uniform(2.0, 10.0, n))
    lev[rng.random(n) < 0.02] = np.nan
    hedge = np.repeat(rng.uniform(0.0, 1.0, n // 50 + 1), 50)[:n]
    hedge[rng.random(n) < 0.02] = np.nan
    sig, prob = rng.uniform(0.01, 0.08, n), rng.uniform(0.0, 0.3, n)
    inst = np.repeat(rng.integers(0, 2, n // 200 + 1), 200)[:n]
    lpn = rng.uniform(0.02, 0.2, n)
    lpn[rng.random(n) < 0.1] = np.nan
    nne = rng.random(n) < 0.03
    return [
        PositionPlan(0, np.full(n, 5.0), np.zeros(n), sig, prob, side=side),
        PositionPlan(0, np.full(n, 10.0), np.full(n, 0.3), sig, prob, side=side),
        PositionPlan(0, np.full(n, 4.0), np.full(n, 0.99), sig, prob, side=side),
        PositionPlan(0, lev, hedge, sig, prob, side=side, stops=True, loss_per_notional=lpn,
                     no_new_exposure=nne, hedge_r2=np.full(n, 0.8)),
        PositionPlan(0, lev, hedge, sig, prob, side=side, stops=True, hedge_instrument=inst,
                     hedge_beta=np.full(n, 1.3), hedge_r2=np.full(n, 0.6),
                     loss_per_notional=lpn, no_new_exposure=nne),
        PositionPlan(0, lev, hedge, sig, prob, side=side, hedge_instrument=inst,
                     hedge_beta=np.full(n, 1.3), hedge_r2=np.full(n, 0.85),
                     hedge_ok={1: np.repeat(rng.random(n // 30 + 1) < 0.5, 30)[:n]}),
    ]


@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("seed", [0, 1])
def test_inlined_quiet_bars_equal_the_core_bar_by_bar(side: str, seed: int) -> None:
    n = 3_000
    mk = market(n, seed)
    seen = {"liquidations": 0, "stops": 0, "trades": 0, "forced": 0}
    for plan in plans(n, seed, side):
        kw = dict(policy=POLICY, leverage_tolerance=0.1, stop_cooldown=24)
        fast = simulate_book(mk, [plan], **kw)
        ref = simulate_book(mk, [plan], inline=False, **kw)
        np.testing.assert_array_equal(fast.equity, ref.equity)
        a, b = fast.positions[0], ref.positions[0]
        for key in ("equity", "leverage", "hedge", "notional", "instrument", "pnl",
                    "cum_costs"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
        assert (a.fees, a.funding, a.traded_notional, a.trades, a.switches,
                a.forced_switches) == (b.fees, b.funding, b.traded_notional, b.trades,
                                       b.switches, b.forced_switches)
        assert (a.liquidation_bars, a.stop_bars) == (b.liquidation_bars, b.stop_bars)
        seen["liquidations"] += len(a.liquidation_bars)
        seen["stops"] += len(a.stop_bars)
        seen["trades"] += a.trades
        seen["forced"] += a.forced_switches
    # the paths reach the branches the fast path hands to the core
    assert seen["liquidations"] > 0 and seen["stops"] > 0 and seen["trades"] > 100
    assert seen["forced"] > 0


@pytest.mark.parametrize("side", ["long", "short"])
def test_a_book_of_many_inlines_its_quiet_bars_with_the_same_numbers(side: str) -> None:
    n = 2_000
    mk = market(n, 2)
    ps = plans(n, 2, side)
    rng = np.random.default_rng(7)
    btc = PositionPlan(1, np.full(n, 6.0), np.repeat(rng.uniform(0, 0.9, n // 100), 100),
                       ps[0].sigma_h, ps[0].cascade_prob, side=side, stops=True)
    book = [ps[1], ps[3], ps[4], ps[5], btc]
    kw = dict(policy=POLICY, leverage_tolerance=0.1, stop_cooldown=24)
    fast = simulate_book(mk, book, **kw)
    ref = simulate_book(mk, book, inline=False, **kw)
    np.testing.assert_array_equal(fast.equity, ref.equity)
    for a, b in zip(fast.positions, ref.positions, strict=True):
        for key in ("equity", "leverage", "hedge", "notional", "instrument", "cum_costs"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
        assert (a.trades, a.forced_switches, a.liquidation_bars, a.stop_bars) == \
            (b.trades, b.forced_switches, b.liquidation_bars, b.stop_bars)
    assert sum(len(p.liquidation_bars) + len(p.stop_bars) for p in fast.positions) > 0
