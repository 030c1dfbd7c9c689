"""Fixtures of the trading tests: a hand-made replay history and the simulated venue over it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from trading.venue_helpers import NEAR_BARS, POLICY, START, at

from cascade_ml.data.sources.replay import ReplayExchange
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.live.clock import SimClock
from cascade_ml.trading.book import PaperBook
from cascade_ml.trading.faults import FaultPlan
from cascade_ml.trading.venue import SimulatedBinance, venue_client


@pytest.fixture(scope="session")
def hand_store(tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    store = MarketStore(tmp_path_factory.mktemp("hand_store"))
    index = pd.date_range(START, periods=len(NEAR_BARS), freq="1h", name="timestamp")
    frame = pd.DataFrame(NEAR_BARS, index=index, columns=["open", "high", "low", "close"])
    frame["volume"] = 1000.0
    store.write(PartitionKey("ohlcv", "binance", "NEAR", "1h"), frame)
    return store


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
