"""Run every configured strategy on the same aligned data and compute their metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import BacktestData
from cascade_ml.backtest.engine import SimResult, simulate
from cascade_ml.backtest.metrics import capture, summarize
from cascade_ml.backtest.strategies import policy_targets, strategy_targets
from cascade_ml.contracts.task import Side
from cascade_ml.policy.config import PolicyConfig


@dataclass
class StrategyRun:
    name: str
    result: SimResult
    metrics: dict[str, float]


def run_strategies(data: BacktestData, bt: BacktestConfig, policy: PolicyConfig,
                   symbol: str, side: Side) -> dict[str, StrategyRun]:
    """Simulate each strategy and add capture ratios against the unhedged one."""
    tiers = policy.tiers_for(symbol)
    notional = bt.leverage * bt.initial_equity * bt.margin_fraction
    results: dict[str, SimResult] = {}
    names = list(dict.fromkeys(["unhedged", *bt.strategies]))
    for name in names:
        lev, hedge = strategy_targets(name, data.signals, bt, policy, tiers, notional, side)
        results[name] = simulate(
            data.open, data.high, data.low, data.close, data.funding_rate, lev, hedge,
            data.signals.sigma_h, data.signals.cascade_prob, side=side, tiers=tiers,
            policy=policy, initial_equity=bt.initial_equity, margin_fraction=bt.margin_fraction,
            leverage_tolerance=bt.leverage_tolerance)
    base = results["unhedged"].equity
    runs = {}
    for name in bt.strategies:
        r = results[name]
        m = summarize(r.equity)
        up, down = capture(r.equity, base)
        mean_equity = float(np.mean(r.equity))
        m.update({"upside_capture": up, "downside_capture": down,
                  "liquidations": float(len(r.liquidation_bars)), "fees_paid": r.fees,
                  "funding_paid": r.funding, "turnover": r.traded_notional / mean_equity,
                  "trades": float(r.trades), "mean_leverage": float(np.mean(r.leverage)),
                  "mean_hedge": float(np.mean(r.hedge))})
        runs[name] = StrategyRun(name, r, m)
    return runs


def model_policy_paths(data: BacktestData, bt: BacktestConfig, policy: PolicyConfig,
                       symbol: str, side: Side) -> dict[str, np.ndarray]:
    """The policy's hedge ratio and leverage cap per bar (for the plots)."""
    notional = bt.leverage * bt.initial_equity * bt.margin_fraction
    return policy_targets(data.signals, side, notional, policy.tiers_for(symbol), policy)
