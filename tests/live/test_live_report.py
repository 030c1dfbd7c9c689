"""The paper report, on a book filled by a minimal paper loop over the replayed sample (replay ->
naive forecast -> policy -> plan -> paper executor -> book): the report and the book checked by
hand without training a model (the real loop's book is drawn in test_live_loop.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cascade_ml.data.sources.replay import ReplayExchange
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.live.clock import SimClock
from cascade_ml.live.report import realised_forward_vol, write_paper_report
from cascade_ml.policy import PolicyConfig, PolicyInputs, decide
from cascade_ml.policy.schemas import Forecast, Freshness
from cascade_ml.trading.book import FundingEvent, PaperBook
from cascade_ml.trading.config import TradingConfig
from cascade_ml.trading.execution import Executor
from cascade_ml.trading.paper import BarPrices, PaperTrader, targets_from_decision

NEAR = "NEAR/USDT:USDT"
START = pd.Timestamp("2026-03-08T00:00:00Z")
BARS = 48


def paper_loop(store: MarketStore, url: str, bars: int = BARS) -> PaperBook:
    """One cycle per hourly bar: decide at the bar's close on replayed data, trade through the
    trading core on paper (a restarted loop starts a fresh account and repeats the same
    decisions; the book ignores the bars it holds)."""
    clock = SimClock(START)
    replay = ReplayExchange(store, clock)
    book = PaperBook(url, initial_cash=10_000.0)
    executor = Executor(book, exchange=replay)
    policy, trading = PolicyConfig(), TradingConfig(leverage=0.8)
    trader = PaperTrader(["NEAR"], ["NEAR"], "long", trading, policy)
    for i in range(bars):
        bar = START + pd.Timedelta(hours=i)
        clock.set(bar + pd.Timedelta("1h"))
        candles = replay.fetch_ohlcv(NEAR, "1h", limit=169)
        closes = np.array([r[4] for r in candles])
        sigma = float(np.sqrt(24 * np.mean(np.diff(np.log(closes)) ** 2)))  # naive 24h vol
        forecast = Forecast(sigma_h=sigma, horizon_hours=24, cascade_prob=0.05)
        mark = replay.fetch_ticker(NEAR)["last"]
        marks = {"NEAR": mark}
        bar_no = int(bar.value // pd.Timedelta("1h").value)
        o, h, lo, c = candles[-1][1:5]
        settled = trader.settle(bar_no, {"NEAR": BarPrices(candles[-2][4], o, h, lo, c)})["NEAR"]
        decision = decide(PolicyInputs(symbol="NEAR", forecast=forecast,
                                       position=trader.policy_position("NEAR", mark),
                                       equity=trader.total,
                                       freshness=Freshness(forecast_age_s=1, features_age_s=1)),
                          policy)
        last = book.last_as_of("NEAR")
        since = None if last is None else int(pd.Timestamp(last).value // 1_000_000) + 1
        funding = [FundingEvent("NEAR", pd.Timestamp(f["timestamp"], unit="ms", tz="UTC"),
                                f["fundingRate"], mark)
                   for f in replay.fetch_funding_rate_history(NEAR, since=since)] if since else []
        targets = targets_from_decision(decision, "NEAR", sigma, 0.05, trading, policy)
        intents = [*settled.orders, *trader.rebalance("NEAR", bar_no, targets, marks)]
        executor.run_cycle("NEAR", bar, decision, intents, marks=marks, as_of=clock.now,
                           funding=[] if settled.closed else funding, model_version="naive-vol",
                           forecast=forecast)
    return book


def test_realised_forward_vol_by_hand() -> None:
    idx = pd.date_range("2026-01-01", periods=5, freq="1h", tz="UTC")
    marks = pd.Series(np.exp([0.0, 0.1, 0.1, 0.3, 0.0]), index=idx)
    vol = realised_forward_vol(marks, horizon_hours=2)
    assert vol.iloc[0] == pytest.approx(0.1)                        # returns 0.1, 0.0
    assert vol.iloc[1] == pytest.approx(math.hypot(0.0, 0.2))       # returns 0.0, 0.2
    assert vol.iloc[2] == pytest.approx(math.hypot(0.2, 0.3))       # returns 0.2, -0.3
    assert vol.iloc[3:].isna().all()                                # window not complete
    gap = realised_forward_vol(marks.drop(idx[2]), horizon_hours=2)
    assert gap.isna().iloc[:2].all()  # a missing bar makes its windows unknown, not smaller


def test_report_on_a_paper_loop_over_the_replay(sample_store: MarketStore,
                                                tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    with paper_loop(sample_store, url) as book:
        frames = book.frames()
        state = book.state()
    out = tmp_path / "report"
    summary = write_paper_report(url, out)

    png = Path(summary["figure"]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert json.loads((out / "paper_summary.json").read_text()) == json.loads(
        json.dumps(summary))
    assert summary["cycles"] == summary["bars"] == BARS and summary["symbols"] == ["NEAR"]
    assert summary["fills"] == len(frames["fills"]) > 0 and summary["refused"] == 0
    # the figures agree with the book's ledger: equity = cash + unrealised
    fills, funding = frames["fills"], frames["funding_payments"]
    cash = 10_000 + fills["realised_pnl"].sum() - fills["fee"].sum() + funding["amount"].sum()
    assert summary["final_equity"] == pytest.approx(cash + state.unrealised)
    assert summary["final_equity"] == pytest.approx(state.equity)
    assert summary["fees"] == pytest.approx(fills["fee"].sum())
    assert summary["funding"] == pytest.approx(funding["amount"].sum()) and len(funding) > 0
    equity = np.r_[10_000.0, frames["equity_snapshots"]["equity"].to_numpy()]
    peak = np.maximum.accumulate(equity)
    assert summary["max_drawdown"] == pytest.approx(float(np.max(1 - equity / peak)))
    vol = summary["vol"]["NEAR"]
    assert vol["n"] == BARS - 24 and vol["mean_forecast"] > 0 and vol["mean_realised"] > 0
    assert 0.3 - 1e-9 <= summary["mean_target_hedge"] <= 0.7 + 1e-9  # the band (a float mean)


def test_restarted_loop_replays_bars_without_duplicates(sample_store: MarketStore,
                                                        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    with paper_loop(sample_store, url, bars=6) as book:
        before = book.frames()
    with paper_loop(sample_store, url, bars=8) as again:  # restarted from the first bar
        after = again.frames()
    assert len(after["decisions"]) == len(after["equity_snapshots"]) == 8
    for name in ("decisions", "orders", "fills", "equity_snapshots", "hedges"):
        old = before[name]  # the six replayed bars are exactly as they were
        assert after[name].iloc[:len(old)].equals(old), name
        new_bars = after[name]["bar_ts" if "bar_ts" in old else "filled_at"].iloc[len(old):]
        assert (new_bars > old["bar_ts" if "bar_ts" in old else "filled_at"].max()).all(), name


def test_report_on_an_empty_or_missing_book(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    with pytest.raises(CascadeError, match="no paper book at"):
        write_paper_report(url, tmp_path / "r")
    PaperBook(url).close()
    with pytest.raises(CascadeError, match="no cycles yet"):
        write_paper_report(url, tmp_path / "r")
    assert not (tmp_path / "r").exists()
