"""Fixtures of the trading tests: a hand-made replay history and the simulated venue over it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cascade_ml.data.sources.replay import ReplayExchange
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.live.clock import SimClock
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.trading.book import PaperBook
from cascade_ml.trading.faults import FaultPlan
from cascade_ml.trading.venue import SimulatedBinance, venue_client

START = pd.Timestamp("2026-03-10T00:00:00Z")
# NEAR hourly bars (open, high, low, close) from START: bar 2's low reaches 4.80 from an open of
# 5.05; bar 4 opens at 4.50, below every earlier low (a gap down).
NEAR_BARS = [(5.00, 5.05, 4.95, 5.00), (5.00, 5.10, 4.98, 5.05), (5.05, 5.08, 4.80, 4.90),
             (4.90, 4.95, 4.85, 4.90), (4.50, 4.60, 4.40, 4.55), (4.55, 4.60, 4.50, 4.55),
             (4.55, 4.60, 4.50, 4.55), (4.55, 4.60, 4.50, 4.55)]
POLICY = PolicyConfig(taker_fee=0.0005, spread=0.001)  # fills 5 bps from the close, 5 bps fee
KEYS = {"CASCADE_ML_TESTNET_API_KEY": "k", "CASCADE_ML_TESTNET_API_SECRET": "s"}


def at(hour: int, seconds: int = 10) -> pd.Timestamp:
    """``seconds`` after the close of the bar opening at START + ``hour - 1`` hours."""
    return START + pd.Timedelta(hours=hour, seconds=seconds)


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
