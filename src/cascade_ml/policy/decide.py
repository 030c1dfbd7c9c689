"""``decide``: forecasts + position -> hedge ratio, instrument, leverage cap, size cap, action.

Pure: no I/O, no clock. Every number comes with a sentence in ``reasons``. When the inputs cannot
be trusted (stale, missing, out of sane bounds) the decision is the conservative one: top of the
hedge band, the fail-safe leverage cap, no new exposure, ``fail_safe=True``.
"""

from __future__ import annotations

import math

from cascade_ml.policy import rules
from cascade_ml.policy.config import HARD_LEVERAGE_LIMIT, PolicyConfig
from cascade_ml.policy.liquidation import liquidation_price
from cascade_ml.policy.models import Decision, PolicyInputs


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def data_problems(inputs: PolicyInputs, cfg: PolicyConfig) -> list[str]:
    """Why the inputs cannot be trusted (empty when they can)."""
    f, fresh = inputs.forecast, inputs.freshness
    problems = []
    if not inputs.model_available:
        problems.append("no model is loaded")
    max_age = fresh.max_age_s or cfg.max_data_age_s
    for name, age in (("forecast", fresh.forecast_age_s), ("feature data", fresh.features_age_s)):
        if age is None:
            problems.append(f"the age of the {name} is unknown")
        elif age > max_age:
            problems.append(f"the {name} is {age:.0f} s old, more than the {max_age:.0f} s allowed")
    if not _finite(f.sigma_h):
        problems.append(f"forecast vol is missing or not a number ({f.sigma_h})")
    elif f.sigma_h <= 0:
        problems.append(f"forecast vol {f.sigma_h} is not positive")
    elif f.sigma_h > cfg.max_sigma_h:
        problems.append(f"forecast vol {f.sigma_h:.3f} over {f.horizon_hours:g} h is above the "
                        f"sane limit {cfg.max_sigma_h}")
    if not _finite(f.cascade_prob):
        problems.append(f"cascade probability is missing or not a number ({f.cascade_prob})")
    elif not 0 <= f.cascade_prob <= 1:
        problems.append(f"cascade probability {f.cascade_prob} is outside [0, 1]")
    for name in ("vol_q90", "vol_q99"):
        q = getattr(f, name)
        if q is not None and (not math.isfinite(q) or q < 0 or q > cfg.max_sigma_h * 10):
            problems.append(f"forecast {name} {q} is outside sane bounds")
    return problems


def _position_liquidation(inputs: PolicyInputs, cfg: PolicyConfig) -> tuple[float, float]:
    """Liquidation price and distance (from mark): isolated margin backs the position with
    ``notional / leverage``; cross margin with the whole account equity (no other positions)."""
    pos = inputs.position
    tiers = cfg.tiers_for(inputs.symbol)
    qty = pos.notional / pos.entry_price
    wallet = pos.notional / pos.leverage if pos.margin_mode == "isolated" else inputs.equity
    lp = liquidation_price(pos.side, qty, pos.entry_price, wallet, tiers)
    dist = (pos.mark_price - lp) / pos.mark_price if pos.side == "long" else (
        lp - pos.mark_price) / pos.mark_price
    return lp, dist


def _instrument(inputs: PolicyInputs, cfg: PolicyConfig) -> tuple[str, float, float, str]:
    """Same perp, or the BTC/ETH perp whose R^2 is high enough and beats the same perp."""
    best = ("same_perp", 1.0, cfg.same_perp_effectiveness)
    for name in ("btc", "eth"):
        beta, r2 = inputs.cross_asset.proxy(name)
        if beta is None or beta <= 0 or r2 < cfg.min_cross_hedge_r2:
            continue
        if r2 > best[2]:
            best = (name.upper(), beta, r2)
    if best[0] == "same_perp":
        why = (f"hedge in the same perp (effectiveness {best[2]:.2f}); no BTC/ETH proxy has "
               f"R^2 >= {cfg.min_cross_hedge_r2:.2f} and above it")
    else:
        why = (f"hedge with the {best[0]} perp, beta-weighted (beta {best[1]:.2f}, R^2 "
               f"{best[2]:.2f} >= {cfg.min_cross_hedge_r2:.2f} and above the same perp's "
               f"{cfg.same_perp_effectiveness:.2f})")
    return best[0], best[1], best[2], why


def _fail_safe(inputs: PolicyInputs, cfg: PolicyConfig, problems: list[str]) -> Decision:
    pos = inputs.position
    worst = rules.leverage_caps(cfg.max_sigma_h, inputs.forecast.horizon_hours, 1.0, pos.side,
                                pos.notional, cfg.tiers_for(inputs.symbol), cfg)
    lev = min(cfg.fail_safe_leverage, float(worst["cap"]))
    lp, dist = _position_liquidation(inputs, cfg)
    rebalance = pos.hedge_ratio < cfg.hedge_max or pos.leverage > lev
    reasons = [f"FAIL-SAFE: {p}" for p in problems] + [
        f"hedge ratio {cfg.hedge_max:.0%}: top of the {cfg.hedge_min:.0%}-{cfg.hedge_max:.0%} band "
        "because the forecast cannot be trusted",
        f"leverage cap {lev:.2f}x: the lower of the fail-safe leverage "
        f"{cfg.fail_safe_leverage:g}x and the cap at the worst sane forecast",
        f"size cap {pos.notional:,.0f}: no new exposure until the data is trustworthy",
        "rebalance now (the no-trade band does not apply when failing safe)" if rebalance
        else "hold: already at the conservative hedge and leverage",
    ]
    return Decision(
        symbol=inputs.symbol, action="rebalance" if rebalance else "hold",
        hedge_ratio=cfg.hedge_max, current_hedge_ratio=pos.hedge_ratio,
        hedge_instrument="same_perp", hedge_beta=1.0,
        hedge_effectiveness=cfg.same_perp_effectiveness,
        hedge_notional=cfg.hedge_max * pos.notional, leverage_cap=lev,
        leverage_caps={"fail_safe": lev}, size_cap_notional=pos.notional,
        required_liquidation_distance=None, liquidation_price=lp, liquidation_distance=dist,
        risk_score=None, fail_safe=True, reasons=reasons)


def decide(inputs: PolicyInputs, config: PolicyConfig) -> Decision:
    """The hedge/leverage decision for one position; see docs/policy.md for the formulas."""
    cfg = config
    problems = data_problems(inputs, cfg)
    if problems:
        return _fail_safe(inputs, cfg, problems)
    f, pos = inputs.forecast, inputs.position
    sigma, horizon, prob = float(f.sigma_h), f.horizon_hours, float(f.cascade_prob)
    tiers = cfg.tiers_for(inputs.symbol)
    fired = inputs.triggers.fired()
    reasons: list[str] = []

    vol_ann = rules.annualised_vol(sigma, horizon)
    score = rules.risk_score(sigma, horizon, prob, cfg)
    hedge = rules.hedge_ratio(sigma, horizon, prob, len(fired), cfg)
    bump = rules.trigger_bump(len(fired), cfg)
    reasons.append(
        f"hedge ratio {hedge:.0%}: risk score {score:.2f} from forecast vol {sigma:.2%} over "
        f"{horizon:g} h ({vol_ann:.0%} a year vs {cfg.vol_reference_annual:.0%} reference) and "
        f"cascade probability {prob:.1%}, mapped into the {cfg.hedge_min:.0%}-{cfg.hedge_max:.0%} "
        "band" + (f", +{bump:.0%} for trigger(s) {', '.join(fired)}" if fired else ""))

    instrument, beta, r2, why = _instrument(inputs, cfg)
    reasons.append(f"{why}; hedge notional {hedge * pos.notional * beta:,.0f}")

    caps = rules.leverage_caps(sigma, horizon, prob, pos.side, pos.notional, tiers, cfg,
                               f.vol_q99)
    cap = float(caps["cap"])
    k = rules.k_sigma(prob, cfg)
    binding = min(("ceiling", "vol_target", "liquidation", "exchange_tier"),
                  key=lambda n: caps[n])
    ceiling_note = (f" (configured {cfg.max_leverage:g}x held to the {HARD_LEVERAGE_LIMIT:g}x "
                    "hard limit)" if cfg.leverage_ceiling < cfg.max_leverage else "")
    reasons.append(
        f"leverage cap {cap:.2f}x, set by {binding}: ceiling {caps['ceiling']:g}x{ceiling_note}; "
        f"vol target {cfg.target_vol_annual:.0%}/{vol_ann:.0%} = {caps['vol_target']:.2f}x; "
        f"liquidation at least {caps['required_distance']:.1%} away ({k:.1f} sigma) allows "
        f"{caps['liquidation']:.2f}x with the {inputs.symbol} margin tier of "
        f"{pos.notional:,.0f} notional; exchange tier max {caps['exchange_tier']:g}x")

    sc = rules.size_cap(inputs.equity, sigma, hedge, r2, cfg)
    resid = rules.residual_fraction(hedge, r2)
    reasons.append(
        f"size cap {sc:,.0f} notional: a {cfg.size_k_sigma:g}-sigma move "
        f"({cfg.size_k_sigma * sigma:.1%}) on the unhedged {resid:.0%} loses at most "
        f"{cfg.max_risk_fraction:.0%} of equity {inputs.equity:,.0f}")

    lp, dist = _position_liquidation(inputs, cfg)
    backing = ("isolated margin" if pos.margin_mode == "isolated"
               else "cross margin backed by the whole equity")
    reasons.append(f"liquidation price {lp:.6g} at the current {pos.leverage:g}x "
                   f"({dist:.1%} from mark, {backing})")

    worth, benefit, cost = rules.rebalance_test(hedge, pos.hedge_ratio, sigma, prob, pos.notional,
                                                r2, beta, cfg)
    over_leverage = pos.leverage > cap + 1e-9
    over_size = pos.notional > sc + 1e-9
    if over_leverage or over_size:
        action = "rebalance"
        what = [w for w, flag in (("leverage above its cap", over_leverage),
                                  ("notional above the size cap", over_size)) if flag]
        reasons.append(f"rebalance: {' and '.join(what)} (risk limits override the no-trade band)")
    elif worth:
        action = "rebalance"
        reasons.append(f"rebalance hedge {pos.hedge_ratio:.0%} -> {hedge:.0%}: expected tail-risk "
                       f"change {benefit:,.2f} beats {cfg.benefit_cost_multiple:g}x the fees and "
                       f"spread {cost:,.2f}")
    else:
        action = "hold"
        reasons.append(f"hold: moving the hedge {pos.hedge_ratio:.0%} -> {hedge:.0%} is inside the "
                       f"no-trade band ({cfg.no_trade_band:.0%}) or its benefit {benefit:,.2f} "
                       f"does not beat {cfg.benefit_cost_multiple:g}x the cost {cost:,.2f}")

    return Decision(
        symbol=inputs.symbol, action=action, hedge_ratio=hedge, current_hedge_ratio=pos.hedge_ratio,
        hedge_instrument=instrument, hedge_beta=beta, hedge_effectiveness=r2,
        hedge_notional=hedge * pos.notional * beta, leverage_cap=cap,
        leverage_caps={n: float(caps[n]) for n in ("ceiling", "vol_target", "liquidation",
                                                    "exchange_tier")},
        size_cap_notional=sc, required_liquidation_distance=float(caps["required_distance"]),
        liquidation_price=lp, liquidation_distance=dist, risk_score=score, fail_safe=False,
        reasons=reasons)
