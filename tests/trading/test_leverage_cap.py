"""The leverage cap in the trading core, by hand: above the bar's cap is never tolerated (a
position 0.01x above it is cut back to it at that close), below it ``leverage_tolerance``
spares re-levering up; and the seed's 5x ceiling is the bot's, end to end.

Every expected quantity is computed here from literals (a 10,000 account, half of it the
margin: a 5,000 bucket; NEAR at 100; no fees so the trade sizes are exact), never read from
the code under test."""

from __future__ import annotations

import math

import pytest

from cascade_ml.policy import PolicyConfig, PolicyInputs, decide
from cascade_ml.policy.config import NEAR_TIERS
from cascade_ml.trading.config import TradingConfig
from cascade_ml.trading.paper import BarPrices, PaperTrader, Targets, targets_from_decision

FREE = PolicyConfig(taker_fee=0.0, spread=0.0, hedge_funding_8h=0.0, tiers={"NEAR": NEAR_TIERS})


def _flat(prev: float, c: float) -> dict[str, BarPrices]:
    return {"NEAR": BarPrices(prev, c, max(prev, c), min(prev, c), c)}


def _targets(lev: float, hedge: float = 0.5) -> Targets:
    # no size cap (loss per notional NaN), hedge in the same perp, calm forecast
    return Targets(lev, hedge, "NEAR", 1.0, 1.0, math.nan, False, 0.04, 0.05)


def _held_at(lev: float, tolerance: float = 0.20, hedge: float = 0.5) -> PaperTrader:
    """A trader that entered at ``lev`` on its 5,000 bucket at 100, then one flat bar."""
    trading = TradingConfig(leverage=20.0, leverage_tolerance=tolerance, stops=False)
    trader = PaperTrader(["NEAR"], ["NEAR"], "long", trading, FREE)
    trader.settle(0, _flat(100.0, 100.0))
    trader.rebalance("NEAR", 0, _targets(lev, hedge), {"NEAR": 100.0})
    assert trader.positions["NEAR"].main_q == pytest.approx(lev * 5_000.0 / 100.0)
    trader.settle(1, _flat(100.0, 100.0))
    return trader


def _orders(trader: PaperTrader, cap: float, bar: int = 1,
            price: float = 100.0) -> list[tuple[str, str, float]]:
    got = trader.rebalance("NEAR", bar, _targets(cap), {"NEAR": price})
    return [(o.leg, o.side, round(o.qty, 9)) for o in got]


def test_001x_above_the_cap_is_cut_to_the_cap() -> None:
    # held 5.00x (250 NEAR, 125 hedge); the cap at this close is 4.99x: 4.99 x 5,000 / 100 =
    # 249.5 NEAR -> sell 0.5; the hedge keeps its 50 %: 124.75 -> buy back 0.25
    trader = _held_at(5.0)
    assert _orders(trader, 4.99) == [("main", "sell", 0.5), ("hedge", "buy", 0.25)]
    ps = trader.positions["NEAR"]
    assert ps.main_q * 100.0 / ps.bucket == pytest.approx(4.99, rel=1e-12)


def test_exactly_at_the_cap_is_not_traded() -> None:
    assert _orders(_held_at(5.0), 5.0) == []


def test_a_whole_1x_above_the_cap_must_rebalance() -> None:
    # 5x held, cap 4x: 4 x 5,000 / 100 = 200 NEAR -> sell 50, hedge 100 -> buy back 25
    assert _orders(_held_at(5.0), 4.0) == [("main", "sell", 50.0), ("hedge", "buy", 25.0)]


@pytest.mark.parametrize("tolerance", [0.10, 0.20])
def test_above_the_cap_inside_the_old_two_sided_band_is_cut(tolerance: float) -> None:
    # 5x is 9.9 % above a 4.55x cap: inside a 10 % or 20 % band, but above the cap
    # 4.55 x 5,000 / 100 = 227.5 NEAR -> sell 22.5, hedge -> buy back 11.25
    assert _orders(_held_at(5.0, tolerance), 4.55) == [("main", "sell", 22.5),
                                                         ("hedge", "buy", 11.25)]


@pytest.mark.parametrize(("tolerance", "stays", "relevers"), [
    (0.10, 4.55, 4.45),   # 9 % and 11 % below a 5x cap
    (0.20, 4.05, 3.95),   # 19 % and 21 % below (the default tolerance)
])
def test_below_the_cap_the_tolerance_avoids_churn(tolerance: float, stays: float,
                                                  relevers: float) -> None:
    assert _orders(_held_at(stays, tolerance), 5.0) == []
    # re-levered to 5x: 250 NEAR (buy 250 - relevers x 50), hedge 125
    buy = round(250.0 - relevers * 50.0, 9)
    assert _orders(_held_at(relevers, tolerance), 5.0) == [("main", "buy", buy),
                                                           ("hedge", "sell", buy / 2)]


def test_the_default_tolerance_is_20_percent() -> None:
    assert TradingConfig().leverage_tolerance == 0.20


def test_a_price_drop_that_lifts_leverage_001x_above_5x_is_cut_at_that_close() -> None:
    # unhedged 5x: 250 NEAR on a 5,000 bucket at 100. At 99.95 the bucket is 5,000 - 250 x 0.05
    # = 4,987.5 and the leverage 24,987.5 / 4,987.5 = 5.010 (0.01x above 5x). The bucket is
    # reset to half of the 9,987.5 equity (4,993.75) and the main leg to 5x of it.
    trader = _held_at(5.0, hedge=0.0)
    trader.settle(2, _flat(100.0, 99.95))
    ps = trader.positions["NEAR"]
    assert ps.main_q * 99.95 / ps.bucket == pytest.approx(24_987.5 / 4_987.5)
    got = trader.rebalance("NEAR", 2, _targets(5.0, 0.0), {"NEAR": 99.95})
    assert [(o.leg, o.side) for o in got] == [("main", "sell")]
    assert got[0].qty == pytest.approx(250.0 - 5.0 * 4_993.75 / 99.95, rel=1e-12)
    assert ps.bucket == pytest.approx(4_993.75) and trader.free == pytest.approx(4_993.75)
    # a rise instead lowers the leverage (p / (p - 80) at p = 100.05: 4.99x): inside the
    # tolerance, no trade
    trader = _held_at(5.0, hedge=0.0)
    trader.settle(2, _flat(100.0, 100.05))
    assert trader.rebalance("NEAR", 2, _targets(5.0, 0.0), {"NEAR": 100.05}) == []


def test_the_seed_5x_ceiling_is_the_bots_leverage() -> None:
    """The default bot is 5x (written here), and a calm market's decision caps it at 5x: the
    trader opens 5 x 5,000 / 100 = 250 NEAR, and one 0.01x above is cut back to 5x."""
    assert TradingConfig().leverage == 5.0
    assert PolicyConfig().max_leverage == 5.0
    # calm: 0.02 % over 24 h against a reference of 1 %/yr (0.052 % over 24 h) sits at the bottom
    # of the band, where the objective's cap is the 5x ceiling; the risk budget (2 % of 10,000 on
    # a 3-sigma move of that reference, 127,000 notional) does not bind
    sigma = 0.0002
    d = decide(PolicyInputs.model_validate({
        "symbol": "NEAR", "trailing_vol_annual": 0.01,
        "forecast": {"sigma_h": sigma, "horizon_hours": 24, "cascade_prob": 0.0},
        "position": {"side": "long", "notional": 25_000.0, "entry_price": 100.0,
                     "mark_price": 100.0, "leverage": 5.0, "hedge_ratio": 0.3},
        "equity": 10_000.0,
        "freshness": {"forecast_age_s": 60.0, "features_age_s": 60.0}}), FREE)
    assert d.leverage_cap == pytest.approx(5.0) and d.binding["leverage"] == "ceiling"
    for trading in (TradingConfig(stops=False), TradingConfig(leverage=10.0, stops=False)):
        t = targets_from_decision(d, "NEAR", sigma, 0.0, trading, FREE)
        assert t.leverage == 5.0
        trader = PaperTrader(["NEAR"], ["NEAR"], "long", trading, FREE)
        trader.settle(0, _flat(100.0, 100.0))
        trader.rebalance("NEAR", 0, t, {"NEAR": 100.0})
        ps = trader.positions["NEAR"]
        assert ps.main_q == pytest.approx(250.0) and ps.bucket == pytest.approx(5_000.0)
    # a wide-open decision (cap 20x): the bot's own 5x binds
    wide = d.model_copy(update={"leverage_cap": 20.0})
    assert targets_from_decision(wide, "NEAR", sigma, 0.0, TradingConfig(), FREE).leverage == 5.0


def test_with_fees_the_open_sits_at_its_cap_and_a_flat_bar_does_not_trade() -> None:
    """The fee comes out of the bucket: the open is sized net of it (0.06 % on N and on the
    N / 2 hedge: N = 5 x (5,000 - 0.0006 x 1.5 N)), so 5x holds after paying and the next flat
    bar, at the same cap, trades nothing (no trimming churn)."""
    paid = PolicyConfig(tiers={"NEAR": NEAR_TIERS})  # taker 0.05 % + half a 0.02 % spread
    trader = PaperTrader(["NEAR"], ["NEAR"], "long", TradingConfig(stops=False), paid)
    trader.settle(0, _flat(100.0, 100.0))
    trader.rebalance("NEAR", 0, _targets(5.0), {"NEAR": 100.0})
    ps = trader.positions["NEAR"]
    n = 25_000.0 / (1 + 5 * 0.0006 * 1.5)
    assert ps.main_q * 100.0 == pytest.approx(n, rel=1e-6)
    assert ps.main_q * 100.0 / ps.bucket == pytest.approx(5.0, rel=1e-6)
    for bar in (1, 2):
        trader.settle(bar, _flat(100.0, 100.0))
        assert trader.rebalance("NEAR", bar, _targets(5.0), {"NEAR": 100.0}) == []
    # and 0.01x above, with fees, is still cut (to 4.99x after its own fee)
    trader.settle(3, _flat(100.0, 100.0))
    assert [o.leg for o in trader.rebalance("NEAR", 3, _targets(4.99), {"NEAR": 100.0})] == [
        "main", "hedge"]
    assert ps.main_q * 100.0 / ps.bucket == pytest.approx(4.99, rel=1e-6)
