"""The book's allocation: each position reads its slice of the account (equity / positions),
so its margin, size cap and stop are those of a one-position account of that slice, and the
book holds the sum of what such accounts would (issue 16, the one-book view). Tiny synthetic
bars, numbers by hand: fee 0.05 % + half the 0.02 % spread = 0.06 % of traded notional."""

from __future__ import annotations

import numpy as np
import pytest

from cascade_ml.backtest.engine import Market, PositionPlan, simulate_book
from cascade_ml.policy.config import GENERIC_TIERS, PolicyConfig
from cascade_ml.trading import core

POLICY = PolicyConfig()  # max_risk_fraction 2 %, taker fee 0.05 %, spread 0.02 %
RATE = 0.0005 + 0.0002 / 2
EQUITY, MARGIN = 9_000.0, 0.5


def flat(k: int, n: int, price: float = 100.0) -> Market:
    """``k`` perps whose every bar is ``price`` (no P&L: only the rules move the legs)."""
    rows = np.full((k, n), price)
    return Market([f"P{j}" for j in range(k)], rows, rows, rows, rows, np.zeros((k, n)),
                  tiers=[GENERIC_TIERS] * k)


def plan(main: int, n: int, lev: np.ndarray | float, lpn: np.ndarray | float,
         hedge: float = 0.5, stops: bool = False) -> PositionPlan:
    return PositionPlan(main, np.broadcast_to(np.asarray(lev, float), (n,)).copy(),
                        np.full(n, hedge), np.full(n, 0.03), np.full(n, 0.04),
                        loss_per_notional=np.broadcast_to(np.asarray(lpn, float), (n,)).copy(),
                        stops=stops)


def run(market: Market, plans: list[PositionPlan], **kw):
    return simulate_book(market, plans, policy=POLICY, initial_equity=EQUITY,
                         margin_fraction=MARGIN, leverage_tolerance=0.2, **kw)


def test_position_equity_is_an_equal_slice_and_the_slices_sum_to_the_account() -> None:
    assert core.position_equity(9_000.0, 3) == 3_000.0
    assert core.position_equity(9_000.0, 1) == 9_000.0  # one position: the whole account
    assert 21 * core.position_equity(10_000.0, 21) == pytest.approx(10_000.0, rel=1e-15)


def test_each_position_is_sized_on_its_slice_and_the_book_on_the_account() -> None:
    n = 6
    res = run(flat(3, n), [plan(j, n, 5.0, 0.03) for j in range(3)])
    # slice 3,000, margin 1,500; the size cap 2 % x 3,000 / 0.03 = 2,000 binds (5x the margin is
    # 7,500), net of the open's fee on both legs (1.5 N x 0.06 %):
    # N = 0.02 x (3,000 - 0.0009 N) / 0.03  ->  N = 2,000 / 1.0006
    n_pos = 2_000.0 / 1.0006
    for p in res.positions:
        assert p.notional[0] == pytest.approx(n_pos, rel=1e-7)
        assert p.leverage[0] == pytest.approx(n_pos / (1_500.0 - 0.0009 * n_pos), rel=1e-7)
        assert p.trades == 1  # flat bars, constant targets: nothing after the open
    # the slices add up to the account: margin 50 % of 9,000 less the fees, notional the size
    # cap of one account of 9,000 (2 % x 9,000 / 0.03 = 6,000) less the fee sizing
    buckets = sum(p.notional[0] / p.leverage[0] for p in res.positions)
    assert buckets == pytest.approx(4_500.0 - 3 * 0.0009 * n_pos, rel=1e-9)
    assert sum(p.notional[0] for p in res.positions) == pytest.approx(6_000.0 / 1.0006)
    assert res.equity[-1] == pytest.approx(EQUITY - 3 * 0.0009 * n_pos)


@pytest.mark.parametrize(("k", "lpn"), [(3, 0.03), (21, 0.12)])
def test_a_leverage_cap_moving_inside_3_to_5x_does_not_churn_the_main_leg(k: int,
                                                                         lpn: float) -> None:
    """The model-fed cap moves with its forecast every bar. On the whole account's size cap
    (2 % x 9,000 / 0.03 = 6,000 = 4x a 3-position margin of 1,500; 0.17 of the account = 7x a
    21-position margin) the cap bound and the main leg was cut to 3x and re-levered to 4-5x on
    alternate bars; on the slice's (1.33x and 0.33x) it never binds: one trade, the open."""
    n = 12
    lev = np.where(np.arange(n) % 2 == 0, 5.0, 3.0)
    res = run(flat(k, n), [plan(j, n, lev, lpn) for j in range(k)])
    # per unit of slice: notional 2 % / lpn net of the open's fee on both legs, on a margin
    # of 50 % less that fee: 1.334x (3 positions), 0.3334x (21)
    n_rel = 0.02 / lpn / (1 + 1.5 * RATE * 0.02 / lpn)
    for p in res.positions:
        assert p.trades == 1
        assert np.all(p.notional == p.notional[0])
        assert p.leverage[0] == pytest.approx(n_rel / (MARGIN - 1.5 * RATE * n_rel), rel=1e-9)


def test_a_position_just_past_its_slice_size_cap_is_cut_and_just_under_it_is_held() -> None:
    n = 6
    up, down = np.full(n, 0.03), np.full(n, 0.03)
    up[3:], down[3:] = 0.0301, 0.0299  # the tail move 0.33 % wider / narrower from bar 3
    res = run(flat(3, n), [plan(0, n, 5.0, up), plan(1, n, 5.0, down), plan(2, n, 5.0, 0.03)])
    n0 = 2_000.0 / 1.0006
    fee0 = 0.0009 * n0
    cut, held, other = res.positions
    assert cut.trades == 2 and held.trades == 1 and other.trades == 1
    # cut at bar 3's close to 2 % of its slice over 0.0301, the trim's fee (1.5 x the cut x
    # 0.06 %) out of the slice first: the slice is (9,000 - 3 x fee0) / 3
    slice_ = (EQUITY - 3 * fee0) / 3
    n1 = 0.02 * (slice_ - 0.0009 * (n0 - 0.02 * slice_ / 0.0301)) / 0.0301
    assert cut.notional[2] == pytest.approx(n0, rel=1e-9)
    assert cut.notional[3] == pytest.approx(n1, rel=1e-6)
    assert cut.notional[3] < 0.02 * slice_ / 0.0301  # at or under the cap, never above
    assert np.all(held.notional == held.notional[0])  # 0.33 % under: inside the tolerance


def test_a_book_of_identical_positions_is_that_many_accounts_of_one_slice() -> None:
    """Three identical positions (same bars, same plan, stops on, a crash that fires them) in
    one account of 9,000 hold, bar for bar, three times one position's account of 3,000: the
    margin, the size cap and the stop's 2 % are the slice's."""
    n = 300
    rng = np.random.default_rng(3)
    r = rng.normal(0, 0.01, n)
    r[150] = -0.3  # through the stop (the slice's 2 % on the net position: a / e <= 24 %)
    c = 100 * np.exp(np.cumsum(r))
    o = np.r_[100.0, c[:-1]]
    hi, lo = np.maximum(o, c) * 1.002, np.minimum(o, c) * 0.998
    lpn = rng.uniform(0.05, 0.12, n)
    lev = np.where(rng.random(n) < 0.5, 5.0, 3.0)

    def mk(k: int) -> Market:
        def rows(a):
            return np.tile(a, (k, 1))
        return Market([f"P{j}" for j in range(k)], rows(o), rows(hi), rows(lo), rows(c),
                      np.full((k, n), 1e-5), tiers=[GENERIC_TIERS] * k)

    book = run(mk(3), [plan(j, n, lev, lpn, stops=True) for j in range(3)])
    one = simulate_book(mk(1), [plan(0, n, lev, lpn, stops=True)], policy=POLICY,
                        initial_equity=EQUITY / 3, margin_fraction=MARGIN,
                        leverage_tolerance=0.2)
    assert one.positions[0].stop_bars  # the crash fired the stop
    np.testing.assert_allclose(book.equity, 3 * one.equity, rtol=1e-9)
    for p in book.positions:
        np.testing.assert_allclose(p.notional, one.positions[0].notional, rtol=1e-9)
        assert p.stop_bars == one.positions[0].stop_bars
        assert p.trades == one.positions[0].trades


def test_the_paper_book_sizes_each_position_on_the_same_slice() -> None:
    """The live paper book (``trading.paper.PaperTrader``) applies the same allocation: two
    symbols on 9,000, each opened on its slice of 4,500 (margin 2,250, size cap 2 % x 4,500 /
    0.03 = 3,000 net of the open's fee), and the policy is asked with that slice as equity."""
    from cascade_ml.trading.config import TradingConfig
    from cascade_ml.trading.paper import BarPrices, PaperTrader, Targets

    trader = PaperTrader(["P0", "P1"], ["P0", "P1"], "long",
                         TradingConfig(initial_equity=EQUITY, margin_fraction=MARGIN), POLICY)
    bar = BarPrices(100.0, 100.0, 100.0, 100.0, 100.0)
    trader.settle(0, {"P0": bar, "P1": bar})
    assert trader.position_equity == 4_500.0
    n_pos = 3_000.0 / 1.0006  # N = 0.02 x (4,500 - 0.0009 N) / 0.03
    for s in ("P0", "P1"):
        trader.rebalance(s, 0, Targets(5.0, 0.5, s, 1.0, 1.0, 0.03, False, 0.03, 0.04),
                         {"P0": 100.0, "P1": 100.0})
        ps = trader.positions[s]
        assert ps.main_q * 100.0 == pytest.approx(n_pos, rel=1e-7)
        assert ps.bucket == pytest.approx(2_250.0 - 0.0009 * n_pos, rel=1e-9)
