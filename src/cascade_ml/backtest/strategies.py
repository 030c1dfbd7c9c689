"""Target leverage and hedge per bar for each strategy, from data known at that bar's close.

All strategies trade the same bars through the same engine, fees and no-trade band; only their
targets differ. NaN targets mean "no decision this bar" (the engine keeps the position).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.contracts.task import Side
from cascade_ml.policy import rules
from cascade_ml.policy.config import PolicyConfig


@dataclass
class Signals:
    """Per-bar inputs the strategies may use (aligned numpy arrays)."""

    sigma_h: np.ndarray        # forecast vol over the horizon (NaN where no OOS forecast)
    cascade_prob: np.ndarray   # forecast cascade probability (NaN where none)
    n_fired: np.ndarray        # number of rule triggers fired (0 where missing)
    horizon_hours: float
    vol_q99: np.ndarray | None = None


def policy_targets(sig: Signals, side: str, notional: float, tiers, cfg: PolicyConfig
                   ) -> dict[str, np.ndarray]:
    """``decide``'s hedge ratio, leverage cap and fail-safe flag for every bar at once.

    Rows whose forecasts fail ``decide``'s sanity checks get its fail-safe values (top of the
    band, the cap at the worst sane forecast). Freshness does not apply: every OOS row is fresh
    by construction, and bars without a forecast are treated as missing data (fail-safe).
    """
    s, p = sig.sigma_h, sig.cascade_prob
    ok = (np.isfinite(s) & (s > 0) & (s <= cfg.max_sigma_h) & np.isfinite(p) & (p >= 0) & (p <= 1))
    q99 = None
    if sig.vol_q99 is not None:
        q = sig.vol_q99
        ok &= ~(np.isfinite(q) & ((q < 0) | (q > cfg.max_sigma_h * 10))) & ~np.isinf(q)
        q99 = q
    s_ok, p_ok = np.where(ok, s, 0.01), np.where(ok, p, 0.0)
    hedge = rules.hedge_ratio(s_ok, sig.horizon_hours, p_ok, sig.n_fired, cfg)
    cap = rules.leverage_caps(s_ok, sig.horizon_hours, p_ok, side, notional, tiers, cfg,
                              q99)["cap"]
    worst = rules.leverage_caps(cfg.max_sigma_h, sig.horizon_hours, 1.0, side, notional, tiers,
                                cfg)["cap"]
    safe_cap = min(cfg.fail_safe_leverage, float(worst))
    return {"hedge": np.where(ok, hedge, cfg.hedge_max),
            "cap": np.where(ok, np.broadcast_to(cap, s.shape), safe_cap),
            "fail_safe": ~ok}


def strategy_targets(name: str, sig: Signals, bt: BacktestConfig, cfg: PolicyConfig, tiers,
                     notional: float, side: Side) -> tuple[np.ndarray, np.ndarray]:
    """(target leverage, target hedge) arrays for one strategy."""
    n = len(sig.sigma_h)
    lev = np.full(n, bt.leverage)
    if name == "unhedged":
        return lev, np.zeros(n)
    if name == "static_hedge":
        return lev, np.full(n, bt.static_hedge)
    if name == "vol_target":
        vt = np.asarray(rules.vol_target_cap(sig.sigma_h, sig.horizon_hours, cfg))
        vt = np.where(np.isfinite(sig.sigma_h) & (sig.sigma_h > 0), vt, np.nan)
        return np.minimum(vt, min(bt.leverage, cfg.leverage_ceiling)), np.zeros(n)
    if name == "rule_triggers":
        return lev, np.where(sig.n_fired > 0, cfg.hedge_max, cfg.hedge_min)
    if name == "model_policy":
        t = policy_targets(sig, side, notional, tiers, cfg)
        return np.minimum(bt.leverage, t["cap"]), t["hedge"]
    raise ValueError(f"unknown strategy {name!r}")
