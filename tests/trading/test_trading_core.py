"""The trading core by hand: the fee and spread model, funding's sign, orders between positions
(a hedge moving instrument), the paper trader's stop (gap, both legs, cooldown) and its saved
state, and the pipeline keys that moved into the `trading` section."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cascade_ml.config import load_pipeline
from cascade_ml.errors import CascadeError, ConfigError
from cascade_ml.policy.config import NEAR_TIERS, PolicyConfig
from cascade_ml.policy.schemas import Decision
from cascade_ml.trading.config import TradingConfig
from cascade_ml.trading.costs import simulate_fill
from cascade_ml.trading.funding import funding_amount
from cascade_ml.trading.orders import orders_between
from cascade_ml.trading.paper import BarPrices, PaperTrader, Targets, targets_from_decision

FREE = PolicyConfig(taker_fee=0.0, spread=0.0, tiers={"NEAR": NEAR_TIERS})


def test_fill_pays_the_policy_fee_and_half_the_spread() -> None:
    cfg = PolicyConfig(taker_fee=0.0005, spread=0.0002)  # trade_cost 0.06 %
    buy = simulate_fill("buy", 2.0, 100.0, cfg)
    assert (buy.price, buy.fee, buy.slippage) == pytest.approx((100.01, 0.1, 0.02))
    assert (buy.fee + buy.slippage) / (2.0 * 100.0) == pytest.approx(0.0005 + 0.0002 / 2)
    sell = simulate_fill("sell", 2.0, 100.0, PolicyConfig(use_maker=True, maker_fee=0.0002,
                                                          spread=0.001))
    assert (sell.price, sell.fee, sell.slippage) == pytest.approx((99.95, 0.04, 0.1))
    liq = simulate_fill("sell", 2.0, 100.0, cfg, fee=37.5)  # a liquidation's clearance
    assert (liq.price, liq.fee, liq.slippage) == (100.0, 37.5, 0.0)
    with pytest.raises(CascadeError, match="positive quantity"):
        simulate_fill("buy", 0.0, 5.0, cfg)


def test_funding_longs_pay_a_positive_rate_shorts_receive_it() -> None:
    assert funding_amount(10.0, 100.0, 0.001) == pytest.approx(-1.0)
    assert funding_amount(-10.0, 100.0, 0.001) == pytest.approx(1.0)
    assert funding_amount(10.0, 100.0, -0.002) == pytest.approx(2.0)


def test_a_hedge_moving_to_btc_closes_the_old_leg_and_opens_the_new() -> None:
    before = {("main", "NEAR"): 500.0, ("hedge", "NEAR"): -250.0}
    after = {("main", "NEAR"): 500.0, ("hedge", "BTC"): -37.5}
    orders = orders_between(before, after, prices={"NEAR": 10.0, "BTC": 100.0})
    assert [(o.leg, o.instrument, o.side, o.qty, o.ref_price) for o in orders] == [
        ("hedge", "BTC", "sell", 37.5, 100.0), ("hedge", "NEAR", "buy", 250.0, 10.0)]


def _bar(prev: float, o: float, h: float, lo: float, c: float) -> dict[str, BarPrices]:
    return {"NEAR": BarPrices(prev, o, h, lo, c)}


def _targets(lev: float = 2.0, hedge: float = 0.5) -> Targets:
    return Targets(lev, hedge, "NEAR", 1.0, 1.0, math.nan, False, 0.04, 0.05)


def test_paper_stop_fills_at_the_gap_closes_both_legs_and_cools_down() -> None:
    trading = TradingConfig(leverage=2.0, stop_cooldown_bars=2)
    trader = PaperTrader(["NEAR"], ["NEAR"], "long", trading, FREE)
    assert trader.settle(0, _bar(100, 100, 100, 100, 100))["NEAR"].event == "flat"
    opened = trader.rebalance("NEAR", 0, _targets(), {"NEAR": 100.0})
    # 2x on a 5,000 margin: 100 NEAR long, half hedged: 50 short
    assert [(o.leg, o.side, o.qty) for o in opened] == [("main", "buy", 100.0),
                                                        ("hedge", "sell", 50.0)]
    # the stop: max loss 2 % x 10,000 = 200 on a net 5,000 -> 4 % below entry, at 96
    assert trader.positions["NEAR"].stop == pytest.approx(96.0)
    trader.settle(1, _bar(100, 100, 100, 99, 99))
    assert trader.rebalance("NEAR", 1, _targets(), {"NEAR": 99.0}) == []
    gap = trader.settle(2, _bar(99, 92, 93, 90, 90))["NEAR"]
    assert gap.event == "stop" and not gap.funding  # closed inside the bar: no funding
    assert [(o.leg, o.side, o.qty, o.ref_price, o.kind) for o in gap.orders] == [
        ("main", "sell", 100.0, 92.0, "stop"), ("hedge", "buy", 50.0, 92.0, "stop")]
    assert trader.equity == pytest.approx(10_000.0 - 0.08 * 5_000.0)
    # cooldown: flat for two bars (the stop's and the next) whatever the decision
    assert trader.rebalance("NEAR", 2, _targets(), {"NEAR": 90.0}) == []
    trader.settle(3, _bar(90, 90, 90, 90, 90))
    assert trader.rebalance("NEAR", 3, _targets(), {"NEAR": 90.0}) == []
    trader.settle(4, _bar(90, 90, 90, 90, 90))
    assert [o.leg for o in trader.rebalance("NEAR", 4, _targets(), {"NEAR": 90.0})] == [
        "main", "hedge"]
    # the saved account is the account
    again = PaperTrader(["NEAR"], ["NEAR"], "long", trading, FREE).load(trader.to_dict())
    assert again.to_dict() == trader.to_dict() and again.legs("NEAR") == trader.legs("NEAR")
    with pytest.raises(CascadeError, match="not after the last one settled"):
        again.settle(4, _bar(90, 90, 90, 90, 90))


@pytest.mark.parametrize(("section", "key", "where"), [
    ("live", "side", "task.side"), ("live", "initial_cash", "trading.initial_equity"),
    ("live", "target_notional", "trading.leverage"), ("live", "fills", "policy.taker_fee"),
    ("backtest", "leverage", "trading.leverage"), ("backtest", "stops", "trading.stops"),
])
def test_moved_keys_say_where_they_went(tmp_path: Path, section: str, key: str,
                                        where: str) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({section: {key: "long" if key == "side" else 1}}))
    with pytest.raises(ConfigError, match=f"'{section}.{key}' has moved to {where}"):
        load_pipeline(path)


def test_a_liquidation_in_the_paper_book_loses_the_margin_as_the_engine_does(
        tmp_path: Path) -> None:
    import numpy as np

    from cascade_ml.backtest.engine import simulate
    from cascade_ml.policy.schemas import Decision
    from cascade_ml.trading.book import PaperBook
    from cascade_ml.trading.execution import Executor

    close, low = [100.0, 100.0, 95.0, 95.0], [100.0, 100.0, 88.0, 95.0]
    n = len(close)
    # 10x unhedged on 5,000: liquidated at bar 2 (-12 % intrabar, ~8.7 % to liquidation)
    engine = simulate(np.array(close), np.array(close), np.array(low), np.array(close),
                      np.zeros(n), np.full(n, 10.0), np.zeros(n), np.full(n, 0.04),
                      np.full(n, 0.05), side="long", tiers=NEAR_TIERS, policy=FREE)
    assert engine.liquidation_bars == [2] and engine.equity[2] == pytest.approx(5_000.0)
    trading = TradingConfig(leverage=10.0, stops=False)
    trader = PaperTrader(["NEAR"], ["NEAR"], "long", trading, FREE)
    equity, kinds = [], []
    with PaperBook(f"sqlite:///{tmp_path / 'book.db'}", initial_cash=10_000.0) as book:
        ex = Executor(book, policy=FREE)
        wide = Decision(symbol="NEAR", action="rebalance", hedge_ratio=0.0,
                        current_hedge_ratio=0.0, hedge_instrument="same_perp", hedge_beta=1.0,
                        hedge_effectiveness=1.0, hedge_notional=0.0, leverage_cap=20.0,
                        leverage_caps={}, size_cap_notional=1e9,
                        required_liquidation_distance=None, liquidation_price=None,
                        liquidation_distance=None, risk_score=None, fail_safe=False,
                        reasons=["caps wide open: the trader alone decides"])
        t0 = 1_000_000
        for i in range(n):
            prev = close[i - 1] if i else close[0]
            settled = trader.settle(t0 + i, _bar(prev, close[i], close[i], low[i],
                                                 close[i]))["NEAR"]
            orders = [*settled.orders, *trader.rebalance(
                "NEAR", t0 + i, _targets(lev=10.0, hedge=0.0), {"NEAR": close[i]})]
            kinds.append([(o.kind, o.side) for o in orders])
            bar = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=i)
            ex.run_cycle("NEAR", bar, wide, orders,
                         marks={"NEAR": close[i]}, as_of=bar + pd.Timedelta("1h"))
            equity.append(book.state({"NEAR": close[i]}).equity)
    # the liquidation closes the leg (its fee: the margin left at the close); the position
    # re-enters at the next close with half of what is left
    assert kinds[2] == [("liquidation", "sell")] and kinds[3] == [("trade", "buy")]
    assert equity == pytest.approx(engine.equity.tolist())


SWITCH = PolicyConfig(taker_fee=0.001, spread=0.0, min_cross_hedge_r2=0.8,
                      same_perp_effectiveness=0.5, tiers={"NEAR": NEAR_TIERS})


def _flat_bar(i: int) -> dict[str, BarPrices]:
    return {n: BarPrices(p, p, p, p, p) for n, p in (("NEAR", 10.0), ("BTC", 100.0),
                                                      ("ETH", 50.0))}


def _proxy_targets(lev: float, hedge: float, inst: str, beta: float, r2: float,
                   qualified: set[str]) -> Targets:
    return Targets(lev, hedge, inst, beta, r2, math.nan, False, 0.04, 0.05,
                   frozenset(qualified))


def _decision(reasons: list[str]) -> Decision:
    return Decision(symbol="NEAR", action="hold", hedge_ratio=0.52, current_hedge_ratio=0.5,
                    hedge_instrument="same_perp", hedge_beta=1.0, hedge_effectiveness=0.5,
                    hedge_notional=0.0, leverage_cap=5.0, leverage_caps={},
                    size_cap_notional=1e9, required_liquidation_distance=None,
                    liquidation_price=None, liquidation_distance=None, risk_score=None,
                    fail_safe=False, reasons=reasons)


def _proxy_trader() -> PaperTrader:
    """1x long NEAR at 10, half hedged in BTC (beta 1.5) at bar 0, fee 0.1 %."""
    trader = PaperTrader(["NEAR"], ["NEAR", "BTC", "ETH"], "long", TradingConfig(leverage=1.0),
                         SWITCH)
    trader.settle(0, _flat_bar(0))
    trader.rebalance("NEAR", 0, _proxy_targets(1.0, 0.5, "BTC", 1.5, 0.85, {"BTC"}),
                     {"NEAR": 10.0, "BTC": 100.0, "ETH": 50.0})
    return trader


def test_paper_hedge_leaves_a_proxy_below_the_minimum_r2_inside_the_band() -> None:
    trader = _proxy_trader()
    n0 = 5_000 / 1.00175  # the 1x main leg, sized net of its fee on 1.75 N traded
    assert trader.legs("NEAR") == pytest.approx({("main", "NEAR"): n0 / 10,
                                                 ("hedge", "BTC"): -0.75 * n0 / 100}, rel=1e-7)
    fees0 = trader.positions["NEAR"].fees
    marks = {"NEAR": 10.0, "BTC": 100.0, "ETH": 50.0}
    # bar 1: BTC's R^2 fell below the minimum (it no longer qualifies), the decision is the
    # same perp at 52 % (inside the 5 % no-trade band of the 50 % held): the hedge moves
    trader.settle(1, _flat_bar(1))
    orders = trader.rebalance("NEAR", 1, _proxy_targets(1.01, 0.52, "NEAR", 1.0, 0.5, set()),
                              marks)
    assert [(o.leg, o.instrument, o.side) for o in orders] == [
        ("hedge", "BTC", "buy"), ("hedge", "NEAR", "sell")]
    assert [o.qty for o in orders] == pytest.approx([0.75 * n0 / 100, 0.52 * n0 / 10], rel=1e-7)
    ps = trader.positions["NEAR"]
    assert ps.fees - fees0 == pytest.approx((0.75 + 0.52) * n0 * 0.001, rel=1e-7)
    assert (ps.switches, ps.forced) == (1, 1)
    assert trader.notes["NEAR"].startswith("hedge moved from the BTC perp to the same perp "
                                           "(NEAR) inside the no-trade band: BTC no longer "
                                           "qualifies")
    held = _decision(["hold: the hedge 50 % is within the 5 % no-trade band"])
    assert trader.explain("NEAR", held).reasons == [*held.reasons, trader.notes["NEAR"]]
    # bar 2: ratio and instrument unchanged: nothing trades
    trader.settle(2, _flat_bar(2))
    assert trader.rebalance("NEAR", 2, _proxy_targets(1.01, 0.52, "NEAR", 1.0, 0.5, set()),
                            marks) == []
    assert "NEAR" not in trader.notes
    assert trader.explain("NEAR", held) == held


def test_paper_hedge_between_two_qualifying_proxies_waits_for_the_ratio() -> None:
    trader = _proxy_trader()
    marks = {"NEAR": 10.0, "BTC": 100.0, "ETH": 50.0}
    trader.settle(1, _flat_bar(1))
    # ETH is the better proxy now, BTC still qualifies: inside the band nothing trades
    assert trader.rebalance("NEAR", 1, _proxy_targets(1.01, 0.52, "ETH", 2.0, 0.9,
                                                      {"BTC", "ETH"}), marks) == []
    # the ratio leaves the band (50 % -> 60 %): the hedge moves, to ETH
    trader.settle(2, _flat_bar(2))
    orders = trader.rebalance("NEAR", 2, _proxy_targets(1.01, 0.6, "ETH", 2.0, 0.9,
                                                        {"BTC", "ETH"}), marks)
    assert [(o.leg, o.instrument, o.side) for o in orders] == [
        ("hedge", "BTC", "buy"), ("hedge", "ETH", "sell")]
    ps = trader.positions["NEAR"]
    assert (ps.switches, ps.forced) == (1, 0)
    assert trader.notes["NEAR"].startswith("hedge moved from the BTC perp to the ETH perp with "
                                           "the hedge ratio's own rebalance")


@pytest.mark.parametrize(("r2_btc", "qualified"), [(0.80, {"BTC"}), (0.79, set())])
def test_targets_name_the_proxies_whose_r2_passes_the_minimum(r2_btc: float,
                                                              qualified: set[str]) -> None:
    from cascade_ml.policy.decide import decide
    from cascade_ml.policy.schemas import CrossAsset, Forecast, Freshness, PolicyInputs, Position

    cross = CrossAsset(beta_btc=1.2, r2_btc=r2_btc, beta_eth=-0.3, r2_eth=0.95)
    d = decide(PolicyInputs(forecast=Forecast(sigma_h=0.04, horizon_hours=24.0,
                                              cascade_prob=0.05), cross_asset=cross,
                            position=Position(side="long", notional=5_000.0, entry_price=10.0,
                                              mark_price=10.0, leverage=1.0),
                            freshness=Freshness(forecast_age_s=10.0, features_age_s=10.0),
                            equity=10_000.0), SWITCH)
    t = targets_from_decision(d, "NEAR", 0.04, 0.05, TradingConfig(), SWITCH, cross)
    # ETH's beta is negative: never a proxy; BTC at R^2 0.80 qualifies, 0.01 below does not
    assert t.qualified == frozenset(qualified)
    assert t.instrument == ("BTC" if qualified else "NEAR")
    assert targets_from_decision(d, "NEAR", 0.04, 0.05, TradingConfig(), SWITCH).qualified \
        == frozenset()  # no cross inputs: none known to qualify
