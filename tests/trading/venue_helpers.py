"""Shared values of the trading tests (a module of its own: ``conftest`` is not importable by
name when several test folders have one)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.policy.config import PolicyConfig

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


def bars_store(root: Path, bars: list[tuple[float, float, float, float]]) -> MarketStore:
    """A store under ``root`` holding hand-made NEAR hourly bars (open, high, low, close) from
    START, volume 1000 each."""
    store = MarketStore(root)
    index = pd.date_range(START, periods=len(bars), freq="1h", name="timestamp")
    frame = pd.DataFrame(bars, index=index, columns=["open", "high", "low", "close"])
    frame["volume"] = 1000.0
    store.write(PartitionKey("ohlcv", "binance", "NEAR", "1h"), frame)
    return store
