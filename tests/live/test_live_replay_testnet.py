"""A replay in testnet mode: the executor's real ccxt client trades with the simulated Binance
venue over the replay, with faults injected; afterwards the book equals the venue."""

from __future__ import annotations

from pathlib import Path

import pytest
from loop_helpers import FROM, SAMPLE, UNTIL, copy_replay, ledger_is_consistent

from cascade_ml.atomic import read_json
from cascade_ml.live.run import VENUE_FILE, replay_db_url, run_replay
from cascade_ml.trading.book import PaperBook
from cascade_ml.trading.venue import book_differences, wallet_audit

FAULTS = {"seed": 5, "rate_limit": 0.15, "ban": 0.1, "timeout": 0.2, "server_error": 0.2,
          "partial_fill": 0.2, "margin": 0.1, "reads": 0.05, "retry_after_s": 0.0}


def _run(replay_base: Path, tmp_path: Path, faults: dict) -> tuple[Path, list[str]]:
    replay = {"source": str(SAMPLE), "dir": str(tmp_path / "replay"), "faults": faults,
              "rate_limit_ms": 1}
    _, sections = copy_replay(replay_base, tmp_path, mode="testnet", replay=replay)
    lines: list[str] = []
    run_replay(sections, FROM, UNTIL, echo=lines.append, report_every=1)
    return tmp_path / "replay", lines


def test_testnet_replay_with_faults_ends_with_the_book_equal_to_the_venue(
        replay_base: Path, tmp_path: Path) -> None:
    d, _ = _run(replay_base, tmp_path, FAULTS)
    state = read_json(d / VENUE_FILE)
    frames = ledger_is_consistent(replay_db_url(d))
    with PaperBook(replay_db_url(d), migrate=False) as book:
        held = book.state()
    legs: dict[str, float] = {}
    for v in held.legs:
        legs[v.instrument] = legs.get(v.instrument, 0.0) + v.qty
    assert book_differences(frames["orders"], frames["fills"], legs, state, book=held) == []
    # the window's 08:00 settlement was charged on both sides: the venue's funding is the
    # book's, and a venue that charged none would be caught by the wallet check
    paid = frames["funding_payments"]["amount"].sum()
    wallet = wallet_audit(state, held)
    assert state["income"] and abs(paid) > 100 * wallet.tolerance
    assert wallet.funding == pytest.approx(paid, abs=wallet.tolerance)
    no_funding = {**state, "wallet": state["wallet"] - wallet.funding}
    assert [d[:7] for d in book_differences(frames["orders"], frames["fills"], legs,
                                            no_funding, book=held)] == ["wallet:"]
    assert state["trades"] and sum(state["faults"].values()) >= 3, state["faults"]
    assert set(frames["orders"]["mode"]) == {"testnet"}
    assert (frames["orders"]["status"] != "submitted").all()  # every lost answer resolved
    assert max(state["sent_ids"].values()) <= 1 + sum(  # resent only after a 429/418 refusal
        state["faults"].get(f, 0) for f in ("rate_limit", "ban"))


def test_a_hand_change_on_the_venue_fails_the_next_decisions_safe(
        replay_base: Path, tmp_path: Path) -> None:
    d, lines = _run(replay_base, tmp_path, {"seed": 1, "hand_change": 1.0})
    with PaperBook(replay_db_url(d), migrate=False) as book:
        decisions = book.frames()["decisions"]
    halted = decisions[decisions["reasons"].map(
        lambda rs: any("changed outside the loop" in r for r in rs))]
    assert len(halted) >= 1 and halted["fail_safe"].all()
    assert any("halted" in line for line in lines)


def test_a_restart_that_repeats_a_booked_bar_takes_the_books_legs(
        replay_base: Path, tmp_path: Path) -> None:
    """A process killed after the book's commit of a cycle and before the loop state's save
    repeats that bar when it restarts: the trading core re-settles it from the state saved a
    bar earlier and rebalances as if its orders filled, while the book already holds what the
    venue did with them (here every order rejected for margin: nothing held). The cycle is not
    written again, and the core must take the book's legs (flat), not the ones it assumed."""
    replay = {"source": str(SAMPLE), "dir": str(tmp_path / "replay"), "rate_limit_ms": 1,
              "faults": {"seed": 3, "margin": 1.0}}
    _, sections = copy_replay(replay_base, tmp_path, mode="testnet", replay=replay)
    state_file = tmp_path / "replay" / "loop_state.json"
    saved: list[bytes] = []
    run_replay(sections, FROM, UNTIL, echo=lambda line: None, max_cycles=3,
               watch=lambda loop, report: saved.append(state_file.read_bytes()))
    state_file.write_bytes(saved[1])  # killed after cycle 3's book commit, before its state
    with PaperBook(replay_db_url(tmp_path / "replay"), migrate=False) as book:
        orders = book.frames()["orders"]
    third = orders[orders["bar_ts"] == orders["bar_ts"].max()]
    assert len(third) and (third["status"] == "failed").all()  # the core assumed them filled
    seen: list[tuple[float, float, list]] = []

    def held(loop, report) -> None:  # noqa: ANN001
        ps = loop.trader.positions["NEAR"]
        seen.append((ps.main_q, ps.hedge_q, [v.qty for v in loop.book.state().legs]))

    run_replay(sections, FROM, UNTIL, echo=lambda line: None, max_cycles=1, watch=held)
    assert seen == [(0.0, 0.0, [])]  # the repeated bar: the core holds what the book holds


def test_a_replay_that_stops_after_a_lost_answer_ends_with_it_booked(
        replay_base: Path, tmp_path: Path) -> None:
    """Every order's answer is lost (a timeout after the venue accepted it) and the replay
    stops after its first cycle: no next cycle looks the orders up, so the replay's end does,
    and the book ends equal to the venue with no order left 'submitted'."""
    replay = {"source": str(SAMPLE), "dir": str(tmp_path / "replay"), "rate_limit_ms": 1,
              "faults": {"seed": 2, "timeout": 1.0}}
    _, sections = copy_replay(replay_base, tmp_path, mode="testnet", replay=replay)
    run_replay(sections, FROM, UNTIL, echo=lambda line: None, max_cycles=1)
    d = tmp_path / "replay"
    state = read_json(d / VENUE_FILE)
    assert state["faults"].get("timeout", 0) >= 1 and state["trades"]
    with PaperBook(replay_db_url(d), migrate=False) as book:
        frames = book.frames()
        legs: dict[str, float] = {}
        for v in book.state().legs:
            legs[v.instrument] = legs.get(v.instrument, 0.0) + v.qty
    orders = frames["orders"]
    assert len(orders) >= 1 and (orders["status"] == "filled").all(), orders["status"]
    assert orders["reason"].fillna("").str.contains("resolved from").all()
    assert book_differences(orders, frames["fills"], legs, state) == []
