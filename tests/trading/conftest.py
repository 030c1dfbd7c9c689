"""Fixtures of the trading tests: a hand-made replay history and the simulated venue over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from trading.venue_helpers import NEAR_BARS, POLICY, at, bars_store

from cascade_ml.data.sources.replay import ReplayExchange
from cascade_ml.data.store import MarketStore
from cascade_ml.live.clock import SimClock
from cascade_ml.trading.book import PaperBook
from cascade_ml.trading.faults import FaultPlan
from cascade_ml.trading.venue import SimulatedBinance, venue_client


@pytest.fixture(scope="session")
def hand_store(tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    return bars_store(tmp_path_factory.mktemp("hand_store"), NEAR_BARS)


@pytest.fixture
def venue(hand_store: MarketStore, tmp_path: Path):  # noqa: ANN201
    """A factory: ``make(faults=FaultPlan(...)) -> (SimulatedBinance, ccxt client, SimClock)``
    with the clock just after bar 1 closed (the last close is 5.05)."""

    def make(faults: FaultPlan | None = None, path: Path | None = None):  # noqa: ANN202
        clock = SimClock(at(2))
        sim = SimulatedBinance(ReplayExchange(hand_store, clock), policy=POLICY, faults=faults,
                               path=path)
        return sim, venue_client(sim, rate_limit_ms=1), clock

    return make


@pytest.fixture
def book(tmp_path: Path) -> PaperBook:
    with PaperBook(f"sqlite:///{tmp_path / 'book.db'}", initial_cash=10_000.0) as b:
        yield b
