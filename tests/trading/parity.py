"""The backtest engine and the live paper path on the same bars and forecasts (the parity test's
driver, also used by benchmarks/parity_replay.py).

The paper path is the live loop's trading part, bar by bar: ``PaperTrader.settle`` on the
bar's prices (``trading.paper.bar_prices``, as the loop builds them from the store), ``decide``
on the position the trader reports, ``targets_from_decision`` + ``PaperTrader.rebalance``, and
``Executor.run_cycle`` into a real ``PaperBook`` (SQLite) with the funding events the loop
would pass (``live.book.funding_events``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import align
from cascade_ml.backtest.engine import SimResult
from cascade_ml.backtest.simulate_all import run_strategies
from cascade_ml.live.book import PaperBook, funding_events
from cascade_ml.live.execution import Executor
from cascade_ml.policy import PolicyConfig, decide
from cascade_ml.policy.models import Forecast, Freshness, PolicyInputs
from cascade_ml.trading.config import TradingConfig
from cascade_ml.trading.paper import PaperTrader, bar_prices, targets_from_decision

HOUR = pd.Timedelta("1h")
DELAY = pd.Timedelta("10s")


@dataclass
class PaperRun:
    equity: np.ndarray
    frames: dict[str, pd.DataFrame]
    index: pd.DatetimeIndex


def toy_forecasts(close: pd.Series, horizon: int = 24) -> pd.DataFrame:
    """Forecasts known at each close: the trailing realised vol over ``horizon`` bars, and a
    cascade probability rising with the trailing 24-bar drawdown."""
    r = np.log(close).diff()
    sigma = np.sqrt((r ** 2).rolling(horizon).sum())
    dd = 1 - close / close.rolling(24).max()
    prob = (0.02 + 2.0 * dd).clip(0.0, 0.9)
    return pd.DataFrame({"vol_forecast": sigma, "cascade_prob": prob})


def backtest(ohlcv: pd.DataFrame, preds: pd.DataFrame, funding: pd.DataFrame,
             policy: PolicyConfig, trading: TradingConfig) -> tuple[SimResult, pd.Index]:
    """The backtest's model policy over the span of ``preds`` (same perp only)."""
    data = align(ohlcv, preds, horizon=24, funding=[funding], bar=HOUR)
    bt = BacktestConfig(strategies=["model_policy"], proxy_hedges=False)
    runs = run_strategies(data, bt, policy, "NEAR", "long", trading=trading)
    return runs["model_policy"].result, data.index


def paper(ohlcv: pd.DataFrame, preds: pd.DataFrame, funding: pd.DataFrame,
          policy: PolicyConfig, trading: TradingConfig, db: Path) -> PaperRun:
    """The live paper path over the same bars, one cycle per bar."""
    index = ohlcv.index[(ohlcv.index >= preds.index.min()) & (ohlcv.index <= preds.index.max())]
    trader = PaperTrader(["NEAR"], ["NEAR"], "long", trading, policy)
    rates = funding["funding_rate"]
    equity = []
    with PaperBook(f"sqlite:///{db}", initial_cash=trading.initial_equity) as book:
        ex = Executor(book, policy=policy)
        for bar in index:
            marks = {"NEAR": float(ohlcv.loc[bar, "close"])}
            bar_no = int(bar.value // HOUR.value)
            settled = trader.settle(bar_no, bar_prices({"NEAR": ohlcv}, {"NEAR": rates}, bar,
                                                       HOUR, marks))["NEAR"]
            row = preds.loc[bar]
            sigma, prob = float(row["vol_forecast"]), float(row["cascade_prob"])
            decision = decide(PolicyInputs(
                symbol="NEAR", forecast=Forecast(sigma_h=sigma, horizon_hours=24.0,
                                                 cascade_prob=prob),
                position=trader.policy_position("NEAR", marks["NEAR"]),
                equity=max(trader.total, 1e-9),
                freshness=Freshness(forecast_age_s=10.0, features_age_s=10.0)), policy)
            targets = targets_from_decision(decision, "NEAR", sigma, prob, trading, policy)
            intents = [*settled.orders, *trader.rebalance("NEAR", bar_no, targets, marks)]
            now = bar + HOUR + DELAY
            prev = book.last_as_of("NEAR")
            events = [] if settled.closed or prev is None else funding_events(
                "NEAR", rates, ohlcv["close"], prev, now, HOUR)
            ex.run_cycle("NEAR", bar, decision, intents, marks=marks, as_of=now,
                         funding=events)
            equity.append(book.state(marks).equity)
        frames = book.frames()
    return PaperRun(np.array(equity), frames, index)


def trade_bars(r: SimResult) -> list[int]:
    """Bars where the backtest traded (its cumulative traded notional grew)."""
    traded = r.cum_costs[2]
    return [i for i in range(len(traded)) if traded[i] > (traded[i - 1] if i else 0.0) + 1e-9]


def paper_trade_bars(run: PaperRun) -> list[int]:
    orders = run.frames["orders"]
    at = pd.DatetimeIndex(pd.to_datetime(orders["bar_ts"], utc=True)).unique()
    return sorted(int(run.index.get_loc(t)) for t in at)


def paper_stop_bars(run: PaperRun) -> list[int]:
    orders = run.frames["orders"]
    stops = orders[orders["order_type"] == "stop"]
    at = pd.DatetimeIndex(pd.to_datetime(stops["bar_ts"], utc=True)).unique()
    return sorted(int(run.index.get_loc(t)) for t in at)
