"""The policy's formulas as pure functions of scalars or numpy arrays.

``decide`` calls them on one row; the backtest calls them on whole columns, so both share one
implementation. Each formula is written once with operators and the helpers of
:mod:`cascade_ml.policy.numeric`, which use numpy for arrays and plain Python for single numbers
(so one decision does not pay numpy's per-call overhead). Every map is monotone: more forecast vol
or cascade probability never lowers the hedge ratio and never raises the leverage cap.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from cascade_ml.policy.config import MarginTier, PolicyConfig
from cascade_ml.policy.liquidation import Side, max_leverage_for_distance, tier_params
from cascade_ml.policy.numeric import (
    Num,
    asnum,
    clip,
    div,
    fmax,
    maximum,
    minimum,
    out,
    out_bool,
    sqrt,
)

HOURS_PER_YEAR = 24 * 365
ArrayLike = Num


def annualised_vol(sigma_h: ArrayLike, horizon_hours: ArrayLike) -> ArrayLike:
    """Vol over H hours scaled to a year by the square-root-of-time rule."""
    return out(asnum(sigma_h) * sqrt(div(HOURS_PER_YEAR, asnum(horizon_hours))))


def vol_component(sigma_h: ArrayLike, horizon_hours: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """0..1: where forecast vol sits between the calm and the stressed multiple of the reference."""
    ratio = annualised_vol(sigma_h, horizon_hours) / cfg.vol_reference_annual
    return out(clip((ratio - cfg.vol_ratio_low) / (cfg.vol_ratio_high - cfg.vol_ratio_low),
                    0.0, 1.0))


def cascade_component(prob: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """0..1: where the cascade probability sits between the calm and the alarming level."""
    p = asnum(prob)
    return out(clip((p - cfg.cascade_prob_low) / (cfg.cascade_prob_high - cfg.cascade_prob_low),
                    0.0, 1.0))


def risk_score(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike,
               cfg: PolicyConfig) -> ArrayLike:
    """Weighted mix of the vol and cascade components, in [0, 1]."""
    return out(cfg.vol_weight * vol_component(sigma_h, horizon_hours, cfg)
               + (1 - cfg.vol_weight) * cascade_component(prob, cfg))


def trigger_bump(n_fired: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """Extra hedge for fired rule triggers, bounded by ``trigger_bump_max``."""
    return out(minimum(asnum(n_fired) * cfg.trigger_bump, cfg.trigger_bump_max))


def hedge_ratio(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike, n_fired: ArrayLike,
                cfg: PolicyConfig) -> ArrayLike:
    """Band bottom + band width x risk score + trigger bump, clipped to the band."""
    score = risk_score(sigma_h, horizon_hours, prob, cfg)
    raw = cfg.hedge_min + (cfg.hedge_max - cfg.hedge_min) * score + trigger_bump(n_fired, cfg)
    return out(clip(raw, cfg.hedge_min, cfg.hedge_max))


def k_sigma(prob: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """Sigmas to keep between price and liquidation: more when a cascade is likely."""
    return out(cfg.k_sigma_base + (cfg.k_sigma_cascade - cfg.k_sigma_base)
               * cascade_component(prob, cfg))


def required_distance(sigma_h: ArrayLike, prob: ArrayLike, cfg: PolicyConfig,
                      vol_q99: ArrayLike | None = None) -> ArrayLike:
    """k(prob) x sigma_H, or the forecast 99% vol quantile when that is larger."""
    d = k_sigma(prob, cfg) * asnum(sigma_h)
    if vol_q99 is not None:
        d = fmax(d, asnum(vol_q99))
    return out(d)


def vol_target_cap(sigma_h: ArrayLike, horizon_hours: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """Moreira-Muir volatility targeting: target vol / forecast vol (annualised)."""
    return out(div(cfg.target_vol_annual, annualised_vol(sigma_h, horizon_hours)))


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
    cap = functools.reduce(minimum, [asnum(v) for v in parts.values()])
    return {**parts, "cap": out(cap), "required_distance": distance}


def residual_fraction(hedge: ArrayLike, r2: ArrayLike) -> ArrayLike:
    """Share of the position's return vol left after hedging ``hedge`` with effectiveness R^2.

    Var(r_a - h beta r_b) / Var(r_a) = 1 - 2 h R^2 + h^2 R^2 for a beta-weighted hedge; equals
    (1 - h)^2 for the same perp (R^2 = 1).
    """
    h = asnum(hedge)
    r = asnum(r2)
    return out(sqrt(maximum(1 - 2 * h * r + h * h * r, 0.0)))


def size_cap(equity: ArrayLike, sigma_h: ArrayLike, hedge: ArrayLike, r2: ArrayLike,
             cfg: PolicyConfig) -> ArrayLike:
    """Notional whose unhedged part loses at most ``max_risk_fraction`` of equity in k sigmas."""
    loss_per_notional = residual_fraction(hedge, r2) * cfg.size_k_sigma * asnum(sigma_h)
    return out(div(cfg.max_risk_fraction * asnum(equity), loss_per_notional))


def rebalance_test(target: ArrayLike, current: ArrayLike, sigma_h: ArrayLike, prob: ArrayLike,
                   notional: ArrayLike, r2: ArrayLike, trade_scale: ArrayLike,
                   cfg: PolicyConfig) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """(worth_it, benefit, cost) of moving the hedge ratio from ``current`` to ``target``.

    Benefit: change of the k-sigma tail loss, weighted by the chance of that tail (the cascade
    probability, at least ``tail_weight_floor``). Cost: hedge notional traded (x ``trade_scale``,
    the beta for a proxy hedge) times fee plus half spread. Worth it when the change is at least
    the no-trade band and the benefit beats the cost ``benefit_cost_multiple`` times.
    """
    n = asnum(notional)
    tail = cfg.size_k_sigma * asnum(sigma_h) * n
    benefit = fmax(asnum(prob), cfg.tail_weight_floor) * tail * abs(
        residual_fraction(current, r2) - residual_fraction(target, r2))
    change = abs(asnum(target) - asnum(current))
    cost = change * n * asnum(trade_scale) * cfg.trade_cost
    worth = (change >= cfg.no_trade_band - 1e-12) & (benefit >= cfg.benefit_cost_multiple * cost)
    return out_bool(worth), out(benefit), out(cost)
