"""The policy's formulas as pure functions of scalars or numpy arrays.

``decide`` calls them on one row; the backtest calls them on whole columns, so both share one
implementation. Every map is monotone: more forecast vol or cascade probability never lowers the
hedge ratio and never raises the leverage cap.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from cascade_ml.policy.config import MarginTier, PolicyConfig
from cascade_ml.policy.liquidation import Side, max_leverage_for_distance, tier_params

HOURS_PER_YEAR = 24 * 365
ArrayLike = float | np.ndarray


def _out(x: np.ndarray) -> ArrayLike:
    return float(x) if np.ndim(x) == 0 else x


def annualised_vol(sigma_h: ArrayLike, horizon_hours: ArrayLike) -> ArrayLike:
    """Vol over H hours scaled to a year by the square-root-of-time rule."""
    return _out(np.asarray(sigma_h, dtype=float) * np.sqrt(HOURS_PER_YEAR / np.asarray(
        horizon_hours, dtype=float)))


def vol_component(sigma_h: ArrayLike, horizon_hours: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """0..1: where forecast vol sits between the calm and the stressed multiple of the reference."""
    ratio = np.asarray(annualised_vol(sigma_h, horizon_hours)) / cfg.vol_reference_annual
    return _out(np.clip((ratio - cfg.vol_ratio_low) / (cfg.vol_ratio_high - cfg.vol_ratio_low),
                        0.0, 1.0))


def cascade_component(prob: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """0..1: where the cascade probability sits between the calm and the alarming level."""
    p = np.asarray(prob, dtype=float)
    return _out(np.clip((p - cfg.cascade_prob_low) / (cfg.cascade_prob_high - cfg.cascade_prob_low),
                        0.0, 1.0))


def risk_score(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike,
               cfg: PolicyConfig) -> ArrayLike:
    """Weighted mix of the vol and cascade components, in [0, 1]."""
    return _out(cfg.vol_weight * np.asarray(vol_component(sigma_h, horizon_hours, cfg))
                + (1 - cfg.vol_weight) * np.asarray(cascade_component(prob, cfg)))


def trigger_bump(n_fired: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """Extra hedge for fired rule triggers, bounded by ``trigger_bump_max``."""
    return _out(np.minimum(np.asarray(n_fired, dtype=float) * cfg.trigger_bump,
                           cfg.trigger_bump_max))


def hedge_ratio(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike, n_fired: ArrayLike,
                cfg: PolicyConfig) -> ArrayLike:
    """Band bottom + band width x risk score + trigger bump, clipped to the band."""
    score = np.asarray(risk_score(sigma_h, horizon_hours, prob, cfg))
    raw = cfg.hedge_min + (cfg.hedge_max - cfg.hedge_min) * score + np.asarray(
        trigger_bump(n_fired, cfg))
    return _out(np.clip(raw, cfg.hedge_min, cfg.hedge_max))


def k_sigma(prob: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """Sigmas to keep between price and liquidation: more when a cascade is likely."""
    return _out(cfg.k_sigma_base + (cfg.k_sigma_cascade - cfg.k_sigma_base)
                * np.asarray(cascade_component(prob, cfg)))


def required_distance(sigma_h: ArrayLike, prob: ArrayLike, cfg: PolicyConfig,
                      vol_q99: ArrayLike | None = None) -> ArrayLike:
    """k(prob) x sigma_H, or the forecast 99% vol quantile when that is larger."""
    d = np.asarray(k_sigma(prob, cfg)) * np.asarray(sigma_h, dtype=float)
    if vol_q99 is not None:
        d = np.fmax(d, np.asarray(vol_q99, dtype=float))
    return _out(d)


def vol_target_cap(sigma_h: ArrayLike, horizon_hours: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """Moreira-Muir volatility targeting: target vol / forecast vol (annualised)."""
    with np.errstate(divide="ignore"):
        return _out(cfg.target_vol_annual / np.asarray(annualised_vol(sigma_h, horizon_hours)))


def leverage_caps(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike, side: Side,
                  notional: ArrayLike, tiers: Sequence[MarginTier], cfg: PolicyConfig,
                  vol_q99: ArrayLike | None = None) -> dict[str, ArrayLike]:
    """Each leverage limit and their minimum under ``cap``."""
    distance = required_distance(sigma_h, prob, cfg, vol_q99)
    parts = {
        "ceiling": cfg.leverage_ceiling,
        "vol_target": vol_target_cap(sigma_h, horizon_hours, cfg),
        "liquidation": max_leverage_for_distance(side, distance, notional, tiers),
        "exchange_tier": tier_params(notional, tiers)[1],
    }
    cap = functools.reduce(np.minimum, [np.asarray(v, dtype=float) for v in parts.values()])
    return {**parts, "cap": _out(cap), "required_distance": distance}


def residual_fraction(hedge: ArrayLike, r2: ArrayLike) -> ArrayLike:
    """Share of the position's return vol left after hedging ``hedge`` with effectiveness R^2.

    Var(r_a - h beta r_b) / Var(r_a) = 1 - 2 h R^2 + h^2 R^2 for a beta-weighted hedge; equals
    (1 - h)^2 for the same perp (R^2 = 1).
    """
    h = np.asarray(hedge, dtype=float)
    r = np.asarray(r2, dtype=float)
    return _out(np.sqrt(np.maximum(1 - 2 * h * r + h * h * r, 0.0)))


def size_cap(equity: ArrayLike, sigma_h: ArrayLike, hedge: ArrayLike, r2: ArrayLike,
             cfg: PolicyConfig) -> ArrayLike:
    """Notional whose unhedged part loses at most ``max_risk_fraction`` of equity in k sigmas."""
    loss_per_notional = np.asarray(residual_fraction(hedge, r2)) * cfg.size_k_sigma * np.asarray(
        sigma_h, dtype=float)
    with np.errstate(divide="ignore"):
        return _out(cfg.max_risk_fraction * np.asarray(equity, dtype=float) / loss_per_notional)


def rebalance_test(target: ArrayLike, current: ArrayLike, sigma_h: ArrayLike, prob: ArrayLike,
                   notional: ArrayLike, r2: ArrayLike, trade_scale: ArrayLike,
                   cfg: PolicyConfig) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """(worth_it, benefit, cost) of moving the hedge ratio from ``current`` to ``target``.

    Benefit: change of the k-sigma tail loss, weighted by the chance of that tail (the cascade
    probability, at least ``tail_weight_floor``). Cost: hedge notional traded (x ``trade_scale``,
    the beta for a proxy hedge) times fee plus half spread. Worth it when the change is at least
    the no-trade band and the benefit beats the cost ``benefit_cost_multiple`` times.
    """
    n = np.asarray(notional, dtype=float)
    tail = cfg.size_k_sigma * np.asarray(sigma_h, dtype=float) * n
    benefit = np.fmax(np.asarray(prob, dtype=float), cfg.tail_weight_floor) * tail * np.abs(
        np.asarray(residual_fraction(current, r2)) - np.asarray(residual_fraction(target, r2)))
    change = np.abs(np.asarray(target, dtype=float) - np.asarray(current, dtype=float))
    cost = change * n * np.asarray(trade_scale, dtype=float) * cfg.trade_cost
    worth = (change >= cfg.no_trade_band - 1e-12) & (benefit >= cfg.benefit_cost_multiple * cost)
    return (bool(worth) if np.ndim(worth) == 0 else worth), _out(benefit), _out(cost)
