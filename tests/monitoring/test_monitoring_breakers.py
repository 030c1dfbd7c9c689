"""Circuit breakers: each trips exactly at its limit (hand-computed), covers the right decisions,
resets the documented way, and survives a restart (its saved state)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cascade_ml.monitoring.breakers import BreakerConfig, BreakerState

DAY1 = pd.Timestamp("2026-04-01T00:00:00Z")
H = pd.Timedelta("1h")
CFG = BreakerConfig(daily_loss_limit=0.05, max_drawdown=0.15, stale_intervals=3)


def _restart(state: BreakerState) -> BreakerState:
    """What a restarted loop reads back (the state goes through JSON in loop_state.json)."""
    return BreakerState.from_dict(json.loads(json.dumps(state.to_dict())))


def test_daily_loss_trips_at_5_percent_of_the_days_starting_equity() -> None:
    state = BreakerState()
    assert state.check_book(CFG, 10_000.0, DAY1) == []  # the day starts at 10,000
    assert state.check_book(CFG, 9_501.0, DAY1 + 5 * H) == []  # lost 499 < 500
    assert state.reasons("NEAR") == []
    events = state.check_book(CFG, 9_500.0, DAY1 + 6 * H)  # lost 500: at the limit
    assert [e.kind for e in events] == ["trip"]
    reason = state.reasons("NEAR")[0]
    assert reason.startswith("circuit breaker daily_loss tripped on the bar of 2026-04-01 06:00")
    assert "lost 500.00" in reason and "(10,000.00 -> 9,500.00)" in reason
    assert "5.0% daily loss limit (500.00)" in reason
    assert state.check_book(CFG, 9_900.0, DAY1 + 7 * H) == []  # a recovery does not reset it
    assert state.reasons("ETH") == [reason]  # the book's breaker covers every symbol
    # the next UTC day starts at the last mark of the previous one (9,900) and resets it
    events = state.check_book(CFG, 9_900.0, DAY1 + 24 * H)
    assert [e.kind for e in events] == ["reset"] and "2026-04-02" in events[0].note
    assert state.day_start_equity == 9_900.0 and state.reasons("NEAR") == []


def test_a_loss_of_501_trips_and_the_first_bar_of_a_day_counts_against_its_start() -> None:
    state = BreakerState()
    state.check_book(CFG, 10_000.0, DAY1 + 23 * H)  # the mark at the close of day 1
    events = state.check_book(CFG, 9_499.0, DAY1 + 24 * H)  # the first bar of day 2: -501
    assert [e.kind for e in events] == ["trip"] and state.day_start_equity == 10_000.0


def test_max_drawdown_trips_at_15_percent_of_the_peak_and_needs_the_operator() -> None:
    state = BreakerState()
    cfg = CFG.model_copy(update={"daily_loss_limit": None})
    for i, equity in enumerate([10_000.0, 12_000.0, 10_201.0]):  # 1,799 below the peak
        assert state.check_book(cfg, equity, DAY1 + i * 24 * H) == []
    events = state.check_book(cfg, 10_200.0, DAY1 + 3 * 24 * H)  # 1,800 = 15 % of 12,000
    assert [e.kind for e in events] == ["trip"]
    assert "1,800.00 below its peak 12,000.00" in state.reasons("NEAR")[0]
    state = _restart(state)  # a restart keeps it tripped
    for i in range(4, 8):  # new days and a new high do not reset it
        assert state.check_book(cfg, 12_500.0, DAY1 + i * 24 * H) == []
    assert len(state.reasons("NEAR")) == 1
    events = state.reset(["max_drawdown"])
    assert [e.kind for e in events] == ["reset"] and events[0].note == "reset by the operator"
    # the reset starts a new peak at the next mark: 10,000 is no drawdown from it
    assert state.check_book(cfg, 10_000.0, DAY1 + 9 * 24 * H) == []
    assert state.peak_equity == 10_000.0 and state.reasons("NEAR") == []


def test_stale_data_trips_after_3_bars_without_a_fresh_row_and_resets_on_one() -> None:
    state = BreakerState()
    assert state.check_stale(CFG, "NEAR", 2, DAY1) == []
    events = state.check_stale(CFG, "NEAR", 3, DAY1 + H)
    assert [e.kind for e in events] == ["trip"]
    assert "its newest feature row (and forecast) is 3 bars old" in state.reasons("NEAR")[0]
    assert state.reasons("ETH") == []  # only the stale symbol fails safe
    assert state.check_stale(CFG, "NEAR", 4, DAY1 + 2 * H) == []  # one trip, one alert
    state = _restart(state)
    assert state.check_stale(CFG, "NEAR", 1, DAY1 + 3 * H) == []  # still stale-ish: kept
    assert len(state.reasons("NEAR")) == 1
    events = state.check_stale(CFG, "NEAR", 0, DAY1 + 4 * H)
    assert [e.kind for e in events] == ["reset"] and state.reasons("NEAR") == []


def test_status_reads_each_breaker_against_its_limit() -> None:
    state = BreakerState()
    state.check_book(CFG, 10_000.0, DAY1)
    state.check_book(CFG, 9_000.0, DAY1 + H)
    state.check_stale(CFG, "NEAR", 1, DAY1 + H)
    got = {(s.breaker, s.scope): s for s in state.status()}
    assert got["daily_loss", "book"].value == pytest.approx(0.10)
    assert got["daily_loss", "book"].tripped and got["daily_loss", "book"].limit == 0.05
    assert got["max_drawdown", "book"].value == pytest.approx(0.10)
    assert not got["max_drawdown", "book"].tripped
    assert got["stale_data", "NEAR"].value == 1.0 and not got["stale_data", "NEAR"].tripped


def test_a_breaker_set_to_null_never_trips() -> None:
    off = BreakerConfig(daily_loss_limit=None, max_drawdown=None, stale_intervals=None)
    state = BreakerState()
    assert state.check_book(off, 10_000.0, DAY1) == []
    assert state.check_book(off, 1_000.0, DAY1 + H) == []
    assert state.check_stale(off, "NEAR", 100, DAY1 + H) == []
    assert state.reasons("NEAR") == [] and state.status() == []


def test_limits_outside_their_range_are_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="daily_loss_limit"):
        BreakerConfig(daily_loss_limit=1.5)
    with pytest.raises(ValidationError, match="stale_intervals"):
        BreakerConfig(stale_intervals=0)
