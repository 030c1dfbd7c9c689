"""Backtest = paper: the same bars (the bundled NEAR sample) and forecasts through the backtest
engine and through the live paper path (trading core bar by bar, executor, SQLite book) give the
same trades, stops, fees and funding, and an equity path within 1 basis point per bar."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from parity import (  # noqa: E402
    backtest,
    paper,
    paper_stop_bars,
    paper_trade_bars,
    toy_forecasts,
    trade_bars,
)

from cascade_ml.data.store import MarketStore  # noqa: E402
from cascade_ml.policy import PolicyConfig  # noqa: E402
from cascade_ml.trading.config import TradingConfig  # noqa: E402

SPANS = {
    # NEAR fell through the position's stop at 21:00 on 2025-10-10; funding settles 3 times
    "stop": ("2025-10-10T06:00Z", "2025-10-11T06:00Z", [15]),
    # an ordinary day: hedge rebalances and funding, no stop
    "funding": ("2026-04-01T00:00Z", "2026-04-02T00:00Z", []),
}


@pytest.fixture(scope="module")
def near(sample_store: MarketStore) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    key = next(k for k in sample_store.partitions("ohlcv", "NEAR", "binance")
               if k.interval == "1h")
    ohlcv = sample_store.read_partition(key)
    funding = sample_store.read_partition(sample_store.partitions("funding", "NEAR",
                                                                  "binance")[0])
    return ohlcv, funding, toy_forecasts(ohlcv["close"])


@pytest.mark.parametrize("span", list(SPANS))
def test_backtest_and_paper_book_agree(near, span: str, tmp_path: Path) -> None:  # noqa: ANN001
    ohlcv, funding, forecasts = near
    start, end, stops = SPANS[span]
    preds = forecasts[(forecasts.index >= start) & (forecasts.index < end)]
    policy, trading = PolicyConfig(), TradingConfig()
    r, index = backtest(ohlcv, preds, funding, policy, trading)
    run = paper(ohlcv, preds, funding, policy, trading, tmp_path / "book.db")
    assert len(index) == len(run.index) == 24 and run.index.equals(index)
    # the same trades, on the same bars
    assert r.trades >= 2 and paper_trade_bars(run) == trade_bars(r)
    # the same stops (the stop span's stop fired at its bar: both legs closed, booked as stops)
    assert r.stop_bars == paper_stop_bars(run) == stops
    assert r.liquidation_bars == []
    if stops:
        orders = run.frames["orders"]
        closed = orders[orders["order_type"] == "stop"]
        assert closed[["leg", "side"]].values.tolist() == [["main", "sell"], ["hedge", "buy"]]
    # the same fees (fee + half spread) and funding (paid > 0 in the engine, < 0 in the book)
    fills, paid = run.frames["fills"], run.frames["funding_payments"]
    assert fills["fee"].sum() + fills["slippage"].sum() == pytest.approx(r.fees, rel=1e-9)
    assert r.funding != 0 and -paid["amount"].sum() == pytest.approx(r.funding, rel=1e-9)
    # equity within 1 basis point on every bar
    assert np.max(np.abs(run.equity / r.equity - 1)) < 1e-4
