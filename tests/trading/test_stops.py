"""Protective stops on the exchange (``trading.stops``): the requests a real ccxt client sends
Binance USD-M for them (offline, ``tests/live/live_helpers.OrderDesk`` answering with Binance's
recorded formats), written out by hand; moved, cancelled, fired and booked once; the price
the trading core's stop, rounded the safe way; paper mode sends nothing and keeps the same
stop orders in the book."""

from __future__ import annotations

import math
from pathlib import Path

import ccxt
import pandas as pd
import pytest
from live.live_helpers import OrderDesk, make_decision

from cascade_ml.policy.config import NEAR_TIERS, PolicyConfig
from cascade_ml.trading import core
from cascade_ml.trading.book import PaperBook
from cascade_ml.trading.config import TradingConfig
from cascade_ml.trading.execution import Executor
from cascade_ml.trading.margin import Tiers
from cascade_ml.trading.orders import OrderIntent
from cascade_ml.trading.paper import BarPrices, PaperTrader, Targets
from cascade_ml.trading.stops import safe_trigger, wanted_stops

BAR = pd.Timestamp("2026-03-10T11:00:00Z")  # 1773140400000 ms
KEYS = {"CASCADE_ML_TESTNET_API_KEY": "test-key", "CASCADE_ML_TESTNET_API_SECRET": "test-secret"}
ALGO = "/fapi/v1/algoOrder"
MARKET = "NEAR/USDT:USDT"


@pytest.fixture
def book(tmp_path: Path) -> PaperBook:
    with PaperBook(f"sqlite:///{tmp_path / 'book.db'}", initial_cash=10_000.0) as b:
        yield b


def desk_and_exchange(avg_price: float = 5.0) -> tuple[OrderDesk, ccxt.binanceusdm]:
    desk = OrderDesk(avg_price=avg_price)
    exchange = ccxt.binanceusdm({"enableRateLimit": False})
    exchange.session.mount("https://", desk)
    return desk, exchange


def core_stop(side: str) -> float:
    """The trading core's stop (``core.stop_price``) of 1000 NEAR entered at 5.0 on a 5,000
    bucket, unhedged, with a maximum loss of 123.6: 123.6 / 5,000 = 2.472 % from the entry
    (the liquidation price is farther than half-way: it does not bind)."""
    ps = core.PositionState(0, side, stops=True)
    ps.main_q, ps.entry, ps.bucket, ps.h_cur, ps.hr2 = 1000.0, 5.0, 5000.0, 0.0, 1.0
    return core.stop_price(ps, [Tiers(NEAR_TIERS)], 5.0, 123.6, 0.5)


def cycle(ex: Executor, hour: int, intents=(), stop: float | None = None):  # noqa: ANN001, ANN201
    bar = BAR + pd.Timedelta(hours=hour)
    # the decision's size cap (2 % of 20,000 over a 3-sigma move of the 80 %/yr reference,
    # 3,184 notional) leaves room for the 600.7 NEAR (3,003.5) these tests trade
    return ex.run_cycle("NEAR", bar, make_decision(equity=20_000.0), list(intents),
                        marks={"NEAR": 5.0},
                        as_of=bar + pd.Timedelta("1h"), stop=stop)


def live_stops(book: PaperBook) -> list[tuple[str, str, float, str]]:
    return [(s.leg, s.side, s.trigger_price, s.state) for s in book.live_stops("NEAR")]


# ---------------------------------------------------------------------------- the price
def test_the_core_stop_by_hand_rounds_towards_the_entry() -> None:
    long_stop, short_stop = core_stop("long"), core_stop("short")
    assert long_stop == pytest.approx(5.0 * (1 - 0.02472))  # 4.8764
    assert short_stop == pytest.approx(5.0 * (1 + 0.02472))  # 5.1236
    _, exchange = desk_and_exchange()
    exchange.load_markets()
    # NEARUSDT's tick is 0.001: the nearest ticks would be 4.876 and 5.124, one tick farther
    # than the policy's maximum loss; the sent prices are one tick nearer the entry
    assert exchange.price_to_precision(MARKET, long_stop) == "4.876"
    assert safe_trigger(exchange, MARKET, long_stop, long=True) == 4.877
    assert exchange.price_to_precision(MARKET, short_stop) == "5.124"
    assert safe_trigger(exchange, MARKET, short_stop, long=False) == 5.123
    assert safe_trigger(exchange, MARKET, 4.8, long=True) == 4.8  # on the tick: unchanged
    assert safe_trigger(exchange, MARKET, 4.8771, long=True) == 4.878


def test_which_legs_get_an_exchange_stop() -> None:
    legs = {("main", "NEAR"): 600.0, ("hedge", "NEAR"): -200.0}
    (net,) = wanted_stops("NEAR", legs, 4.8764, hedge_mode=False)  # one-way: the net 400
    assert (net.side, net.qty, net.order_type, net.position_side) == ("sell", 400.0,
                                                                      "STOP_MARKET", None)
    main, hedge = wanted_stops("NEAR", legs, 4.8764, hedge_mode=True)
    assert (main.side, main.qty, main.order_type, main.position_side) == (
        "sell", 600.0, "STOP_MARKET", "LONG")
    assert (hedge.side, hedge.qty, hedge.order_type, hedge.position_side) == (
        "buy", 200.0, "TAKE_PROFIT_MARKET", "SHORT")  # bought back as the price falls
    short = wanted_stops("NEAR", {("main", "NEAR"): -600.0}, 5.1236, hedge_mode=False)
    assert [(s.side, s.order_type) for s in short] == [("buy", "STOP_MARKET")]
    proxy = {("main", "NEAR"): 600.0, ("hedge", "BTC"): -0.05}  # no trigger on NEAR's price
    assert [s.instrument for s in wanted_stops("NEAR", proxy, 4.8764, hedge_mode=True)] == [
        "NEAR"]
    assert wanted_stops("NEAR", legs, math.nan, hedge_mode=False) == []
    assert wanted_stops("NEAR", {}, 4.8764, hedge_mode=False) == []


# ---------------------------------------------------------------------------- the requests
def test_stop_order_is_the_request_binance_expects(book: PaperBook) -> None:
    desk, exchange = desk_and_exchange(avg_price=5.0)
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: 5.0, env=KEYS)
    result = cycle(ex, 0, [OrderIntent("main", "NEAR", "buy", 600.7)], stop=core_stop("long"))
    assert result.fills == 1 and result.stops_fired == 0
    (sent,) = desk.calls("POST", ALGO)  # ccxt routes conditional orders to the Algo Order API
    assert sent["host"] == "demo-fapi.binance.com"
    p = sent["params"]
    assert (p["algoType"], p["type"], p["symbol"], p["side"]) == ("CONDITIONAL", "STOP_MARKET",
                                                                  "NEARUSDT", "SELL")
    assert p["quantity"] == "600"  # the leg filled (whole NEAR units), all of it
    assert p["triggerPrice"] == "4.877"  # the core's 4.8764, one tick nearer the entry
    assert p["reduceOnly"] == "true" and "positionSide" not in p
    assert p["workingType"] == "CONTRACT_PRICE"
    assert p["clientAlgoId"] == "cml-NEAR-1773140400000-p-NEAR"
    (row,) = book.frames()["stop_orders"].to_dict("records")
    assert (row["state"], row["exchange_order_id"], row["trigger_price"], row["qty"]) == (
        "open", "3358", 4.877, 600.0)
    assert row["client_order_id"] == "cml-NEAR-1773140400000-p-NEAR"


def test_hedge_mode_sends_position_side_not_reduce_only(book: PaperBook) -> None:
    desk, exchange = desk_and_exchange()
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: 5.0, env=KEYS,
                  hedge_mode=True)
    cycle(ex, 0, [OrderIntent("main", "NEAR", "buy", 600), OrderIntent("hedge", "NEAR", "sell",
                                                                       200)], stop=4.8764)
    sent = [r["params"] for r in desk.calls("POST", ALGO)]
    assert [(p["type"], p["side"], p["positionSide"], p["quantity"], p["triggerPrice"])
            for p in sent] == [("STOP_MARKET", "SELL", "LONG", "600", "4.877"),
                               ("TAKE_PROFIT_MARKET", "BUY", "SHORT", "200", "4.877")]
    assert not any("reduceOnly" in p for p in sent)  # Binance refuses it in hedge mode
    assert [p["clientAlgoId"][-6:] for p in sent] == ["p-NEAR", "q-NEAR"]


def test_a_moved_stop_cancels_the_old_order_and_places_one_new(book: PaperBook) -> None:
    desk, exchange = desk_and_exchange()
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: 5.0, env=KEYS)
    cycle(ex, 0, [OrderIntent("main", "NEAR", "buy", 600)], stop=4.8764)  # rests at 4.877
    cycle(ex, 1, stop=4.8795)  # 4.880: 0.06 % away, inside the 0.1 % tolerance: not churned
    assert len(desk.calls("POST", ALGO)) == 1 and desk.calls("DELETE", ALGO) == []
    cycle(ex, 2, stop=4.8830)  # 4.883: 0.12 % away: moved
    (cancel,) = desk.calls("DELETE", ALGO)
    assert cancel["params"]["algoId"] == "3358" and cancel["params"]["symbol"] == "NEARUSDT"
    first, second = desk.calls("POST", ALGO)
    assert desk.requests.index(cancel) < desk.requests.index(second)  # cancel first
    assert second["params"]["triggerPrice"] == "4.883"
    assert second["params"]["clientAlgoId"] == "cml-NEAR-1773147600000-p-NEAR"
    assert live_stops(book) == [("main", "sell", 4.883, "open")]  # never two for one leg
    assert list(book.frames()["stop_orders"]["state"]) == ["cancelled", "open"]


def test_a_closed_position_cancels_its_stop(book: PaperBook) -> None:
    desk, exchange = desk_and_exchange()
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: 5.0, env=KEYS)
    cycle(ex, 0, [OrderIntent("main", "NEAR", "buy", 600)], stop=4.8764)
    cycle(ex, 1, [OrderIntent("main", "NEAR", "sell", 600)], stop=None)
    assert len(desk.calls("DELETE", ALGO)) == 1 and len(desk.calls("POST", ALGO)) == 1
    assert live_stops(book) == [] and book.state().legs_of("NEAR") == []
    cycle(ex, 2)  # flat: nothing more is asked of the exchange
    assert len(desk.calls("DELETE", ALGO)) == 1 and len(desk.calls("POST", ALGO)) == 1


def test_the_stop_sent_is_the_trading_cores_for_the_same_decision(book: PaperBook) -> None:
    free = PolicyConfig(taker_fee=0.0, spread=0.0, tiers={"NEAR": NEAR_TIERS})
    trader = PaperTrader(["NEAR"], ["NEAR"], "long", TradingConfig(leverage=2.0), free)
    price = 5.0001
    trader.settle(0, {"NEAR": BarPrices(price, price, price, price, price)})
    targets = Targets(2.0, 0.5, "NEAR", 1.0, 1.0, math.nan, False, 0.04, 0.05)
    intents = trader.rebalance("NEAR", 0, targets, {"NEAR": price})
    # 2x on a 5,000 margin, half hedged: the max loss 2 % x 10,000 = 200 on a net exposure of
    # 10,000 x (1 - 0.5) = 5,000 puts the core's stop 4 % below the entry
    stop = trader.positions["NEAR"].stop
    assert stop == pytest.approx(price * 0.96)  # 4.800096
    desk, exchange = desk_and_exchange(avg_price=price)
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: price, env=KEYS,
                  hedge_mode=True)
    ex.run_cycle("NEAR", BAR, make_decision(equity=100_000.0), intents, marks={"NEAR": price},
                 as_of=BAR + pd.Timedelta("1h"), stop=stop)
    sent = [r["params"] for r in desk.calls("POST", ALGO)]
    # the nearest tick, 4.800, is past the core's stop: one tick nearer the entry, 4.801; the
    # quantities are the legs the exchange filled (1999.96 and 999.98 NEAR to whole units)
    assert [(p["type"], p["positionSide"], p["quantity"], p["triggerPrice"]) for p in sent] == [
        ("STOP_MARKET", "LONG", "1999", "4.801"), ("TAKE_PROFIT_MARKET", "SHORT", "999", "4.801")]


# ---------------------------------------------------------------------------- fired
def test_a_fired_stop_is_booked_from_the_exchange_once(book: PaperBook) -> None:
    desk, exchange = desk_and_exchange(avg_price=5.0)
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: 5.0, env=KEYS)
    cycle(ex, 0, [OrderIntent("main", "NEAR", "buy", 600)], stop=4.8764)
    cid = "cml-NEAR-1773140400000-p-NEAR"
    spawned = desk.fire(cid, avg_price=4.860)  # the bar fell through 4.877; filled at 4.860
    # the core saw the bar cross its stop too: its closing order must not be sent again
    core_close = OrderIntent("main", "NEAR", "sell", 600, "stop", ref_price=4.8764)
    result = cycle(ex, 1, [core_close])
    assert result.stops_fired == 1 and result.fills == 1
    assert len(desk.orders) == 1  # the opening buy only: no second closing order
    assert [r["params"].get("orderId") for r in desk.calls("GET", "/fapi/v1/order")] == [spawned]
    orders = book.frames()["orders"]
    booked = orders[orders["client_order_id"] == cid].iloc[0]
    assert (booked["order_type"], booked["side"], booked["qty"], booked["status"]) == (
        "stop", "sell", 600.0, "filled")
    assert booked["exchange_order_id"] == spawned
    fill = book.frames()["fills"].iloc[-1]
    assert (fill["price"], fill["qty"], fill["ref_price"]) == (4.86, 600.0, 4.877)
    assert fill["realised_pnl"] == pytest.approx(600 * (4.86 - 5.0))  # -84, by hand
    assert fill["slippage"] == pytest.approx(600 * (4.877 - 4.86))  # below the trigger
    assert book.state().legs_of("NEAR") == []
    assert list(book.frames()["stop_orders"]["state"]) == ["fired"]
    # a restart that died before marking it fired: it is found booked, not booked again
    book.update_stop(cid, "open")
    again = cycle(ex, 2)
    assert again.stops_fired == 0 and len(book.frames()["fills"]) == 2
    assert list(book.frames()["stop_orders"]["state"]) == ["fired"]
    assert len(desk.orders) == 1 and len(desk.calls("POST", ALGO)) == 1


def test_a_stop_the_core_did_not_see_fire_is_booked_and_nothing_else_traded(
        book: PaperBook) -> None:
    desk, exchange = desk_and_exchange(avg_price=5.0)
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: 5.0, env=KEYS,
                  hedge_mode=True)
    cycle(ex, 0, [OrderIntent("main", "NEAR", "buy", 600), OrderIntent("hedge", "NEAR", "sell",
                                                                       200)], stop=4.8764)
    desk.fire("cml-NEAR-1773140400000-p-NEAR", avg_price=4.876)
    desk.fire("cml-NEAR-1773140400000-q-NEAR", avg_price=4.876)
    rebalance = OrderIntent("main", "NEAR", "buy", 50)  # the core still holds the position
    result = cycle(ex, 1, [rebalance], stop=4.8764)
    assert result.stops_fired == 2
    assert len(desk.orders) == 2  # the two opening orders: the rebalance was not sent
    assert book.state().legs_of("NEAR") == []
    assert len(desk.calls("POST", ALGO)) == 2  # flat: no new stop placed
    realised = book.frames()["fills"]["realised_pnl"].iloc[-2:].sum()
    assert realised == pytest.approx(600 * (4.876 - 5.0) - 200 * (4.876 - 5.0))  # -49.6


def test_a_netted_stop_in_one_way_mode_closes_both_legs_in_the_book(book: PaperBook) -> None:
    desk, exchange = desk_and_exchange(avg_price=5.0)
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: 5.0, env=KEYS)
    cycle(ex, 0, [OrderIntent("main", "NEAR", "buy", 600), OrderIntent("hedge", "NEAR", "sell",
                                                                       200)], stop=4.8764)
    (sent,) = desk.calls("POST", ALGO)  # the exchange nets the legs: one order for 400
    assert (sent["params"]["quantity"], sent["params"]["reduceOnly"]) == ("400", "true")
    desk.fire("cml-NEAR-1773140400000-p-NEAR", avg_price=4.86)
    assert cycle(ex, 1).stops_fired == 2  # one order, two legs of the book closed
    fills = book.frames()["fills"].iloc[2:]
    assert [(f.leg, f.side, f.qty, f.price) for f in fills.itertuples()] == [
        ("main", "sell", 600.0, 4.86), ("hedge", "buy", 200.0, 4.86)]
    # realised 600 x (4.86 - 5) - 200 x (4.86 - 5) = -56, the net 400's; the fee is the one
    # the exchange charged on the 400 it filled (taker 0.05 %), split 3:1 over the legs
    assert fills["realised_pnl"].sum() == pytest.approx(400 * (4.86 - 5.0))
    assert fills["fee"].sum() == pytest.approx(0.0005 * 400 * 4.86)
    assert book.state().legs_of("NEAR") == [] and book.live_stops("NEAR") == []
    assert list(book.frames()["orders"]["client_order_id"].iloc[2:]) == [
        "cml-NEAR-1773140400000-p-NEAR", "cml-NEAR-1773140400000-p-NEAR/hedge"]


def test_when_only_the_core_saw_the_stop_the_cycle_closes_and_cancels(book: PaperBook) -> None:
    desk, exchange = desk_and_exchange(avg_price=4.87)
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: 5.0, env=KEYS)
    cycle(ex, 0, [OrderIntent("main", "NEAR", "buy", 600)], stop=4.8764)
    core_close = OrderIntent("main", "NEAR", "sell", 600, "stop", ref_price=4.8764)
    result = cycle(ex, 1, [core_close])  # the exchange's stop is still resting (NEW)
    assert result.stops_fired == 0 and result.fills == 1
    assert [o["params"]["side"] for o in desk.orders] == ["BUY", "SELL"]  # closed at market
    assert len(desk.calls("DELETE", ALGO)) == 1 and book.live_stops("NEAR") == []


def test_a_stop_that_never_reached_the_exchange_is_resolved_then_placed(
        book: PaperBook) -> None:
    from cascade_ml.trading.book import StopRecord

    desk, exchange = desk_and_exchange()
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: 5.0, env=KEYS)
    cycle(ex, 0, [OrderIntent("main", "NEAR", "buy", 600)])  # no stop yet
    lost = StopRecord("NEAR", "main", "NEAR", "sell", 600.0, 4.877, "STOP_MARKET", None,
                      "cml-NEAR-1773140400000-p-NEAR", BAR)
    book.add_stop(lost)  # written ahead, then the process died before sending it
    cycle(ex, 1, stop=4.8764)
    (query,) = desk.calls("GET", ALGO)
    assert query["params"]["clientAlgoId"] == lost.client_order_id  # asked by its client id
    assert list(book.frames()["stop_orders"]["state"]) == ["failed", "open"]
    assert len(desk.calls("POST", ALGO)) == 1


def test_paper_mode_sends_nothing(book: PaperBook) -> None:
    desk, exchange = desk_and_exchange()
    ex = Executor(book, mode="paper", exchange=exchange, prices=lambda i: 5.0, env=KEYS)
    cycle(ex, 0, [OrderIntent("main", "NEAR", "buy", 600)], stop=4.8764)
    cycle(ex, 1, stop=4.95)
    assert desk.requests == []
    # the same stop orders are kept in the book, at the core's price (no tick), moved as on
    # the exchange, with the resting stop's client ids and no exchange id
    rows = book.frames()["stop_orders"]
    assert [(r.state, r.trigger_price, r.qty, r.side, r.order_type, r.exchange_order_id)
            for r in rows.itertuples()] == [
        ("cancelled", 4.8764, 600.0, "sell", "STOP_MARKET", None),
        ("open", 4.95, 600.0, "sell", "STOP_MARKET", None)]
    assert list(rows["client_order_id"]) == ["cml-NEAR-1773140400000-p-NEAR",
                                             "cml-NEAR-1773144000000-p-NEAR"]
