"""Stops against the simulated venue (real ccxt.binanceusdm, the venue as its transport): the
soak's stop audit on hand-made bars, a stop whose placement answer was lost, and the race of
an exchange stop with the loop's own close in one-way mode (reduce-only: never reversed)."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from trading.test_reconcile import decide_with
from trading.venue_helpers import KEYS, NEAR_BARS, POLICY, START, at

from cascade_ml.trading.book import PaperBook
from cascade_ml.trading.execution import Executor
from cascade_ml.trading.faults import FaultPlan
from cascade_ml.trading.orders import OrderIntent
from cascade_ml.trading.retry import Backoff
from cascade_ml.trading.venue import book_differences, stop_audit

NEAR = "NEAR/USDT:USDT"
HOUR_MS = 3_600_000


def _bars() -> dict[str, pd.DataFrame]:
    start = int(START.value // 1_000_000)
    frame = pd.DataFrame(NEAR_BARS, columns=["open", "high", "low", "close"],
                         index=[start + k * HOUR_MS for k in range(len(NEAR_BARS))])
    return {"NEARUSDT": frame}


def _stop(client, trigger: float, cid: str, qty: float = 100):  # noqa: ANN001, ANN202
    return client.create_order(NEAR, "STOP_MARKET", "sell", qty, None,
                               {"stopPrice": trigger, "reduceOnly": True, "clientOrderId": cid})


def test_stop_audit_counts_placed_crossed_fired_on_hand_made_bars(venue) -> None:  # noqa: ANN001
    sim, client, clock = venue()
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in1"})
    _stop(client, 4.85, "cml-a")         # bar 2 (low 4.80 from 5.05) reaches it: at the stop
    clock.set(at(3))
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in2"})
    _stop(client, 4.70, "cml-b")         # bar 3 (low 4.85) not; bar 4 gaps to 4.50: at the open
    clock.set(at(5))
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in3"})
    _stop(client, 4.30, "cml-c")         # bars 5..7 never go below 4.50: rests, not crossed
    d = _stop(client, 4.52, "cml-d")     # would be reached by bar 5 (low 4.50), cancelled first
    client.cancel_order(d["id"], NEAR, {"trigger": True})
    clock.set(at(8))
    sim.trigger_stops()
    sim._save()  # the clock the audit reads (saved with every answer)
    audit = stop_audit(sim.state, _bars(), step_ms=HOUR_MS, policy=POLICY)
    assert (audit.placed, audit.crossed, audit.fired, audit.fired_empty) == (4, 2, 2, 0)
    assert audit.crossed_not_fired == audit.fired_not_crossed == audit.fired_off == []

    missed = copy.deepcopy(sim.state)  # a venue that let the gap through without firing
    b = next(a for a in missed["algo"] if a["clientAlgoId"] == "cml-b")
    b.update(algoStatus="NEW", triggerTime=0)
    assert stop_audit(missed, _bars(), step_ms=HOUR_MS,
                      policy=POLICY).crossed_not_fired == ["cml-b"]
    early = copy.deepcopy(sim.state)  # a fill at the stop although the bar opened below it
    a = next(x for x in early["algo"] if x["clientAlgoId"] == "cml-b")
    next(t for t in early["trades"] if t["orderId"] == int(a["actualOrderId"]))["price"] = \
        str(4.70 * 0.9995)
    assert stop_audit(early, _bars(), step_ms=HOUR_MS, policy=POLICY).fired_off == ["cml-b"]


def test_a_reduce_only_order_larger_than_the_position_is_cut_to_it(venue) -> None:  # noqa: ANN001
    sim, client, _ = venue()
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in"})
    order = client.create_order(NEAR, "market", "sell", 150, None,
                                {"reduceOnly": True, "clientOrderId": "cml-out"})
    assert order["filled"] == 100 and sim.position("NEARUSDT") == 0  # flat, never short 50


def _executor(book: PaperBook, client, prices=None) -> Executor:  # noqa: ANN001
    ex = Executor(book, mode="testnet", policy=POLICY, exchange=client, env=KEYS,
                  prices=prices)
    ex.sleep = [].append
    ex.backoff = Backoff(attempts=3, base_s=0.5)
    return ex


def _cycle(ex: Executor, hour: int, intents: list[OrderIntent], stop: float | None):  # noqa: ANN202
    bar = at(hour, 0)
    return ex.run_cycle("NEAR", bar, decide_with([]), intents, marks={"NEAR": 5.05},
                        as_of=bar + pd.Timedelta("1h10s"), stop=stop)


def test_a_stop_placement_whose_answer_was_lost_is_found_not_placed_twice(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, clock = venue(FaultPlan(script=("none", "timeout")))  # the stop times out
    ex = _executor(book, client)
    _cycle(ex, 1, [OrderIntent("main", "NEAR", "buy", 100, ref_price=5.05)], stop=4.0)
    assert [s.state for s in book.live_stops("NEAR")] == ["pending"]  # not "failed"
    assert [a["algoStatus"] for a in sim.state["algo"]] == ["NEW"]  # the venue placed it
    clock.set(at(3))
    _cycle(ex, 2, [], stop=4.0)
    (rest,) = book.live_stops("NEAR")
    assert rest.state == "open" and rest.exchange_order_id == str(sim.state["algo"][0]["algoId"])
    assert len(sim.state["algo"]) == 1  # one stop protects the position, not two


def test_the_loops_close_after_the_exchange_stop_fired_never_reverses(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, clock = venue()

    def price_while_the_market_moves(instrument: str) -> float:
        clock.set(at(3))  # bar 2 closes during the cycle: its low 4.80 reaches the stop 4.85
        return 4.90

    ex = _executor(book, client, prices=price_while_the_market_moves)
    _cycle(ex, 1, [OrderIntent("main", "NEAR", "buy", 100, ref_price=5.05)], stop=4.85)
    assert sim.position("NEARUSDT") == 100
    # the next cycle's look-up finds the stop resting; then the loop's close goes out while the
    # stop fires first on the exchange
    _cycle(ex, 2, [OrderIntent("main", "NEAR", "sell", 100)], stop=None)
    assert sim.position("NEARUSDT") == 0  # flat: the reduce-only close was refused, not short
    closes = [o for o in sim.state["orders"] if o["clientOrderId"].startswith("cml-NEAR")]
    assert [(o["type"], o["status"], o["executedQty"]) for o in closes] == [
        ("MARKET", "FILLED", "100.0"), ("STOP_MARKET", "FILLED", "100.0")]
    _cycle(ex, 3, [], stop=None)  # the next cycle books the exchange's stop
    legs = {v.instrument: v.qty for v in book.state().legs}
    assert legs.get("NEAR", 0.0) == 0.0
    frames = book.frames()
    assert book_differences(frames["orders"], frames["fills"], legs, sim.state) == []
    assert list(frames["stop_orders"]["state"]) == ["fired"]


def test_a_fired_stop_is_booked_at_what_the_exchange_filled_after_a_lost_answer(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    """Found by the tight-stop soak: a hedge order whose answer was lost filled on the venue
    after the one-way stop was sized (net 60); the stop then sold 60 of a net 70. The book must
    book what the venue filled, not close each leg in full: the same-perp hedge (-30) closes,
    the main leg sells 60 + 30 = 90 (100 -> 10), net +10 as on the venue, every quantity on the
    amount grid."""
    sim, client, clock = venue(FaultPlan(script=("none", "none", "none", "timeout")))
    ex = _executor(book, client)
    _cycle(ex, 1, [OrderIntent("main", "NEAR", "buy", 100, ref_price=5.05),
                   OrderIntent("hedge", "NEAR", "sell", 40, ref_price=5.05)], stop=4.85)
    assert sim.position("NEARUSDT") == 60
    (rest,) = book.live_stops("NEAR")
    assert rest.qty == 60  # the net position, one-way mode
    _cycle(ex, 2, [OrderIntent("hedge", "NEAR", "buy", 10, ref_price=5.05)], stop=4.85)
    assert sim.position("NEARUSDT") == 70  # the order whose answer was lost filled
    (rest,) = book.live_stops("NEAR")
    assert rest.qty == 60  # sized before that fill
    clock.set(at(3))
    sim.trigger_stops()  # bar 2's low 4.80 reaches 4.85
    assert sim.position("NEARUSDT") == pytest.approx(10)
    ex.reconcile(["NEAR"], ["NEAR"], at(3, 20))  # books the lost answer's fill
    _cycle(ex, 3, [], stop=None)  # books the fired stop
    legs = {(v.leg, v.instrument): v.qty for v in book.state().legs}
    assert legs[("main", "NEAR")] == pytest.approx(10)
    assert legs.get(("hedge", "NEAR"), 0.0) == 0.0
    net = {"NEAR": sum(legs.values())}
    assert net["NEAR"] == pytest.approx(10)
    frames = book.frames()
    assert book_differences(frames["orders"], frames["fills"], net, sim.state) == []


@pytest.mark.parametrize("restart", [True, False])
def test_a_fired_stop_is_booked_once_and_never_halts_as_an_order_sent_before_a_restart(
        venue, book: PaperBook, restart: bool) -> None:  # noqa: ANN001
    """Found by the tight-stop soak: the one-way stop rests (main +100, same-perp hedge -40:
    net 60), the process is killed, the stop fires on the venue while it is down (bar 2's low
    4.80 reaches 4.85), the loop restarts. Reconciliation must take the fired stop's order for
    what it is (a stop of the book's, booked by the cycle), not an order "sent before a
    restart": before the cycle books it the stop explains the difference (venue 0, book +60),
    after it nothing is left pending and the book equals the venue (the hedge closes its 40 in
    full, the main leg the fill 60 plus that hedge: 100 -> 0), so trading is never halted."""
    sim, client, clock = venue()
    ex = _executor(book, client)
    _cycle(ex, 1, [OrderIntent("main", "NEAR", "buy", 100, ref_price=5.05),
                   OrderIntent("hedge", "NEAR", "sell", 40, ref_price=5.05)], stop=4.85)
    (rest,) = book.live_stops("NEAR")
    assert (rest.qty, rest.side) == (60, "sell")
    clock.set(at(3))
    sim.trigger_stops()  # fired on the venue: the process is down (or has not booked it yet)
    assert sim.position("NEARUSDT") == pytest.approx(0)
    if restart:  # kill -9: a new process on the same book and venue
        ex = _executor(book, client)
    ex.reconcile(["NEAR"], ["NEAR"], at(3, 20))
    assert ex.reconciler.halts == {}  # explained: the stop's fill, booked by this cycle
    _cycle(ex, 3, [], stop=None)  # books the fired stop
    legs = {(v.leg, v.instrument): v.qty for v in book.state().legs}
    assert legs.get(("main", "NEAR"), 0.0) == pytest.approx(0)
    assert legs.get(("hedge", "NEAR"), 0.0) == pytest.approx(0)
    fills = book.frames()["fills"]
    stop_fills = sorted(fills.loc[fills["price"] < 5, "qty"])
    assert stop_fills == pytest.approx([40, 100])  # hedge in full, main the fill plus hedge
    # the venue sold 60 at the stop 4.85 (bar 2 opened above it) less half the spread 0.1 %
    assert list(fills.loc[fills["price"] < 5, "price"]) == pytest.approx([4.85 * 0.9995] * 2)
    for hour in (4, 5):  # the next cycles: nothing pending, no halt, trading goes on
        ex.reconcile(["NEAR"], ["NEAR"], at(hour, 20))
        assert ex.reconciler.halts == {}
        assert ex.reconciler.unbooked == {}
    result = _cycle(ex, 4, [OrderIntent("main", "NEAR", "buy", 10, ref_price=4.9)], stop=None)
    assert (result.fills, result.refused) == (1, 0)
    assert sim.position("NEARUSDT") == pytest.approx(10)
    frames = book.frames()
    net = {"NEAR": sum(v.qty for v in book.state().legs)}
    assert book_differences(frames["orders"], frames["fills"], net, sim.state) == []
    assert [s for s in frames["stop_orders"]["state"]] == ["fired"]
