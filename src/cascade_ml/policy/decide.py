"""``decide``: forecasts + position -> hedge ratio, instrument, caps, protective stop, action.

Pure: no I/O, no clock. Every number comes with a sentence in ``reasons`` and the limit that bound
it in ``binding``. When the inputs cannot be trusted (stale, missing, out of sane bounds) the
decision is the fail-safe one (:mod:`cascade_ml.policy.failsafe`): the normal decision at the
worst sane forecast, with no new exposure, ``fail_safe=True``.

Caps agree with each other: the size cap never exceeds what the leverage cap allows on the
equity; the protective stop loses at most ``max_risk_fraction`` of equity and sits before the
liquidation price; ``hold`` whenever the position already meets every limit and the hedge is
within the no-trade band of its target.

A decision is made in two steps, and ``decide`` is just the two in a row. :func:`plan` does what
depends only on the forecast bar (forecast values, the bar's triggers and cross-asset stats) and
the symbol's config: the forecast checks, risk score, hedge target, instrument, the forecast's
leverage limits and their sentences. :func:`decide_position` adds one position: the caps that
depend on its notional, liquidation, stop, action. The service plans each served forecast once
and reuses the plan for every bot's position, so a request pays only for the second step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from cascade_ml.policy import failsafe, rules
from cascade_ml.policy.config import HARD_LEVERAGE_LIMIT, MarginTier, PolicyConfig
from cascade_ml.policy.liquidation import Side, liquidation_price
from cascade_ml.policy.schemas import (
    CrossAsset,
    Decision,
    Forecast,
    Freshness,
    PolicyInputs,
    Position,
    Triggers,
)

CHECK_MESSAGES = {
    "sigma_missing": "forecast vol is missing or not a number ({sigma})",
    "sigma_not_positive": "forecast vol {sigma} is not positive",
    "sigma_too_high": "forecast vol {sigma:.3f} over {horizon:g} h is above the sane limit {limit}",
    "prob_missing": "cascade probability is missing or not a number ({prob})",
    "prob_out_of_range": "cascade probability {prob} is outside [0, 1]",
    "vol_q99_insane": "forecast vol_q99 {q99} is outside sane bounds",
}
TOL = 1e-9
LEVERAGE_LIMITS = ("ceiling", "risk", "vol_target", "liquidation", "exchange_tier")
NO_FRESHNESS = Freshness()


class PositionLike(Protocol):
    """What a decision reads of the position: a ``Position``, or values already held to its
    constraints elsewhere (the service's request schema) that need no second validation."""

    @property
    def side(self) -> Side: ...
    @property
    def notional(self) -> float: ...
    @property
    def entry_price(self) -> float: ...
    @property
    def mark_price(self) -> float: ...
    @property
    def leverage(self) -> float: ...
    @property
    def margin_mode(self) -> str: ...
    @property
    def hedge_ratio(self) -> float: ...


class FreshnessLike(Protocol):
    """What a decision reads of the inputs' ages (``Freshness`` or the same values)."""

    @property
    def forecast_age_s(self) -> float | None: ...
    @property
    def features_age_s(self) -> float | None: ...
    @property
    def max_age_s(self) -> float | None: ...


def _num(x: float | None) -> float:
    return math.nan if x is None else float(x)


def forecast_problems(f: Forecast, cfg: PolicyConfig) -> list[str]:
    """Why the forecast values cannot be trusted (empty when they can)."""
    q99 = None if f.vol_q99 is None else float(f.vol_q99)
    checks = failsafe.forecast_checks(_num(f.sigma_h), _num(f.cascade_prob), q99, cfg)
    values = {"sigma": f.sigma_h, "prob": f.cascade_prob, "q99": f.vol_q99,
              "horizon": f.horizon_hours, "limit": cfg.max_sigma_h}
    problems = [CHECK_MESSAGES[name].format(**values) for name, bad in checks.items() if bad]
    if f.vol_q90 is not None and (not math.isfinite(f.vol_q90) or f.vol_q90 < 0
                                  or f.vol_q90 > cfg.max_sigma_h * 10):
        problems.append(f"forecast vol_q90 {f.vol_q90} is outside sane bounds")
    return problems


def input_problems(model_available: bool, fresh: FreshnessLike, cfg: PolicyConfig
                   ) -> list[str]:
    """Why the inputs around the forecast cannot be trusted: no model, stale or unknown ages."""
    problems = []
    if not model_available:
        problems.append("no model is loaded")
    max_age = fresh.max_age_s or cfg.max_data_age_s
    for name, age in (("forecast", fresh.forecast_age_s), ("feature data", fresh.features_age_s)):
        if age is None:
            problems.append(f"the age of the {name} is unknown")
        elif age > max_age:
            problems.append(f"the {name} is {age:.0f} s old, more than the {max_age:.0f} s allowed")
    return problems


def data_problems(inputs: PolicyInputs, cfg: PolicyConfig) -> list[str]:
    """Why the inputs cannot be trusted (empty when they can)."""
    return (input_problems(inputs.model_available, inputs.freshness, cfg)
            + forecast_problems(inputs.forecast, cfg))


# ---------------------------------------------------------------------------- the plan
class Texts(NamedTuple):
    """Numbers of the stop and action sentences known before the position, formatted once."""

    risk_fraction: str  # max_risk_fraction, as a percentage
    buffer: str  # stop_liquidation_buffer
    band: str  # no_trade_band
    multiple: str  # benefit_cost_multiple
    exposure: str  # share of a move left unhedged
    adverse: str  # the adverse-move forecast
    target: str  # the hedge ratio's target


def _texts(cfg: PolicyConfig, exposure: float, adverse: float, target: float) -> Texts:
    return Texts(f"{cfg.max_risk_fraction:.0%}", f"{cfg.stop_liquidation_buffer:.0%}",
                 f"{cfg.no_trade_band:.0%}", f"{cfg.benefit_cost_multiple:g}",
                 f"{exposure:.0%}", f"{adverse:.1%}", f"{target:.0%}")


class HedgeView(NamedTuple):
    """The hedge target for one set of fired triggers, and what follows from it alone."""

    hedge: float
    exposure: float  # share of a move the hedged position loses (1 - h R^2)
    loss_per_notional: float  # what a unit of notional loses on the adverse move
    residual: float  # share of the position's return vol left at this hedge
    reason: str  # the hedge-ratio sentence
    size_note: str  # the middle of the size-cap sentence
    texts: Texts


class Outlook(NamedTuple):
    """What a trusted forecast sets whatever the position (the normal path's half of ``plan``)."""

    sigma: float
    prob: float
    reference: float  # the annualised vol the forecast is judged against
    sigma_ref: float  # the reference vol over H: the 2 % rule's size is built on it
    score: float
    terms: dict[str, float]  # rules.objective_terms (the objective rule's parts)
    hedge: float  # the hedge target when it does not depend on the triggers (objective)
    hedge_bound: str  # what bound that target: objective, hedge_min, hedge_max (or, shrunk
    # toward the static ratio, static_shrinkage / static)
    hedge_note: str  # the hedge-ratio sentence after "hedge ratio x%: ", before the triggers
    instrument: str
    beta: float
    r2: float
    instrument_why: str
    limits: dict[str, float]  # rules.forecast_leverage_limits
    leverage_note: str  # the leverage sentence from the ceiling up to "allows"
    adverse: float  # the tail move the size is built on (fraction of price)
    tail_weight: float  # weight of the tail loss in a rebalance's benefit


@dataclass(frozen=True)
class ForecastPlan:
    """Everything ``decide`` needs that depends only on the forecast bar and the symbol's config.

    ``problems`` are the failed forecast checks (the decision fails safe when there are any);
    ``outlook`` is None then. Hedge views are made once per set of fired triggers (a bot may
    report fresher trigger flags than the bar's).
    """

    symbol: str
    cfg: PolicyConfig
    horizon: float
    tiers: Sequence[MarginTier]
    triggers: Mapping[str, bool | None]  # the bar's trigger flags, by name
    fired: tuple[str, ...]  # the names of the bar's fired triggers
    problems: tuple[str, ...]
    outlook: Outlook | None
    _hedges: dict[tuple[str, ...], HedgeView] = field(default_factory=dict, repr=False,
                                                      compare=False)

    def fired_with(self, flags: Mapping[str, bool]) -> tuple[str, ...]:
        """The fired triggers once ``flags`` (fresher values of some triggers) replace the bar's."""
        if not flags:
            return self.fired
        return tuple(name for name, value in {**self.triggers, **flags}.items() if value)

    def hedge_view(self, fired: tuple[str, ...]) -> HedgeView:
        view = self._hedges.get(fired)
        if view is None:
            view = self._hedges[fired] = _hedge_view(self, fired)
        return view


def plan(symbol: str, forecast: Forecast, cfg: PolicyConfig, *,
         triggers: Triggers | None = None, cross_asset: CrossAsset | None = None,
         trailing_vol_annual: float | None = None) -> ForecastPlan:
    """The forecast bar's half of every decision on ``symbol`` (see the module docstring)."""
    flags = (triggers or Triggers()).model_dump()
    problems = tuple(forecast_problems(forecast, cfg))
    outlook = None if problems else _outlook(forecast, cfg, cross_asset or CrossAsset(),
                                             trailing_vol_annual)
    return ForecastPlan(symbol, cfg, forecast.horizon_hours, cfg.tiers_for(symbol), flags,
                        tuple(name for name, value in flags.items() if value), problems,
                        outlook)


def plan_inputs(inputs: PolicyInputs, cfg: PolicyConfig) -> ForecastPlan:
    """``plan`` for the forecast bar of ``inputs``."""
    return plan(inputs.symbol, inputs.forecast, cfg, triggers=inputs.triggers,
                cross_asset=inputs.cross_asset, trailing_vol_annual=inputs.trailing_vol_annual)


def _outlook(f: Forecast, cfg: PolicyConfig, ca: CrossAsset,
             trailing_vol_annual: float | None) -> Outlook:
    sigma, horizon, prob = float(f.sigma_h), f.horizon_hours, float(f.cascade_prob)
    ref = rules.vol_reference(trailing_vol_annual, cfg)
    s_ref = float(rules.reference_sigma_h(ref, horizon))
    vol_ann = rules.annualised_vol(sigma, horizon)
    score = rules.risk_score(sigma, horizon, prob, cfg, ref)
    ref_name = ("its own trailing" if cfg.vol_reference == "trailing"
                and trailing_vol_annual is not None and ref != cfg.vol_reference_annual
                else "the fixed")

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

    terms = {k: float(v) for k, v in rules.objective_terms(sigma, horizon, prob, cfg, ref, r2,
                                                          beta).items()}
    if cfg.hedge_rule == "objective":
        hedge = terms["hedge"]
        bound = ("hedge_max" if terms["h_free"] >= cfg.hedge_max else
                 "hedge_min" if terms["h_free"] <= cfg.hedge_min else "objective")
        hedge_note = (
            f"the mean-variance optimum of the hedged position's {horizon:g} h return with a "
            f"cascade jump, net of costs: forecast vol {sigma:.2%} over {horizon:g} h = "
            f"{terms['rho']:.2f}x {ref_name} reference ({ref:.0%} a year), cascade "
            f"probability {prob:.1%} vs the {cfg.cascade_prob_base:.0%} base rate (jump "
            f"{cfg.jump_sigmas:g} sigma), expected return {terms['mean']:+.3f} and variance "
            f"{terms['var']:.2f} in reference-vol units, gamma {cfg.risk_aversion:g}: "
            f"unclipped optimum {terms['h_free']:.0%}"
            + {"objective": ", inside the band",
               "hedge_max": f", held to the top of the {cfg.hedge_min:.0%}-{cfg.hedge_max:.0%} "
                            "band",
               "hedge_min": f", held to the bottom of the {cfg.hedge_min:.0%}-"
                            f"{cfg.hedge_max:.0%} band"}[bound])
        if cfg.objective_weight < 1.0:
            bound, hedge_note = _shrunk_note(terms, cfg, hedge_note)
        limits = rules.forecast_leverage_limits(sigma, horizon, prob, cfg, f.vol_q99, hedge)
        middle = (f"risk cap {limits['risk']:.2f}x ({cfg.leverage_ceiling:g}x at the bottom of "
                  f"the hedge band to {min(cfg.min_leverage, cfg.leverage_ceiling):g}x at its "
                  f"top, here {hedge:.0%})")
    else:
        hedge, bound = math.nan, "score"
        hedge_note = (
            f"risk score {score:.2f} from forecast vol {sigma:.2%} over "
            f"{horizon:g} h ({vol_ann:.0%} a year vs {ref:.0%}, {ref_name} reference) and "
            f"cascade probability {prob:.1%}, mapped into the "
            f"{cfg.hedge_min:.0%}-{cfg.hedge_max:.0%} band")
        limits = rules.forecast_leverage_limits(sigma, horizon, prob, cfg, f.vol_q99)
        middle = (f"vol target {cfg.target_vol_annual:.0%}/{vol_ann:.0%} = "
                  f"{limits['vol_target']:.2f}x")
    k = rules.k_sigma(prob, cfg)
    ceiling_note = (f" (configured {cfg.max_leverage:g}x held to the {HARD_LEVERAGE_LIMIT:g}x "
                    "hard limit)" if cfg.leverage_ceiling < cfg.max_leverage else "")
    leverage_note = (
        f"ceiling {limits['ceiling']:g}x{ceiling_note}; {middle}; "
        f"liquidation at least {limits['required_distance']:.1%} away ({k:.1f} sigma) allows ")
    return Outlook(sigma, prob, ref, s_ref, score, terms, hedge, bound, hedge_note, instrument,
                   beta, r2, why, {n: float(v) for n, v in limits.items()}, leverage_note,
                   float(rules.adverse_move(s_ref, cfg)), float(rules.tail_weight(prob, cfg)))


def _shrunk_note(terms: dict[str, float], cfg: PolicyConfig, objective_note: str
                 ) -> tuple[str, str]:
    """(binding, sentence) of a hedge shrunk toward the static ratio (``objective_weight`` <
    1): ``static`` at weight 0, where the forecast plays no part; ``static_shrinkage``
    otherwise, the objective's own hedge and what bound it named in the sentence."""
    w, static = cfg.objective_weight, cfg.static_ratio
    if w == 0.0:
        return "static", (f"the static hedge {static:.0%} (objective weight 0: the forecast "
                          f"does not move the hedge; the objective alone would say "
                          f"{terms['hedge_objective']:.0%})")
    return "static_shrinkage", (
        f"{objective_note}, {terms['hedge_objective']:.0%}; shrunk toward the static "
        f"{static:.0%} with objective weight {w:g}: {static:.0%} + {w:g} x "
        f"({terms['hedge_objective']:.0%} - {static:.0%}) = {terms['hedge']:.0%}")


def _hedge_view(p: ForecastPlan, fired: tuple[str, ...]) -> HedgeView:
    o, cfg = p.outlook, p.cfg
    assert o is not None, "hedge views exist for trusted forecasts only"
    if cfg.hedge_rule == "objective":  # the objective has no trigger term
        hedge = o.hedge
        reason = (f"hedge ratio {hedge:.0%}: {o.hedge_note}"
                  + (f"; trigger(s) {', '.join(fired)} fired: no term of the objective (the "
                     "cascade probability reads them as features)" if fired else ""))
    else:
        hedge = rules.hedge_ratio(o.sigma, p.horizon, o.prob, len(fired), cfg, o.reference)
        bump = rules.trigger_bump(len(fired), cfg)
        reason = (f"hedge ratio {hedge:.0%}: {o.hedge_note}"
                  + (f", +{bump:.0%} for trigger(s) {', '.join(fired)}" if fired else ""))
    exposure = float(rules.net_exposure(hedge, o.r2))
    loss = float(rules.loss_per_notional(o.sigma_ref, cfg))
    residual = float(rules.residual_fraction(hedge, o.r2))
    size_note = (f"a {cfg.size_k_sigma:g}-sigma tail move of its reference vol "
                 f"({o.adverse:.1%} over {p.horizon:g} h) on the notional before the hedge "
                 f"loses at most {cfg.max_risk_fraction:.0%} of equity")
    return HedgeView(hedge, exposure, loss, residual, reason, size_note,
                     _texts(cfg, exposure, o.adverse, hedge))


# ---------------------------------------------------------------------------- one position
def _liquidation(pos: PositionLike, equity: float, tiers: Sequence[MarginTier], notional: float,
                 leverage: float, ref_price: float) -> tuple[float, float]:
    """Liquidation price of ``notional`` entered at the position's entry price, and its distance
    from ``ref_price``: isolated margin backs it with ``notional / leverage``, cross margin with
    the whole equity (no other positions)."""
    qty = notional / pos.entry_price
    wallet = notional / leverage if pos.margin_mode == "isolated" else equity
    lp = liquidation_price(pos.side, qty, pos.entry_price, wallet, tiers)
    dist = (ref_price - lp) / ref_price if pos.side == "long" else (lp - ref_price) / ref_price
    return lp, dist


class _Stop(NamedTuple):
    max_loss: float
    price: float | None
    distance: float
    bound: str
    reached: bool
    reason: str


def _stop(pos: PositionLike, equity: float, tiers: Sequence[MarginTier], cfg: PolicyConfig,
          notional: float, leverage: float, exposure: float, adverse: float,
          texts: Texts) -> _Stop:
    """The protective stop of the position after this decision (``notional`` at ``leverage``,
    hedged so that it loses ``exposure`` of a move), measured from the entry price, or from the
    mark when the stop is re-anchored (``stop_reset_bars`` > 0: the decision is an anchor, so
    the 2 % rule bounds the loss from here, as the trading core's re-anchored stop does)."""
    max_loss = cfg.max_risk_fraction * equity
    anchored = cfg.stop_reset_bars > 0
    anchor = pos.mark_price if anchored else pos.entry_price
    lp, liq_dist = _liquidation(pos, equity, tiers, notional, leverage, anchor)
    if lp == 0.0 and pos.side == "long":  # margin covers a fall to zero: never liquidated
        liq_dist = math.inf
    parts = rules.stop_distance(max_loss, notional, exposure, liq_dist, cfg)
    d = parts["distance"]  # rules return Python floats for single numbers
    bound = "max_loss" if parts["max_loss"] <= parts["liquidation_buffer"] else \
        "liquidation_buffer"
    sign = 1.0 if pos.side == "long" else -1.0
    price = anchor * (1 - sign * d) if (sign < 0 or d < 1) else None
    reached = price is not None and (pos.mark_price - price) * sign <= 0
    where = "below" if sign > 0 else "above"
    if price is None:
        reason = (f"no protective stop needed: even a fall to zero loses less than the max "
                  f"tolerable loss {max_loss:,.0f} ({texts.risk_fraction} of equity)")
    else:
        why = (f"where {notional:,.0f} notional, {texts.exposure} net of the hedge, has lost "
               f"the max tolerable {max_loss:,.0f} ({texts.risk_fraction} of equity)"
               if bound == "max_loss" else
               f"{texts.buffer} of the way to liquidation "
               f"({liq_dist:.1%} from entry), before the max loss {max_loss:,.0f} is reached")
        noise = ("beyond" if d >= adverse - TOL else "INSIDE (expect it to fire on ordinary "
                 "noise)")
        frm = (f"the mark {anchor:.6g} (re-anchored every {cfg.stop_reset_bars} bars)"
               if anchored else f"entry {anchor:.6g}")
        reason = (f"protective stop {price:.6g}, {d:.1%} {where} {frm}: "
                  f"{why}; {noise} the adverse-move forecast {texts.adverse}")
    return _Stop(max_loss, price, d, bound, reached, reason)


def _fail_safe_fields(symbol: str, horizon: float, cfg: PolicyConfig, pos: PositionLike,
                      equity: float, problems: Sequence[str]) -> dict[str, Any]:
    tiers = cfg.tiers_for(symbol)
    hedge = failsafe.hedge_ratio(cfg)
    r2 = cfg.same_perp_effectiveness
    lev = float(failsafe.leverage_cap(horizon, pos.side, pos.notional, tiers, cfg))
    size, size_bound = failsafe.size_cap(equity, pos.notional, lev, cfg)
    lp, dist = _liquidation(pos, equity, tiers, pos.notional, pos.leverage, pos.mark_price)
    exposure = float(rules.net_exposure(hedge, r2))
    adverse = float(rules.adverse_move(cfg.max_sigma_h, cfg))
    texts = _texts(cfg, exposure, adverse, hedge)
    stop = _stop(pos, equity, tiers, cfg, size, min(pos.leverage, lev), exposure, adverse, texts)
    if stop.reached:
        size, size_bound = 0.0, "stop_reached"
    reasons = [f"FAIL-SAFE: {p}" for p in problems] + [
        f"hedge ratio {hedge:.0%}: top of the {cfg.hedge_min:.0%}-{cfg.hedge_max:.0%} band "
        "because the forecast cannot be trusted",
        f"leverage cap {lev:.2f}x: the lower of the fail-safe leverage "
        f"{cfg.fail_safe_leverage:g}x and the cap at the worst sane forecast "
        f"(vol {cfg.max_sigma_h:g} over {horizon:g} h, cascade certain)",
        f"size cap {size:,.0f} notional, set by {size_bound}: no new exposure until the data is "
        f"trustworthy, at most leverage cap x equity {lev * equity:,.0f} and the risk "
        "budget at the worst sane forecast",
        stop.reason,
    ]
    action, key, why = _action(pos, cfg, hedge, lev, size, stop, None, texts)
    reasons.append(why)
    return dict(
        symbol=symbol, action=action, hedge_ratio=hedge,
        current_hedge_ratio=pos.hedge_ratio, hedge_instrument="same_perp", hedge_beta=1.0,
        hedge_effectiveness=r2, hedge_notional=hedge * min(pos.notional, size),
        leverage_cap=lev, leverage_caps={"fail_safe": lev}, size_cap_notional=size,
        required_liquidation_distance=None, liquidation_price=lp, liquidation_distance=dist,
        risk_score=None, fail_safe=True, reasons=reasons, max_loss=stop.max_loss,
        stop_price=stop.price, stop_distance=stop.distance,
        loss_per_notional=failsafe.loss_per_notional(cfg),
        binding={"hedge": "fail_safe", "leverage": "fail_safe", "size": size_bound,
                 "stop": stop.bound, "action": key})


def fail_safe(inputs: PolicyInputs, cfg: PolicyConfig, problems: Sequence[str]) -> Decision:
    """The fail-safe decision for ``inputs``, each of ``problems`` named first in its reasons
    (for callers that found reasons of their own to distrust the inputs, e.g. the monitor)."""
    return Decision(**_fail_safe_fields(inputs.symbol, inputs.forecast.horizon_hours, cfg,
                                        inputs.position, inputs.equity, problems))


def _action(pos: PositionLike, cfg: PolicyConfig, target: float, lev_cap: float,
            size_cap: float, stop: _Stop, worth: tuple[bool, str, str] | None,
            texts: Texts) -> tuple[str, str, str]:
    """(action, what decided it, reason). Rebalance when the stop is reached, a limit is broken,
    or the hedge is off its target by at least the no-trade band (and, outside the fail-safe,
    the change pays for itself: ``worth`` = (it does, why, why not)); hold otherwise."""
    if stop.reached:
        return "rebalance", "stop_reached", ("rebalance: the mark is past the protective stop; "
                             "close the position (size cap 0)")
    lev_over, size_over = pos.leverage > lev_cap + TOL, pos.notional > size_cap + TOL
    if lev_over or size_over:
        broken = [w for w, flag in (("leverage above its cap", lev_over),
                                    ("notional above the size cap", size_over)) if flag]
        return "rebalance", "limits", (f"rebalance: {' and '.join(broken)} (risk limits "
                                       "override the no-trade band)")
    change = abs(target - pos.hedge_ratio)
    if change < cfg.no_trade_band - 1e-12:
        return "hold", "within_band", (f"hold: the hedge {pos.hedge_ratio:.0%} is within the "
                        f"{texts.band} no-trade band of its target {texts.target} and "
                        "every limit is met")
    if worth is None:
        return "rebalance", "hedge_change", (f"rebalance hedge {pos.hedge_ratio:.0%} -> "
                             f"{texts.target} (failing safe: the benefit test does not apply)")
    ok, why_ok, why_not = worth
    if ok:
        return "rebalance", "hedge_change", (f"rebalance hedge {pos.hedge_ratio:.0%} -> "
                                             f"{texts.target}: {why_ok}")
    return "hold", "not_worth_it", (f"hold: moving the hedge {pos.hedge_ratio:.0%} -> "
                    f"{texts.target} (outside the no-trade band) {why_not}")


def _hedge_worth(o: Outlook, cfg: PolicyConfig, hv: HedgeView, pos: PositionLike
                 ) -> tuple[bool, str, str]:
    """Whether moving the hedge to ``target`` pays, with the sentence for either answer: the
    objective's utility gain against the trading cost spread over the holding time, or (the
    ``score`` rule) the tail-risk change against a multiple of the fees and spread."""
    target = hv.hedge
    if cfg.hedge_rule == "objective":
        ok, gain, cost = rules.objective_move(target, pos.hedge_ratio, o.terms, cfg)
        text = (f"utility gain {gain:.4f} vs the round-trip trading cost {cost:.4f} spread "
                f"over {cfg.holding_horizons:g} horizons (reference-vol units per unit "
                "notional)")
        if gain < cost:  # moved only because the held hedge is outside the band
            return bool(ok), (f"the held hedge lies outside the {cfg.hedge_min:.0%}-"
                              f"{cfg.hedge_max:.0%} band, a constraint ({text})"), \
                f"does not pay: {text}"
        return bool(ok), f"the objective's {text}", f"does not pay: {text}"
    ok, benefit, cost = rules.rebalance_check(target, pos.hedge_ratio, pos.notional, o.r2,
                                              o.beta, o.adverse, o.tail_weight, hv.residual,
                                              cfg)
    multiple = hv.texts.multiple
    return (bool(ok), f"expected tail-risk change {benefit:,.2f} beats {multiple}x the "
            f"fees and spread {cost:,.2f}", f"has a benefit {benefit:,.2f} that does not beat "
            f"{multiple}x the cost {cost:,.2f}")


def decide_position(p: ForecastPlan, pos: Position, equity: float, *,
                    fired: tuple[str, ...] | None = None, model_available: bool = True,
                    freshness: Freshness = NO_FRESHNESS) -> Decision:
    """The decision for one position on a planned forecast bar: ``decide`` without the
    per-bar work. ``fired`` replaces the bar's fired triggers (see ``ForecastPlan.fired_with``)."""
    return Decision(**decision_fields(p, pos, equity, fired=fired,
                                      model_available=model_available, freshness=freshness))


def decision_fields(p: ForecastPlan, pos: PositionLike, equity: float, *,
                    fired: tuple[str, ...] | None = None, model_available: bool = True,
                    freshness: FreshnessLike = NO_FRESHNESS) -> dict[str, Any]:
    """``decide_position``'s answer as the fields of its ``Decision``, before pydantic checks
    them (they are already of the declared types): for a caller that only serializes them, with
    a position and ages it has already validated (``equity`` must be > 0)."""
    cfg = p.cfg
    problems = input_problems(model_available, freshness, cfg)
    if problems or p.problems:
        return _fail_safe_fields(p.symbol, p.horizon, cfg, pos, equity, [*problems, *p.problems])
    o = p.outlook
    assert o is not None  # no forecast problems
    hv = p.hedge_view(p.fired if fired is None else fired)
    hedge, r2, beta, exposure = hv.hedge, o.r2, o.beta, hv.exposure

    caps = rules.position_leverage_caps(o.limits, pos.side, pos.notional, p.tiers)
    cap = caps["cap"]  # the rules return Python floats for single numbers
    lev_bound = min((n for n in LEVERAGE_LIMITS if n in caps), key=caps.__getitem__)
    sizes = rules.size_limits(equity, hv.loss_per_notional, cap, cfg)
    sc = sizes["cap"]
    size_bound = "risk_budget" if sizes["risk_budget"] <= sizes["leverage_cap"] else \
        "leverage_cap"
    stop = _stop(pos, equity, p.tiers, cfg, min(pos.notional, sc), min(pos.leverage, cap),
                 exposure, o.adverse, hv.texts)
    if stop.reached:
        sc, size_bound = 0.0, "stop_reached"
    lp, dist = _liquidation(pos, equity, p.tiers, pos.notional, pos.leverage, pos.mark_price)
    backing = ("isolated margin" if pos.margin_mode == "isolated"
               else "cross margin backed by the whole equity")
    worth = _hedge_worth(o, cfg, hv, pos)
    action, key, why_action = _action(pos, cfg, hedge, cap, sc, stop, worth, hv.texts)
    moves = worth[0] or abs(hedge - pos.hedge_ratio) < cfg.no_trade_band - 1e-12
    hedge_bound = o.hedge_bound if moves else "held"
    reasons = [
        hv.reason,
        f"{o.instrument_why}; hedge notional {hedge * min(pos.notional, sc) * beta:,.0f}",
        f"leverage cap {cap:.2f}x, set by {lev_bound}: {o.leverage_note}"
        f"{caps['liquidation']:.2f}x with the {p.symbol} margin tier of "
        f"{pos.notional:,.0f} notional; exchange tier max {caps['exchange_tier']:g}x",
        f"size cap {sc:,.0f} notional, set by {size_bound}: {hv.size_note} {equity:,.0f} at "
        f"{sizes['risk_budget']:,.0f}; the leverage cap allows "
        f"{sizes['leverage_cap']:,.0f} on that equity",
        f"liquidation price {lp:.6g} at the current {pos.leverage:g}x "
        f"({dist:.1%} from mark, {backing})",
        stop.reason,
        why_action,
    ]
    return {
        "symbol": p.symbol, "action": action, "hedge_ratio": hedge,
        "current_hedge_ratio": pos.hedge_ratio, "hedge_instrument": o.instrument,
        "hedge_beta": beta, "hedge_effectiveness": r2,
        "hedge_notional": hedge * min(pos.notional, sc) * beta, "leverage_cap": cap,
        "leverage_caps": {n: caps[n] for n in LEVERAGE_LIMITS if n in caps},
        "size_cap_notional": sc, "required_liquidation_distance": caps["required_distance"],
        "liquidation_price": lp, "liquidation_distance": dist, "risk_score": o.score,
        "fail_safe": False, "reasons": reasons, "max_loss": stop.max_loss,
        "stop_price": stop.price, "stop_distance": stop.distance,
        "loss_per_notional": hv.loss_per_notional,
        "binding": {"hedge": hedge_bound, "leverage": lev_bound, "size": size_bound,
                    "stop": stop.bound, "action": key}}


def decide(inputs: PolicyInputs, config: PolicyConfig,
           monitor_reasons: Sequence[str] = ()) -> Decision:
    """The hedge/leverage decision for one position; see docs/policy.md for the formulas.

    ``monitor_reasons`` are the monitor's reasons to distrust the inputs (drifted, missing or
    stale features): ``decide`` judges the forecast it is given and cannot see them. With any,
    the answer is the fail-safe, the policy's own problems named first, the monitor's after
    (``FAIL-SAFE: monitor: input fng_z_30d (sentiment) has drifted: ...``).
    """
    if monitor_reasons:
        return fail_safe(inputs, config, [*data_problems(inputs, config),
                                          *(f"monitor: {r}" for r in monitor_reasons)])
    return decide_position(plan_inputs(inputs, config), inputs.position, inputs.equity,
                           model_available=inputs.model_available, freshness=inputs.freshness)
