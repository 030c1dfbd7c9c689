"""Faults injected at the simulated venue, retries, and reconciliation of the book against the
exchange (real ccxt.binanceusdm, the venue mounted as its transport, no network)."""

from __future__ import annotations

import pandas as pd
import pytest
from trading.venue_helpers import KEYS, POLICY, at

from cascade_ml.policy import PolicyConfig, PolicyInputs, decide
from cascade_ml.policy.schemas import Forecast, Freshness, Position
from cascade_ml.trading.book import PaperBook
from cascade_ml.trading.execution import Executor, client_order_id
from cascade_ml.trading.faults import FaultPlan
from cascade_ml.trading.orders import OrderIntent
from cascade_ml.trading.reconcile import Judged
from cascade_ml.trading.retry import Backoff

BAR = at(1, 0)  # bar 1 (closed at at(2))
MARKS = {"NEAR": 5.05}


def _executor(book: PaperBook, client, waits: list[float] | None = None) -> Executor:  # noqa: ANN001
    ex = Executor(book, mode="testnet", policy=POLICY, exchange=client, env=KEYS)
    ex.sleep = (waits if waits is not None else []).append
    ex.backoff = Backoff(attempts=4, base_s=0.5)
    return ex


def _buy(qty: float = 100.0) -> OrderIntent:
    return OrderIntent("main", "NEAR", "buy", qty, ref_price=5.05)


def _cycle(ex: Executor, bar=BAR, intents=None):  # noqa: ANN001, ANN202
    return ex.run_cycle("NEAR", bar, decide_with([]), intents or [_buy()], marks=MARKS,
                        as_of=bar + pd.Timedelta("1h10s"))


def _order(book: PaperBook):  # noqa: ANN202
    return book.frames()["orders"].iloc[-1]


CID = client_order_id("NEAR", BAR, "main", "NEAR")


@pytest.mark.parametrize(("fault", "status"), [("rate_limit", 429), ("ban", 418)])
def test_rate_limits_wait_retry_after_then_the_order_goes_once(
        venue, book: PaperBook, fault: str, status: int) -> None:  # noqa: ANN001
    sim, client, _ = venue(FaultPlan(script=(fault,), retry_after_s=7.0))
    waits: list[float] = []
    result = _cycle(_executor(book, client, waits))
    assert waits == [7.0]  # the Retry-After header, not the back-off's 0.5 s
    assert result.fills == 1 and _order(book)["status"] == "filled"
    assert sim.fault_counts == {fault: 1}
    assert sim.client_ids_sent() == {CID: 2}  # refused once, then accepted
    assert sim.position("NEARUSDT") == 100 == book.state().qty("NEAR", "main", "NEAR")


def test_timeout_after_acceptance_is_resolved_by_reconciliation_not_resent(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, clock = venue(FaultPlan(script=("timeout",)))
    ex = _executor(book, client)
    result = _cycle(ex)
    order = _order(book)
    assert result.fills == 0 and order["status"] == "submitted"
    assert "RequestTimeout" in order["reason"] and "never sent again" in order["reason"]
    assert sim.position("NEARUSDT") == 100 and book.state().legs == ()  # the exchange did it
    assert ex.reconcile(["NEAR"], ["NEAR"], at(2, 20)) == ["NEAR"]
    order, fill = _order(book), book.frames()["fills"].iloc[-1]
    assert order["status"] == "filled" and "resolved from the exchange" in order["reason"]
    assert fill["qty"] == 100 and fill["price"] == pytest.approx(5.05 * 1.0005)
    assert book.state().qty("NEAR", "main", "NEAR") == 100
    assert sim.client_ids_sent() == {CID: 1} and ex.reconciler.halts == {}


def test_server_error_either_way_the_book_follows_the_exchange(venue, tmp_path) -> None:  # noqa: ANN001
    seen = set()
    for seed in range(12):  # the plan's coin says whether the 503'd order was executed
        with PaperBook(f"sqlite:///{tmp_path / f'b{seed}.db'}", initial_cash=10_000.0) as book:
            sim, client, _ = venue(FaultPlan(seed=seed, script=("server_error",)))
            ex = _executor(book, client)
            _cycle(ex)
            assert _order(book)["status"] == "submitted"
            assert "ExchangeNotAvailable" in _order(book)["reason"]
            ex.reconcile(["NEAR"], ["NEAR"], at(2, 20))
            executed = sim.position("NEARUSDT") == 100
            assert _order(book)["status"] == ("filled" if executed else "failed")
            assert book.state().qty("NEAR", "main", "NEAR") == sim.position("NEARUSDT")
            assert sim.client_ids_sent() == {CID: 1} and ex.reconciler.halts == {}
            seen.add(executed)
        if seen == {True, False}:
            break
    assert seen == {True, False}


def test_partial_fill_books_what_filled(venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, _ = venue(FaultPlan(script=("partial_fill",), partial_fraction=0.4))
    ex = _executor(book, client)
    result = _cycle(ex)
    order, fill = _order(book), book.frames()["fills"].iloc[-1]
    assert result.fills == 1 and fill["qty"] == 40
    assert order["status"] == "filled" and order["reason"] == "partially filled: 40 of 100"
    ex.reconcile(["NEAR"], ["NEAR"], at(2, 20))
    assert ex.reconciler.halts == {} and sim.position("NEARUSDT") == 40


def test_margin_rejection_is_a_failed_order_and_nothing_else(venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, _ = venue(FaultPlan(script=("margin",)))
    ex = _executor(book, client)
    result = _cycle(ex)
    order = _order(book)
    assert result.fills == 0 and order["status"] == "failed"
    assert order["reason"].startswith("InsufficientFunds") and "-2019" in order["reason"]
    assert sim.position("NEARUSDT") == 0 and sim.client_ids_sent() == {CID: 1}
    ex.reconcile(["NEAR"], ["NEAR"], at(2, 20))
    assert ex.reconciler.halts == {}


def test_hand_changed_position_halts_the_symbol_and_fails_its_decisions_safe(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, clock = venue(FaultPlan(script=("none", "hand_change")))
    ex = _executor(book, client)
    _cycle(ex)
    clock.set(at(3))
    bar2 = BAR + pd.Timedelta("1h")
    _cycle(ex, bar2, [OrderIntent("main", "NEAR", "buy", 20.0, ref_price=4.9)])
    # someone halved the 100 NEAR by hand before the second order: the book holds 120, the
    # exchange 70
    assert sim.position("NEARUSDT") == 70 and book.state().qty("NEAR", "main", "NEAR") == 120
    ex.reconcile(["NEAR"], ["NEAR"], at(3, 20))
    why = ex.reconciler.halts["NEAR"]
    assert "the exchange holds +70 NEAR, the book +120" in why and "web_" in why
    assert not decide_with([]).fail_safe
    fail = decide_with(ex.halt_reasons("NEAR"))  # the loop's one fail-safe path
    assert fail.fail_safe and any("changed outside the loop" in r for r in fail.reasons)
    # orders for the halted symbol are refused, even ones that would fit the caps
    clock.set(at(4))
    bar3 = bar2 + pd.Timedelta("1h")
    result = _cycle(ex, bar3, [OrderIntent("main", "NEAR", "buy", 1.0, ref_price=4.9)])
    assert result.refused == 1 and "halted" in _order(book)["reason"]
    assert sim.client_ids_sent().get(client_order_id("NEAR", bar3, "main", "NEAR")) is None


def decide_with(reasons: list[str]):  # noqa: ANN201
    """A real decision for a NEAR long (room for 100 NEAR), with ``reasons`` as the monitor's."""
    inputs = PolicyInputs(
        symbol="NEAR", forecast=Forecast(sigma_h=0.05, horizon_hours=24, cascade_prob=0.05),
        position=Position(side="long", notional=5_000.0, entry_price=5.0, mark_price=5.0,
                          leverage=0.5, margin_mode="cross", hedge_ratio=0.0),
        equity=10_000.0, freshness=Freshness(forecast_age_s=60.0, features_age_s=60.0))
    return decide(inputs, PolicyConfig(), monitor_reasons=reasons)


def test_kill_between_send_and_book_books_the_order_once_from_the_exchange(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, _ = venue()
    ex = _executor(book, client)

    def killed(record):  # noqa: ANN001, ANN202 - the process dies before the book's commit
        raise KeyboardInterrupt("kill -9")

    ex.book.record_cycle = killed  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        _cycle(ex)
    assert sim.position("NEARUSDT") == 100 and book.frames()["orders"].empty
    # restart: a fresh executor on the same book and exchange
    book2 = PaperBook(book.url)
    fresh = _executor(book2, client)
    assert fresh.reconcile(["NEAR"], ["NEAR"], at(2, 30)) == []
    assert fresh.reconciler.halts == {}  # explained: an order of ours not booked yet
    assert CID in fresh.reconciler.unbooked
    result = _cycle(fresh)  # the loop repeats the bar it was in
    order = _order(book2)
    assert result.fills == 1 and order["status"] == "filled"
    assert order["reason"].startswith("booked from the exchange")
    assert sim.client_ids_sent() == {CID: 1}  # never sent twice
    assert book2.state().qty("NEAR", "main", "NEAR") == 100 == sim.position("NEARUSDT")
    assert len(book2.frames()["fills"]) == 1
    fresh.reconcile(["NEAR"], ["NEAR"], at(2, 40))
    assert fresh.reconciler.halts == {} and fresh.reconciler.unbooked == {}
    book2.close()


def test_a_cycle_retried_in_the_same_process_never_resends(venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, _ = venue()
    ex = _executor(book, client)
    record = ex.book.record_cycle

    def fails_once(rec):  # noqa: ANN001, ANN202 - the book's commit fails, the process lives on
        ex.book.record_cycle = record  # type: ignore[method-assign]
        raise RuntimeError("database is locked")

    ex.book.record_cycle = fails_once  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        _cycle(ex)
    result = _cycle(ex)  # the same cycle again: the order is looked up, not sent
    assert result.fills == 1 and _order(book)["reason"].startswith("booked from the exchange")
    assert sim.client_ids_sent() == {CID: 1}
    assert book.state().qty("NEAR", "main", "NEAR") == 100 == sim.position("NEARUSDT")


def test_the_halt_lifts_once_the_position_is_put_back(venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, clock = venue(FaultPlan(script=("none", "hand_change"),
                                         hand_change_undo_s=3600.0))
    ex = _executor(book, client)
    _cycle(ex)
    bar2 = BAR + pd.Timedelta("1h")
    clock.set(at(3))
    _cycle(ex, bar2, [OrderIntent("main", "NEAR", "buy", 20.0, ref_price=4.9)])
    ex.reconcile(["NEAR"], ["NEAR"], at(3, 20))
    assert "NEAR" in ex.reconciler.halts
    clock.set(at(4, 30))  # an hour later the 50 NEAR taken by hand are bought back by hand
    ex.reconcile(["NEAR"], ["NEAR"], at(4, 30))
    assert sim.position("NEARUSDT") == 120  # the positions agree; the order that did it is
    assert ex.reconciler.halts["NEAR"].startswith("orders the loop did not send on NEAR: web_")
    ex.reconcile(["NEAR"], ["NEAR"], at(4, 40))  # reported once: the next cycle trades again
    assert ex.reconciler.halts == {}
    assert sim.fault_counts == {"hand_change": 1, "hand_change_undone": 1}


# ---------------------------------------------------------------- restarts: what was judged
# In the loop a cycle reconciles at the clock's now, then records its decision with that now
# as ``as_of``; the venue stamps a hand change made during the cycle's orders with the same now.

def _loop_cycle(ex: Executor, clock, hour: int, qty: float = 20.0) -> None:  # noqa: ANN001
    """One loop cycle at ``at(hour)``: reconcile, then decide with the halt and record."""
    clock.set(at(hour))
    ex.reconcile(["NEAR"], ["NEAR"], at(hour))
    ex.run_cycle("NEAR", at(hour - 1, 0), decide_with(ex.halt_reasons("NEAR")),
                 [OrderIntent("main", "NEAR", "buy", qty, ref_price=5.0)], marks=MARKS,
                 as_of=at(hour))


def _restart(book: PaperBook, client, clock, hour: int,  # noqa: ANN001
             symbol: str = "NEAR") -> tuple[PaperBook, Executor]:
    """kill -9, then a fresh process on the same book and venue reconciles at ``at(hour)``."""
    clock.set(at(hour))
    book2 = PaperBook(book.url)
    fresh = _executor(book2, client)
    fresh.reconcile([symbol], ["NEAR"], at(hour))
    return book2, fresh


def _hand_change_at_3(venue, book: PaperBook):  # noqa: ANN001, ANN202
    """Cycles at at(2) (buy 100) and at(3) (buy 20), the venue selling 50 NEAR by hand at at(3)
    and buying them back at the next request an hour later: (sim, client, clock, executor)."""
    sim, client, clock = venue(FaultPlan(script=("none", "hand_change"),
                                         hand_change_undo_s=3600.0))
    ex = _executor(book, client)
    _loop_cycle(ex, clock, 2, qty=100.0)
    _loop_cycle(ex, clock, 3)
    return sim, client, clock, ex


def test_a_restart_does_not_halt_again_for_hand_changes_already_judged(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, clock, ex = _hand_change_at_3(venue, book)  # sold by hand before at(3)'s order
    _loop_cycle(ex, clock, 4)  # bought back by hand at this cycle's first request: halted
    halt = book.frames()["decisions"].iloc[-1]["reasons"]
    assert sum("orders the loop did not send on NEAR: web_" in r for r in halt) == 1
    assert sim.fault_counts == {"hand_change": 1, "hand_change_undone": 1}
    assert sim.position("NEARUSDT") == 120 == book.state().qty("NEAR", "main", "NEAR")
    # the hand change (at(3), before the last cycle) and its undo (at(4), named by the halt
    # the book recorded) were judged: the restart two days' look-back reads them, not a halt
    book2, fresh = _restart(book, client, clock, 5)
    assert fresh.reconciler.halts == {}
    book2.close()


def test_a_hand_change_while_the_process_was_down_halts_the_restart(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, clock = venue(FaultPlan())
    ex = _executor(book, client)
    _loop_cycle(ex, clock, 2, qty=100.0)
    _loop_cycle(ex, clock, 3)
    assert ex.reconciler.halts == {}
    # killed; while it is down someone sells 30 NEAR by hand and buys them back
    clock.set(at(3, 600))
    client.create_order("NEAR/USDT:USDT", "market", "sell", 30.0)
    clock.set(at(3, 1200))
    client.create_order("NEAR/USDT:USDT", "market", "buy", 30.0)
    assert sim.position("NEARUSDT") == 120 == book.state().qty("NEAR", "main", "NEAR")
    book2, fresh = _restart(book, client, clock, 4)
    why = fresh.reconciler.halts["NEAR"]
    assert why.startswith("orders the loop did not send on NEAR: ")
    assert "(sell 30, closed)" in why and "(buy 30, closed)" in why
    assert "the exchange holds" not in why  # the positions agree: the orders alone halt
    book2.close()


def test_a_hand_change_in_the_last_cycle_after_its_reconciliation_halts_the_restart(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, clock, ex = _hand_change_at_3(venue, book)  # at(3): after that cycle's reading
    assert ex.reconciler.halts == {}
    # killed before the next cycle read it: the restart is the first to see it (and its undo,
    # made at its first request), though it bears the last cycle's time
    book2, fresh = _restart(book, client, clock, 4)
    assert sim.fault_counts == {"hand_change": 1, "hand_change_undone": 1}
    why = fresh.reconciler.halts["NEAR"]
    assert why.startswith("orders the loop did not send on NEAR: web_")
    assert "(sell 50, closed)" in why and "(buy 50, closed)" in why
    book2.close()


def test_a_position_difference_halts_the_restart_though_its_orders_were_judged(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, clock = venue(FaultPlan(script=("none", "hand_change")))  # never undone
    ex = _executor(book, client)
    _loop_cycle(ex, clock, 2, qty=100.0)
    _loop_cycle(ex, clock, 3)
    _loop_cycle(ex, clock, 4)  # reads the hand change: halted, the halt recorded
    assert "web_" in ex.reconciler.halts["NEAR"]
    book2, fresh = _restart(book, client, clock, 5)
    why = fresh.reconciler.halts["NEAR"]
    assert why == ("the exchange holds +70 NEAR, the book +120: a position changed outside "
                   "the loop")  # 100 + 20 booked, 50 of them sold by hand
    book2.close()


def test_a_restart_does_not_halt_for_orders_made_before_its_last_cycle_that_halted_nothing(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    # a loop deciding for BTC that hedges in NEAR (BTC's own market is left out): hand orders on
    # NEAR while BTC holds no NEAR halt nothing, so no halt in the book names them
    sim, client, clock = venue(FaultPlan())
    ex = _executor(book, client)

    def cycle(hour: int, intents: list[OrderIntent]) -> None:
        clock.set(at(hour))
        ex.reconcile(["BTC"], ["NEAR"], at(hour))
        assert ex.reconciler.halts == {}
        ex.run_cycle("BTC", at(hour - 1, 0), decide_with(ex.halt_reasons("BTC")), intents,
                     marks=MARKS, as_of=at(hour))

    cycle(2, [])
    clock.set(at(2, 600))
    client.create_order("NEAR/USDT:USDT", "market", "buy", 30.0)
    clock.set(at(2, 1200))
    client.create_order("NEAR/USDT:USDT", "market", "sell", 30.0)
    cycle(3, [OrderIntent("hedge", "NEAR", "sell", 10.0, ref_price=5.05)])
    assert book.state().qty("BTC", "hedge", "NEAR") == -10 == sim.position("NEARUSDT")
    # BTC now holds NEAR; the restart's look-back reads the hand orders, made before at(3)
    book2, fresh = _restart(book, client, clock, 4, "BTC")
    assert fresh.reconciler.halts == {}
    book2.close()


def test_a_cycle_that_could_not_read_the_exchange_judged_nothing() -> None:
    ms = lambda t: int(t.value // 1_000_000)  # noqa: E731
    unread = ("reconciliation: the exchange could not be read to reconcile the book "
              "(NetworkError: down); trading in NEAR halted")
    decisions = pd.DataFrame({"as_of": [at(2), at(3)], "reasons": [[], [unread]]})
    judged = Judged.from_decisions(decisions)
    # the newest cycle that read the exchange is at(2): an order of at(2, 600) was never read
    assert {"id": "7", "timestamp": ms(at(2, 600)), "status": "closed"} not in judged
    assert {"id": "6", "timestamp": ms(at(2)) - 1, "status": "closed"} in judged
    # an order filled after that cycle counts from its fill, whenever it was placed
    assert {"id": "5", "timestamp": ms(at(1)), "lastTradeTimestamp": ms(at(2, 60))} not in judged
