"""The backtest engine and the live paper path on the same bars and forecasts (the parity test's
driver).

The paper path is the live loop's trading part, bar by bar: ``PaperTrader.settle`` on the
bar's prices (``trading.paper.bar_prices``, as the loop builds them from the store), ``decide``
on the position the trader reports (triggers and BTC/ETH beta and correlation read from the
feature row by ``forecasting.inputs.policy_context``, the trailing vol reference from its
``rv_<vol_reference_window>h`` by ``forecasting.inputs.trailing_vol``, as the loop reads them),
``targets_from_decision`` + ``PaperTrader.rebalance``, and ``Executor.run_cycle`` into a real
``PaperBook`` (SQLite) with the funding events the loop would pass
(``live.book.funding_events``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import (
    PROXIES,
    align,
    funding_per_bar,
    proxy_market,
)
from cascade_ml.backtest.engine import SimResult
from cascade_ml.backtest.simulate_all import run_strategies
from cascade_ml.contracts.columns import beta_column, corr_column, rv_column
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.stats import log_return
from cascade_ml.features.volatility import realized
from cascade_ml.forecasting.inputs import (
    context_columns,
    policy_context,
    trailing_vol,
)
from cascade_ml.policy import PolicyConfig, decide, rules
from cascade_ml.policy.schemas import Forecast, Freshness, PolicyInputs
from cascade_ml.trading.book import PaperBook, funding_events
from cascade_ml.trading.config import TradingConfig
from cascade_ml.trading.execution import Executor
from cascade_ml.trading.paper import PaperTrader, bar_prices, targets_from_decision

HOUR = pd.Timedelta("1h")
DELAY = pd.Timedelta("10s")
WINDOW = 168


@dataclass
class Market:
    """Bars and funding of NEAR and, with proxies, BTC and ETH; the feature rows (beta and
    correlation to the proxies) when the policy may hedge with them."""

    bars: dict[str, pd.DataFrame]
    funding: dict[str, pd.DataFrame]
    features: pd.DataFrame | None = None


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


def cross_features(bars: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Rolling beta and correlation of NEAR's returns to BTC's and ETH's (the features' column
    names), known at each close."""
    r = {n: np.log(b["close"]).diff() for n, b in bars.items()}
    out = {}
    for p in PROXIES:
        cov = r["NEAR"].rolling(WINDOW).cov(r[p])
        out[beta_column(p, WINDOW)] = cov / r[p].rolling(WINDOW).var()
        out[corr_column(p, WINDOW)] = r["NEAR"].rolling(WINDOW).corr(r[p])
    return pd.DataFrame(out)


def _span(market: Market, preds: pd.DataFrame) -> pd.DatetimeIndex:
    idx = market.bars["NEAR"].index
    return idx[(idx >= preds.index.min()) & (idx <= preds.index.max())]


def backtest(market: Market, preds: pd.DataFrame, policy: PolicyConfig,
             trading: TradingConfig) -> tuple[SimResult, pd.DatetimeIndex]:
    """The backtest's model policy over the span of ``preds``."""
    proxies = market.features is not None
    data = align(market.bars["NEAR"], preds, horizon=24, funding=[market.funding["NEAR"]],
                 features=market.features, bar=HOUR, proxy_window=WINDOW)
    if proxies:
        rates = {p: funding_per_bar(data.index, [market.funding[p]], HOUR)[0] for p in PROXIES}
        data.proxies = proxy_market(data.index, {p: market.bars[p] for p in PROXIES}, rates,
                                    {p: policy.tiers_for(p) for p in PROXIES})
    bt = BacktestConfig(strategies=["model_policy"], proxy_hedges=proxies)
    runs = run_strategies(data, bt, policy, "NEAR", "long", trading=trading)
    return runs["model_policy"].result, data.index


def paper(market: Market, preds: pd.DataFrame, policy: PolicyConfig, trading: TradingConfig,
          db: Path) -> PaperRun:
    """The live paper path over the same bars, one cycle per bar."""
    index = _span(market, preds)
    names = list(market.bars)
    trader = PaperTrader(["NEAR"], names, "long", trading, policy)
    rates = {n: f["funding_rate"] for n, f in market.funding.items()}
    columns = context_columns([p for p in names if p != "NEAR"],
                              policy.model_copy(update={"proxy_window": WINDOW}), HOUR)
    # the perp's realised variance over the policy's vol window, by the feature code: the loop
    # reads the trailing vol reference from this feature (the backtest computes it from closes)
    window = policy.vol_reference_window
    rv = realized(log_return(market.bars["NEAR"]["close"]),
                  FeatureConfig(rv_windows=[window]))[rv_column(window)]
    # the forecast as the backtest's policy reads it: its log vol smoothed over the policy's
    # half-life (a live caller must pass decide the same smoothed forecast)
    smoothed = pd.Series(rules.smooth_log_vol(preds.loc[index, "vol_forecast"].to_numpy(float),
                                              policy.forecast_halflife_bars), index=index)
    equity = []
    with PaperBook(f"sqlite:///{db}", initial_cash=trading.initial_equity) as book:
        ex = Executor(book, policy=policy)
        for bar in index:
            marks = {n: float(b["close"][b.index <= bar].iloc[-1]) for n, b in market.bars.items()}
            bar_no = int(bar.value // HOUR.value)
            settled = trader.settle(bar_no, bar_prices(market.bars, rates, bar, HOUR,
                                                       marks))["NEAR"]
            row = preds.loc[bar]
            sigma, prob = float(smoothed[bar]), float(row["cascade_prob"])
            feats = {} if market.features is None else market.features.loc[bar].to_dict()
            feats[columns.rv] = rv.get(bar)
            triggers, cross = policy_context(feats, columns)
            decision = decide(PolicyInputs(
                symbol="NEAR", forecast=Forecast(sigma_h=sigma, horizon_hours=24.0,
                                                 cascade_prob=prob),
                triggers=triggers, cross_asset=cross,
                position=trader.policy_position("NEAR", marks["NEAR"]),
                trailing_vol_annual=trailing_vol(feats, columns),
                equity=max(trader.total, 1e-9),
                freshness=Freshness(forecast_age_s=10.0, features_age_s=10.0)), policy)
            targets = targets_from_decision(decision, "NEAR", sigma, prob, trading, policy,
                                            cross)
            intents = [*settled.orders, *trader.rebalance("NEAR", bar_no, targets, marks)]
            now = bar + HOUR + DELAY
            prev = book.last_as_of("NEAR")
            events = [] if settled.closed or prev is None else [
                e for n in names for e in funding_events(n, rates[n], market.bars[n]["close"],
                                                         prev, now, HOUR)]
            ex.run_cycle("NEAR", bar, decision, intents, marks=marks, as_of=now,
                         funding=events)
            equity.append(book.state(marks).equity)
        frames = book.frames()
    return PaperRun(np.array(equity), frames, index)


def trade_bars(r: SimResult) -> list[int]:
    """Bars where the backtest traded (its cumulative traded notional grew)."""
    traded = r.cum_costs[2]
    return [i for i in range(len(traded)) if traded[i] > (traded[i - 1] if i else 0.0) + 1e-9]


def _bars_of(run: PaperRun, orders: pd.DataFrame) -> list[int]:
    at = pd.DatetimeIndex(pd.to_datetime(orders["bar_ts"], utc=True)).unique()
    return sorted(int(run.index.get_loc(t)) for t in at)


def paper_trade_bars(run: PaperRun) -> list[int]:
    return _bars_of(run, run.frames["orders"])


def paper_stop_bars(run: PaperRun) -> list[int]:
    orders = run.frames["orders"]
    return _bars_of(run, orders[orders["order_type"] == "stop"])
