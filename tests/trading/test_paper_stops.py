"""Paper mode's stop orders (``trading.stops.PaperStops``): on the same bars, the paper book's
stop order fires on the bar and at the price the backtest engine's stop does
(``backtest.engine.simulate``), and is kept in ``stop_orders`` as the exchange's would be."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from live.live_helpers import make_decision

from cascade_ml.backtest.engine import simulate
from cascade_ml.policy.config import NEAR_TIERS, PolicyConfig
from cascade_ml.trading.book import PaperBook
from cascade_ml.trading.config import TradingConfig
from cascade_ml.trading.execution import Executor
from cascade_ml.trading.paper import BarPrices, PaperTrader, Targets

START = pd.Timestamp("2026-04-01T00:00:00Z")
FREE = PolicyConfig(taker_fee=0.0, maker_fee=0.0, spread=0.0, tiers={"NEAR": NEAR_TIERS})
TRADING = TradingConfig(initial_equity=10_000.0, leverage=2.0, margin_fraction=0.5,
                        leverage_tolerance=0.1, stops=True, stop_cooldown_bars=24)
# 2x on a 5,000 margin at 5.00, unhedged: 2,000 NEAR; the maximum loss 2 % x 10,000 = 200 puts
# the stop 200 / 10,000 = 2 % below the entry, at 4.90. Bar 1 dips to 4.95 (no stop); bar 2
# reaches 4.60 from an open of 5.00 (filled at the stop, 4.90) or, gapping, opens at 4.80
# (filled at the open).
STOP = 4.90


def _bars(open2: float) -> list[tuple[float, float, float, float]]:
    return [(5.0, 5.0, 5.0, 5.0), (5.0, 5.05, 4.95, 5.0), (open2, 5.02, 4.60, 4.70),
            (4.70, 4.75, 4.65, 4.70)]


def _engine(bars: list[tuple[float, ...]]) -> tuple[list[int], float]:
    """The backtest's stop bars and fill price (from its P&L: 2,000 NEAR bought at 5.00)."""
    o, h, lo, c = (np.array(col) for col in zip(*bars, strict=True))
    n = len(bars)
    nan = np.full(n, np.nan)
    lev, hedge = nan.copy(), nan.copy()
    lev[0], hedge[0] = 2.0, 0.0
    res = simulate(o, h, lo, c, np.zeros(n), lev, hedge, nan, nan, side="long",
                   tiers=NEAR_TIERS, policy=FREE, stops=True, stop_cooldown=24)
    qty = res.notional[0] / 5.0
    (at,) = res.stop_bars
    return res.stop_bars, 5.0 + (res.pnl[at] - res.pnl[at - 1]) / qty


def _paper(bars: list[tuple[float, ...]], book: PaperBook) -> None:
    """The live loop's paper path, bar by bar: settle, decide (bar 0 only), run the cycle."""
    trader = PaperTrader(["NEAR"], ["NEAR"], "long", TRADING, FREE)
    ex = Executor(book, mode="paper", policy=FREE, prices=lambda i: math.nan)
    prev = bars[0][3]
    for i, (o, h, lo, c) in enumerate(bars):
        settled = trader.settle(i, {"NEAR": BarPrices(prev, o, h, lo, c)})["NEAR"]
        intents = list(settled.orders)
        if i == 0:
            targets = Targets(2.0, 0.0, "NEAR", 1.0, 1.0, math.nan, False, math.nan, math.nan)
            intents += trader.rebalance("NEAR", i, targets, {"NEAR": c})
        bar = START + pd.Timedelta(hours=i)
        ex.run_cycle("NEAR", bar, make_decision(equity=100_000.0), intents, marks={"NEAR": c},
                     as_of=bar + pd.Timedelta("1h10s"), stop=trader.positions["NEAR"].stop)
        prev = c


@pytest.mark.parametrize(("open2", "fill"), [(5.0, STOP), (4.80, 4.80)])
def test_the_paper_books_stop_fires_with_the_backtests(tmp_path: Path, open2: float,
                                                       fill: float) -> None:
    bars = _bars(open2)
    stop_bars, engine_fill = _engine(bars)
    assert stop_bars == [2] and engine_fill == pytest.approx(fill)  # the hand-computed rule
    with PaperBook(f"sqlite:///{tmp_path / 'book.db'}", initial_cash=10_000.0) as book:
        _paper(bars, book)
        frames = book.frames()
    (row,) = frames["stop_orders"].to_dict("records")
    assert (row["state"], row["side"], row["qty"]) == ("fired", "sell", 2000.0)
    assert row["trigger_price"] == pytest.approx(STOP)
    assert row["client_order_id"] == "cml-NEAR-1775001600000-p-NEAR"  # placed at bar 0
    orders = frames["orders"].set_index("client_order_id")
    close = orders.loc[row["fill_order_id"]]  # the order the stop's firing booked
    assert (close["order_type"], close["side"], close["qty"]) == ("stop", "sell", 2000.0)
    decisions = frames["decisions"].set_index("id")
    fired_at = pd.Timestamp(decisions.loc[close["decision_id"], "bar_ts"])
    assert fired_at == START + pd.Timedelta(hours=stop_bars[0])  # the backtest's bar
    fill_row = frames["fills"].set_index("order_id").loc[close["id"]]
    assert fill_row["price"] == pytest.approx(engine_fill)  # and its price
