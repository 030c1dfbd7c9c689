"""The policy's formulas as pure functions of scalars or numpy arrays.

``decide`` calls them on one row; the backtest calls them on whole columns, so both share one
implementation. Each formula is written once with operators and the helpers of
:mod:`cascade_ml.policy.numeric`, which use numpy for arrays and plain Python for single numbers
(so one decision does not pay numpy's per-call overhead). Every map is monotone: more forecast vol
or cascade probability never lowers the hedge ratio and never raises the leverage cap.
"""

from __future__ import annotations

from collections.abc import Sequence

from cascade_ml.policy.config import MarginTier, PolicyConfig
from cascade_ml.policy.liquidation import Side, max_leverage_in_bracket, tier_params
from cascade_ml.policy.numeric import (
    Num,
    asnum,
    clip,
    div,
    fmax,
    isfinite,
    maximum,
    minimum,
    out,
    out_bool,
    sqrt,
    where,
)

HOURS_PER_YEAR = 24 * 365
ArrayLike = Num


def annualised_vol(sigma_h: ArrayLike, horizon_hours: ArrayLike) -> ArrayLike:
    """Vol over H hours scaled to a year by the square-root-of-time rule."""
    return out(asnum(sigma_h) * sqrt(div(HOURS_PER_YEAR, asnum(horizon_hours))))


def vol_reference(trailing_vol_annual: ArrayLike | None, cfg: PolicyConfig) -> ArrayLike:
    """The 'normal' annualised vol forecasts are judged against.

    ``fixed`` mode: ``vol_reference_annual`` for every perp. ``trailing`` mode: the perp's own
    trailing realised vol where it is known (finite, > 0), the fixed reference elsewhere.
    """
    if cfg.vol_reference == "fixed" or trailing_vol_annual is None:
        return cfg.vol_reference_annual
    t = asnum(trailing_vol_annual)
    return out(where(isfinite(t) & (t > 0), t, cfg.vol_reference_annual))


def vol_component(sigma_h: ArrayLike, horizon_hours: ArrayLike, cfg: PolicyConfig,
                  reference: ArrayLike | None = None) -> ArrayLike:
    """0..1: where forecast vol sits between the calm and the stressed multiple of the reference
    (``reference`` from :func:`vol_reference`; the fixed one when None)."""
    ref = cfg.vol_reference_annual if reference is None else asnum(reference)
    ratio = annualised_vol(sigma_h, horizon_hours) / ref
    return out(clip((ratio - cfg.vol_ratio_low) / (cfg.vol_ratio_high - cfg.vol_ratio_low),
                    0.0, 1.0))


def cascade_component(prob: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """0..1: where the cascade probability sits between the calm and the alarming level."""
    p = asnum(prob)
    return out(clip((p - cfg.cascade_prob_low) / (cfg.cascade_prob_high - cfg.cascade_prob_low),
                    0.0, 1.0))


def risk_score(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike,
               cfg: PolicyConfig, reference: ArrayLike | None = None) -> ArrayLike:
    """Weighted mix of the vol and cascade components, in [0, 1]."""
    return out(cfg.vol_weight * vol_component(sigma_h, horizon_hours, cfg, reference)
               + (1 - cfg.vol_weight) * cascade_component(prob, cfg))


def trigger_bump(n_fired: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """Extra hedge for fired rule triggers, bounded by ``trigger_bump_max``."""
    return out(minimum(asnum(n_fired) * cfg.trigger_bump, cfg.trigger_bump_max))


def hedge_ratio(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike, n_fired: ArrayLike,
                cfg: PolicyConfig, reference: ArrayLike | None = None) -> ArrayLike:
    """Band bottom + band width x risk score + trigger bump, clipped to the band."""
    score = risk_score(sigma_h, horizon_hours, prob, cfg, reference)
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


def forecast_leverage_limits(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike,
                             cfg: PolicyConfig, vol_q99: ArrayLike | None = None
                             ) -> dict[str, ArrayLike]:
    """The leverage limits the forecast sets whatever the position: the ceiling, the vol-target
    cap and the liquidation distance to keep (``required_distance``)."""
    return {"ceiling": cfg.leverage_ceiling,
            "vol_target": vol_target_cap(sigma_h, horizon_hours, cfg),
            "required_distance": required_distance(sigma_h, prob, cfg, vol_q99)}


def position_leverage_caps(limits: dict[str, ArrayLike], side: Side, notional: ArrayLike,
                           tiers: Sequence[MarginTier]) -> dict[str, ArrayLike]:
    """Each leverage limit for a position of ``notional`` under the forecast's ``limits``
    (:func:`forecast_leverage_limits`), and their minimum under ``cap``."""
    distance = limits["required_distance"]
    mmr, exchange_max, cum = tier_params(notional, tiers)
    parts = {
        "ceiling": limits["ceiling"],
        "vol_target": limits["vol_target"],
        "liquidation": max_leverage_in_bracket(side, distance, notional, mmr, cum),
        "exchange_tier": exchange_max,
    }
    # each part is already a float or an array (the rules' results, a config float)
    cap = minimum(minimum(minimum(parts["ceiling"], parts["vol_target"]), parts["liquidation"]),
                  parts["exchange_tier"])
    return {**parts, "cap": out(cap), "required_distance": distance}


def leverage_caps(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike, side: Side,
                  notional: ArrayLike, tiers: Sequence[MarginTier], cfg: PolicyConfig,
                  vol_q99: ArrayLike | None = None) -> dict[str, ArrayLike]:
    """Each leverage limit and their minimum under ``cap``."""
    limits = forecast_leverage_limits(sigma_h, horizon_hours, prob, cfg, vol_q99)
    return position_leverage_caps(limits, side, notional, tiers)


INSTRUMENTS = ("same_perp", "BTC", "ETH")
"""Hedge instruments by code: 0 the same perp, 1 the BTC perp, 2 the ETH perp."""


def hedge_instrument(beta_btc: ArrayLike, r2_btc: ArrayLike, beta_eth: ArrayLike,
                     r2_eth: ArrayLike, cfg: PolicyConfig
                     ) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """(code, beta, R^2) of the hedge: the same perp, unless the BTC or ETH perp has a positive
    beta, R^2 >= ``min_cross_hedge_r2`` and a higher R^2 than the best so far (NaN: unknown)."""
    code, beta, r2 = 0.0, 1.0, cfg.same_perp_effectiveness
    for k, (b, r) in enumerate(((beta_btc, r2_btc), (beta_eth, r2_eth)), start=1):
        b, r = asnum(b), asnum(r)
        ok = isfinite(b) & isfinite(r) & (b > 0) & (r >= cfg.min_cross_hedge_r2) & (r > r2)
        code, beta, r2 = where(ok, float(k), code), where(ok, b, beta), where(ok, r, r2)
    return out(code), out(beta), out(r2)


def net_exposure(hedge: ArrayLike, r2: ArrayLike) -> ArrayLike:
    """Share of a move of the position's own price that the hedged position loses: 1 - h R^2.

    Same perp (R^2 = 1): 1 - h exactly. Proxy hedge with beta = Cov/Var: the proxy moves
    beta R^2-weighted with the perp on average, so the hedge offsets h R^2 of the move.
    """
    return out(1.0 - asnum(hedge) * asnum(r2))


def adverse_move(sigma_h: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """The adverse-move forecast: ``size_k_sigma`` sigmas over the horizon (fraction of price)."""
    return out(cfg.size_k_sigma * asnum(sigma_h))


def residual_fraction(hedge: ArrayLike, r2: ArrayLike) -> ArrayLike:
    """Share of the position's return vol left after hedging ``hedge`` with effectiveness R^2.

    Var(r_a - h beta r_b) / Var(r_a) = 1 - 2 h R^2 + h^2 R^2 for a beta-weighted hedge; equals
    (1 - h)^2 for the same perp (R^2 = 1).
    """
    h = asnum(hedge)
    r = asnum(r2)
    return out(sqrt(maximum(1 - 2 * h * r + h * h * r, 0.0)))


def loss_per_notional(sigma_h: ArrayLike, hedge: ArrayLike, r2: ArrayLike,
                      cfg: PolicyConfig) -> ArrayLike:
    """What one unit of notional, hedged ``hedge`` with effectiveness R^2, loses on the adverse
    move (the stop's least distance)."""
    return out(net_exposure(hedge, r2) * adverse_move(sigma_h, cfg))


def size_cap(equity: ArrayLike, sigma_h: ArrayLike, hedge: ArrayLike, r2: ArrayLike,
             cfg: PolicyConfig) -> ArrayLike:
    """Risk-budget size cap: the notional whose hedged position loses at most
    ``max_risk_fraction`` of equity on the adverse move."""
    return risk_budget_cap(equity, loss_per_notional(sigma_h, hedge, r2, cfg), cfg)


def risk_budget_cap(equity: ArrayLike, loss_per_notional: ArrayLike,
                    cfg: PolicyConfig) -> ArrayLike:
    """:func:`size_cap` from the loss per unit notional (:func:`loss_per_notional`)."""
    return out(div(cfg.max_risk_fraction * asnum(equity), asnum(loss_per_notional)))


def size_caps(equity: ArrayLike, sigma_h: ArrayLike, hedge: ArrayLike, r2: ArrayLike,
              leverage_cap: ArrayLike, cfg: PolicyConfig) -> dict[str, ArrayLike]:
    """Each size limit and their minimum under ``cap``: the risk budget, and what the leverage
    cap allows with the whole equity as margin (so the two caps never disagree)."""
    return size_limits(equity, loss_per_notional(sigma_h, hedge, r2, cfg), leverage_cap, cfg)


def size_limits(equity: ArrayLike, loss_per_notional: ArrayLike, leverage_cap: ArrayLike,
                cfg: PolicyConfig) -> dict[str, ArrayLike]:
    """:func:`size_caps` from the loss per unit notional (:func:`loss_per_notional`)."""
    parts = {"risk_budget": risk_budget_cap(equity, loss_per_notional, cfg),
             "leverage_cap": out(asnum(leverage_cap) * asnum(equity))}
    return {**parts, "cap": out(minimum(parts["risk_budget"], parts["leverage_cap"]))}


def stop_distance(max_loss: ArrayLike, notional: ArrayLike, exposure: ArrayLike,
                  liquidation_distance: ArrayLike, cfg: PolicyConfig) -> dict[str, ArrayLike]:
    """Distance (fraction of entry) of the protective stop: where the hedged position has lost
    ``max_loss``, but no farther than ``stop_liquidation_buffer`` of the way to liquidation.

    Returns the two candidates and their minimum under ``distance``.
    """
    parts = {"max_loss": out(div(asnum(max_loss), asnum(notional) * asnum(exposure))),
             "liquidation_buffer": out(cfg.stop_liquidation_buffer
                                       * asnum(liquidation_distance))}
    return {**parts, "distance": out(minimum(parts["max_loss"], parts["liquidation_buffer"]))}


def tail_weight(prob: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """Weight of the tail loss in a rebalance's benefit: the chance of that tail (the cascade
    probability), at least ``tail_weight_floor``."""
    return out(fmax(asnum(prob), cfg.tail_weight_floor))


def rebalance_test(target: ArrayLike, current: ArrayLike, sigma_h: ArrayLike, prob: ArrayLike,
                   notional: ArrayLike, r2: ArrayLike, trade_scale: ArrayLike,
                   cfg: PolicyConfig) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """(worth_it, benefit, cost) of moving the hedge ratio from ``current`` to ``target``.

    Benefit: change of the k-sigma tail loss (the adverse move), weighted by
    :func:`tail_weight`. Cost: hedge notional traded (x ``trade_scale``, the beta for a proxy
    hedge) times fee plus half spread. Worth it when the change is at least the no-trade band and
    the benefit beats the cost ``benefit_cost_multiple`` times.
    """
    return rebalance_check(target, current, notional, r2, trade_scale,
                           adverse_move(sigma_h, cfg), tail_weight(prob, cfg),
                           residual_fraction(target, r2), cfg)


def rebalance_check(target: ArrayLike, current: ArrayLike, notional: ArrayLike, r2: ArrayLike,
                    trade_scale: ArrayLike, adverse: ArrayLike, weight: ArrayLike,
                    target_residual: ArrayLike, cfg: PolicyConfig
                    ) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """:func:`rebalance_test` from what does not depend on the position, computed once: the
    :func:`adverse_move`, the :func:`tail_weight` and the target's :func:`residual_fraction`."""
    n = asnum(notional)
    benefit = asnum(weight) * (asnum(adverse) * n) * abs(
        residual_fraction(current, r2) - asnum(target_residual))
    change = abs(asnum(target) - asnum(current))
    cost = change * n * asnum(trade_scale) * cfg.trade_cost
    worth = (change >= cfg.no_trade_band - 1e-12) & (benefit >= cfg.benefit_cost_multiple * cost)
    return out_bool(worth), out(benefit), out(cost)
