"""``decide``: forecasts + position -> hedge ratio, instrument, caps, protective stop, action.

Pure: no I/O, no clock. Every number comes with a sentence in ``reasons`` and the limit that bound
it in ``binding``. When the inputs cannot be trusted (stale, missing, out of sane bounds) the
decision is the fail-safe one (:mod:`cascade_ml.policy.failsafe`): the normal decision at the
worst sane forecast, with no new exposure, ``fail_safe=True``.

Caps agree with each other: the size cap never exceeds what the leverage cap allows on the
equity; the protective stop loses at most ``max_risk_fraction`` of equity and sits before the
liquidation price; ``hold`` whenever the position already meets every limit and the hedge is
within the no-trade band of its target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cascade_ml.policy import failsafe, rules
from cascade_ml.policy.config import HARD_LEVERAGE_LIMIT, PolicyConfig
from cascade_ml.policy.liquidation import liquidation_price
from cascade_ml.policy.models import Decision, PolicyInputs

CHECK_MESSAGES = {
    "sigma_missing": "forecast vol is missing or not a number ({sigma})",
    "sigma_not_positive": "forecast vol {sigma} is not positive",
    "sigma_too_high": "forecast vol {sigma:.3f} over {horizon:g} h is above the sane limit {limit}",
    "prob_missing": "cascade probability is missing or not a number ({prob})",
    "prob_out_of_range": "cascade probability {prob} is outside [0, 1]",
    "vol_q99_insane": "forecast vol_q99 {q99} is outside sane bounds",
}
TOL = 1e-9


def _num(x: float | None) -> float:
    return math.nan if x is None else float(x)


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
    q99 = None if f.vol_q99 is None else float(f.vol_q99)
    checks = failsafe.forecast_checks(_num(f.sigma_h), _num(f.cascade_prob), q99, cfg)
    values = {"sigma": f.sigma_h, "prob": f.cascade_prob, "q99": f.vol_q99,
              "horizon": f.horizon_hours, "limit": cfg.max_sigma_h}
    problems += [CHECK_MESSAGES[name].format(**values) for name, bad in checks.items() if bad]
    if f.vol_q90 is not None and (not math.isfinite(f.vol_q90) or f.vol_q90 < 0
                                  or f.vol_q90 > cfg.max_sigma_h * 10):
        problems.append(f"forecast vol_q90 {f.vol_q90} is outside sane bounds")
    return problems


def _liquidation(inputs: PolicyInputs, cfg: PolicyConfig, notional: float, leverage: float,
                 ref_price: float) -> tuple[float, float]:
    """Liquidation price of ``notional`` entered at the position's entry price, and its distance
    from ``ref_price``: isolated margin backs it with ``notional / leverage``, cross margin with
    the whole equity (no other positions)."""
    pos = inputs.position
    qty = notional / pos.entry_price
    wallet = notional / leverage if pos.margin_mode == "isolated" else inputs.equity
    lp = liquidation_price(pos.side, qty, pos.entry_price, wallet, cfg.tiers_for(inputs.symbol))
    dist = (ref_price - lp) / ref_price if pos.side == "long" else (lp - ref_price) / ref_price
    return lp, dist


@dataclass
class _Stop:
    max_loss: float
    price: float | None
    distance: float
    bound: str
    reached: bool
    reason: str


def _stop(inputs: PolicyInputs, cfg: PolicyConfig, notional: float, leverage: float,
          exposure: float, adverse: float) -> _Stop:
    """The protective stop of the position after this decision (``notional`` at ``leverage``,
    hedged so that it loses ``exposure`` of a move), measured from the entry price."""
    pos = inputs.position
    max_loss = cfg.max_risk_fraction * inputs.equity
    lp, liq_dist = _liquidation(inputs, cfg, notional, leverage, pos.entry_price)
    if lp == 0.0 and pos.side == "long":  # margin covers a fall to zero: never liquidated
        liq_dist = math.inf
    parts = rules.stop_distance(max_loss, notional, exposure, liq_dist, cfg)
    d = float(parts["distance"])
    bound = "max_loss" if parts["max_loss"] <= parts["liquidation_buffer"] else \
        "liquidation_buffer"
    sign = 1.0 if pos.side == "long" else -1.0
    price = pos.entry_price * (1 - sign * d) if (sign < 0 or d < 1) else None
    reached = price is not None and (pos.mark_price - price) * sign <= 0
    where = "below" if sign > 0 else "above"
    if price is None:
        reason = (f"no protective stop needed: even a fall to zero loses less than the max "
                  f"tolerable loss {max_loss:,.0f} ({cfg.max_risk_fraction:.0%} of equity)")
    else:
        why = (f"where {notional:,.0f} notional, {exposure:.0%} net of the hedge, has lost the "
               f"max tolerable {max_loss:,.0f} ({cfg.max_risk_fraction:.0%} of equity)"
               if bound == "max_loss" else
               f"{cfg.stop_liquidation_buffer:.0%} of the way to liquidation "
               f"({liq_dist:.1%} from entry), before the max loss {max_loss:,.0f} is reached")
        noise = ("beyond" if d >= adverse - TOL else "INSIDE (expect it to fire on ordinary "
                 "noise)")
        reason = (f"protective stop {price:.6g}, {d:.1%} {where} entry {pos.entry_price:.6g}: "
                  f"{why}; {noise} the adverse-move forecast {adverse:.1%}")
    return _Stop(max_loss, price, d, bound, reached, reason)


def _fail_safe(inputs: PolicyInputs, cfg: PolicyConfig, problems: list[str]) -> Decision:
    pos = inputs.position
    hedge = failsafe.hedge_ratio(cfg)
    r2 = cfg.same_perp_effectiveness
    lev = float(failsafe.leverage_cap(inputs.forecast.horizon_hours, pos.side, pos.notional,
                                      cfg.tiers_for(inputs.symbol), cfg))
    size, size_bound = failsafe.size_cap(inputs.equity, pos.notional, lev, cfg)
    lp, dist = _liquidation(inputs, cfg, pos.notional, pos.leverage, pos.mark_price)
    exposure = float(rules.net_exposure(hedge, r2))
    stop = _stop(inputs, cfg, size, min(pos.leverage, lev), exposure,
                 float(rules.adverse_move(cfg.max_sigma_h, cfg)))
    if stop.reached:
        size, size_bound = 0.0, "stop_reached"
    reasons = [f"FAIL-SAFE: {p}" for p in problems] + [
        f"hedge ratio {hedge:.0%}: top of the {cfg.hedge_min:.0%}-{cfg.hedge_max:.0%} band "
        "because the forecast cannot be trusted",
        f"leverage cap {lev:.2f}x: the lower of the fail-safe leverage "
        f"{cfg.fail_safe_leverage:g}x and the cap at the worst sane forecast "
        f"(vol {cfg.max_sigma_h:g} over {inputs.forecast.horizon_hours:g} h, cascade certain)",
        f"size cap {size:,.0f} notional, set by {size_bound}: no new exposure until the data is "
        f"trustworthy, at most leverage cap x equity {lev * inputs.equity:,.0f} and the risk "
        "budget at the worst sane forecast",
        stop.reason,
    ]
    action, key, why = _action(inputs, cfg, hedge, lev, size, stop, worth=None)
    reasons.append(why)
    return Decision(
        symbol=inputs.symbol, action=action, hedge_ratio=hedge,
        current_hedge_ratio=pos.hedge_ratio, hedge_instrument="same_perp", hedge_beta=1.0,
        hedge_effectiveness=r2, hedge_notional=hedge * min(pos.notional, size),
        leverage_cap=lev, leverage_caps={"fail_safe": lev}, size_cap_notional=size,
        required_liquidation_distance=None, liquidation_price=lp, liquidation_distance=dist,
        risk_score=None, fail_safe=True, reasons=reasons, max_loss=stop.max_loss,
        stop_price=stop.price, stop_distance=stop.distance,
        binding={"leverage": "fail_safe", "size": size_bound, "stop": stop.bound,
                 "action": key})


def _action(inputs: PolicyInputs, cfg: PolicyConfig, target: float, lev_cap: float,
            size_cap: float, stop: _Stop, worth: tuple[bool, float, float] | None
            ) -> tuple[str, str, str]:
    """(action, what decided it, reason). Rebalance when the stop is reached, a limit is broken,
    or the hedge is off its target by at least the no-trade band (and, outside the fail-safe,
    the change pays for itself); hold otherwise."""
    pos = inputs.position
    if stop.reached:
        return "rebalance", "stop_reached", ("rebalance: the mark is past the protective stop; "
                             "close the position (size cap 0)")
    broken = [w for w, flag in (("leverage above its cap", pos.leverage > lev_cap + TOL),
                                ("notional above the size cap", pos.notional > size_cap + TOL))
              if flag]
    if broken:
        return "rebalance", "limits", (f"rebalance: {' and '.join(broken)} (risk limits override "
                             "the no-trade band)")
    change = abs(target - pos.hedge_ratio)
    if change < cfg.no_trade_band - 1e-12:
        return "hold", "within_band", (f"hold: the hedge {pos.hedge_ratio:.0%} is within the "
                        f"{cfg.no_trade_band:.0%} no-trade band of its target {target:.0%} and "
                        "every limit is met")
    if worth is None:
        return "rebalance", "hedge_change", (f"rebalance hedge {pos.hedge_ratio:.0%} -> "
                             f"{target:.0%} (failing safe: the benefit test does not apply)")
    ok, benefit, cost = worth
    if ok:
        return "rebalance", "hedge_change", (f"rebalance hedge {pos.hedge_ratio:.0%} -> "
                             f"{target:.0%}: expected tail-risk change {benefit:,.2f} beats "
                             f"{cfg.benefit_cost_multiple:g}x the fees and spread {cost:,.2f}")
    return "hold", "not_worth_it", (f"hold: moving the hedge {pos.hedge_ratio:.0%} -> {target:.0%} "
                    f"(outside the no-trade band) has a benefit {benefit:,.2f} that does not beat "
                    f"{cfg.benefit_cost_multiple:g}x the cost {cost:,.2f}")


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

    ref = rules.vol_reference(inputs.trailing_vol_annual, cfg)
    vol_ann = rules.annualised_vol(sigma, horizon)
    score = rules.risk_score(sigma, horizon, prob, cfg, ref)
    hedge = rules.hedge_ratio(sigma, horizon, prob, len(fired), cfg, ref)
    bump = rules.trigger_bump(len(fired), cfg)
    ref_name = ("its own trailing" if cfg.vol_reference == "trailing"
                and inputs.trailing_vol_annual is not None and ref != cfg.vol_reference_annual
                else "the fixed")
    reasons.append(
        f"hedge ratio {hedge:.0%}: risk score {score:.2f} from forecast vol {sigma:.2%} over "
        f"{horizon:g} h ({vol_ann:.0%} a year vs {ref:.0%}, {ref_name} reference) and "
        f"cascade probability {prob:.1%}, mapped into the {cfg.hedge_min:.0%}-{cfg.hedge_max:.0%} "
        "band" + (f", +{bump:.0%} for trigger(s) {', '.join(fired)}" if fired else ""))

    ca = inputs.cross_asset
    pb, pe = ca.proxy("btc"), ca.proxy("eth")
    code, beta, r2 = rules.hedge_instrument(_num(pb[0]), _num(pb[1]), _num(pe[0]), _num(pe[1]),
                                            cfg)
    instrument = rules.INSTRUMENTS[int(code)]
    if instrument == "same_perp":
        why = (f"hedge in the same perp (effectiveness {r2:.2f}); no BTC/ETH proxy has "
               f"R^2 >= {cfg.min_cross_hedge_r2:.2f} and above it")
    else:
        why = (f"hedge with the {instrument} perp, beta-weighted (beta {beta:.2f}, R^2 "
               f"{r2:.2f} >= {cfg.min_cross_hedge_r2:.2f} and above the same perp's "
               f"{cfg.same_perp_effectiveness:.2f})")

    caps = rules.leverage_caps(sigma, horizon, prob, pos.side, pos.notional, tiers, cfg,
                               f.vol_q99)
    cap = float(caps["cap"])
    k = rules.k_sigma(prob, cfg)
    lev_bound = min(("ceiling", "vol_target", "liquidation", "exchange_tier"),
                    key=lambda n: caps[n])
    sizes = rules.size_caps(inputs.equity, sigma, hedge, r2, cap, cfg)
    sc = float(sizes["cap"])
    size_bound = "risk_budget" if sizes["risk_budget"] <= sizes["leverage_cap"] else \
        "leverage_cap"
    exposure = float(rules.net_exposure(hedge, r2))
    adverse = float(rules.adverse_move(sigma, cfg))
    stop = _stop(inputs, cfg, min(pos.notional, sc), min(pos.leverage, cap), exposure, adverse)
    if stop.reached:
        sc, size_bound = 0.0, "stop_reached"
    reasons.append(f"{why}; hedge notional {hedge * min(pos.notional, sc) * beta:,.0f}")

    ceiling_note = (f" (configured {cfg.max_leverage:g}x held to the {HARD_LEVERAGE_LIMIT:g}x "
                    "hard limit)" if cfg.leverage_ceiling < cfg.max_leverage else "")
    reasons.append(
        f"leverage cap {cap:.2f}x, set by {lev_bound}: ceiling {caps['ceiling']:g}x{ceiling_note}; "
        f"vol target {cfg.target_vol_annual:.0%}/{vol_ann:.0%} = {caps['vol_target']:.2f}x; "
        f"liquidation at least {caps['required_distance']:.1%} away ({k:.1f} sigma) allows "
        f"{caps['liquidation']:.2f}x with the {inputs.symbol} margin tier of "
        f"{pos.notional:,.0f} notional; exchange tier max {caps['exchange_tier']:g}x")
    reasons.append(
        f"size cap {sc:,.0f} notional, set by {size_bound}: a {cfg.size_k_sigma:g}-sigma adverse "
        f"move ({adverse:.1%}) on the {exposure:.0%} left unhedged loses at most "
        f"{cfg.max_risk_fraction:.0%} of equity {inputs.equity:,.0f} at "
        f"{float(sizes['risk_budget']):,.0f}; the leverage cap allows "
        f"{float(sizes['leverage_cap']):,.0f} on that equity")

    lp, dist = _liquidation(inputs, cfg, pos.notional, pos.leverage, pos.mark_price)
    backing = ("isolated margin" if pos.margin_mode == "isolated"
               else "cross margin backed by the whole equity")
    reasons.append(f"liquidation price {lp:.6g} at the current {pos.leverage:g}x "
                   f"({dist:.1%} from mark, {backing})")
    reasons.append(stop.reason)

    worth = rules.rebalance_test(hedge, pos.hedge_ratio, sigma, prob, pos.notional, r2, beta, cfg)
    action, key, why_action = _action(inputs, cfg, hedge, cap, sc, stop, worth)
    reasons.append(why_action)

    return Decision(
        symbol=inputs.symbol, action=action, hedge_ratio=hedge, current_hedge_ratio=pos.hedge_ratio,
        hedge_instrument=instrument, hedge_beta=beta, hedge_effectiveness=r2,
        hedge_notional=hedge * min(pos.notional, sc) * beta, leverage_cap=cap,
        leverage_caps={n: float(caps[n]) for n in ("ceiling", "vol_target", "liquidation",
                                                    "exchange_tier")},
        size_cap_notional=sc, required_liquidation_distance=float(caps["required_distance"]),
        liquidation_price=lp, liquidation_distance=dist, risk_score=score, fail_safe=False,
        reasons=reasons, max_loss=stop.max_loss, stop_price=stop.price,
        stop_distance=stop.distance,
        binding={"leverage": lev_bound, "size": size_bound, "stop": stop.bound,
                 "action": key})
