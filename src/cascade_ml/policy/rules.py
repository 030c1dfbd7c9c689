"""The policy's formulas as pure functions of scalars or numpy arrays.

``decide`` calls them on one row; the backtest calls them on whole columns, so both share one
implementation. Each formula is written once with operators and the helpers of
:mod:`cascade_ml.policy.numeric`, which use numpy for arrays and plain Python for single numbers
(so one decision does not pay numpy's per-call overhead). Every map is monotone: more forecast vol
or cascade probability never lowers the hedge ratio and never raises the leverage cap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

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
    """Band bottom + band width x risk score + trigger bump, clipped to the band (the
    ``score`` rule)."""
    score = risk_score(sigma_h, horizon_hours, prob, cfg, reference)
    raw = cfg.hedge_min + (cfg.hedge_max - cfg.hedge_min) * score + trigger_bump(n_fired, cfg)
    return out(clip(raw, cfg.hedge_min, cfg.hedge_max))


# ------------------------------------------------------------- the objective (hedge_rule)
# The hedged position's next-H return is r = (1 - h R^2) x - h f: x the position's own return,
# f the funding the hedge leg pays. Everything is measured in units of the perp's reference vol
# over H (s_ref, its own trailing realised vol), so the rule reads a forecast *relative* to the
# perp's history and works for any perp. x has vol rho = sigma_H / s_ref, drift theta (the
# bot's expected Sharpe over H) and, with probability p, a cascade jump of J = jump_sigmas x rho
# against the position; the base rate p0 is already in the drift, only p - p0 > 0 lowers it:
#   m = theta - max(p - p0, 0) J,   v = rho^2 + q (1 - q) J^2 with q = min(p, 1/2)
# (the Bernoulli variance held at its peak past 1/2: a surer cascade is never less risky).
# Utility U(h) = e m - gamma/2 e^2 v - h f, e = 1 - h R^2; a move of the hedge by dh costs
# c |dh| with c = 2 x trade cost x beta / (s_ref x holding_horizons): the fee and half spread of
# the move and of the move back (a round trip), spread over the horizons the hedge is held.
# The interior optimum is e* = max(m + f / R^2, 0) / (gamma v), h* = (1 - e*) / R^2, clipped
# to the band; e* never rises with rho or p, so h* never falls (docs/policy.md proves it).

ROUND_TRIP = 2.0
"""Trades a hedge change costs in the objective: the move, and the move back when the risk it
answers has passed."""


def smooth_log_vol(sigma_h: np.ndarray, halflife_bars: float) -> np.ndarray:
    """EWMA of the log-vol forecast with half-life ``halflife_bars`` (0: the forecast as it is),
    back to a vol: the bar-to-bar noise of a forecast averaged out over the holding time. Each
    output is a weighted geometric mean of the forecasts up to its bar with positive weights, so
    it never falls when any input rises (monotone in risk) and reads nothing after its bar.
    Missing or non-positive forecasts pass through unsmoothed and do not enter the average."""
    s = np.asarray(sigma_h, dtype=float)
    if halflife_bars <= 0 or not len(s):
        return s.copy()
    a = 1.0 - 0.5 ** (1.0 / halflife_bars)
    ok = np.isfinite(s) & (s > 0)
    smoothed = s.copy()
    logs = np.log(np.where(ok, s, 1.0)).tolist()
    level = math.nan
    for i in np.flatnonzero(ok).tolist():
        level = logs[i] if level != level else level + a * (logs[i] - level)
        smoothed[i] = math.exp(level)
    return smoothed


def reference_sigma_h(reference_annual: ArrayLike, horizon_hours: ArrayLike) -> ArrayLike:
    """The reference vol over H: the annual reference scaled down by the square-root rule."""
    return out(asnum(reference_annual) * sqrt(div(asnum(horizon_hours), HOURS_PER_YEAR)))


def objective_terms(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike,
                    cfg: PolicyConfig, reference: ArrayLike | None = None,
                    r2: ArrayLike = 1.0, trade_scale: ArrayLike = 1.0
                    ) -> dict[str, ArrayLike]:
    """The objective's parts, in reference-vol units over H: ``rho`` (forecast vol over the
    reference), ``jump``, ``mean`` m, ``var`` v, ``carry`` f (funding paid per unit of hedge),
    ``cost`` c (per unit of hedge traded: the round trip over the holding time), ``r2``,
    ``e_star`` and ``h_free`` (the unclipped optimum) and ``hedge`` (clipped to the band)."""
    ref = cfg.vol_reference_annual if reference is None else asnum(reference)
    s_ref = reference_sigma_h(ref, horizon_hours)
    rho = div(asnum(sigma_h), s_ref)
    p = asnum(prob)
    jump = cfg.jump_sigmas * rho
    theta = cfg.expected_sharpe * sqrt(div(asnum(horizon_hours), HOURS_PER_YEAR))
    mean = theta - maximum(p - cfg.cascade_prob_base, 0.0) * jump
    q = minimum(p, 0.5)
    var = rho * rho + q * (1 - q) * jump * jump
    carry = div(cfg.hedge_funding_8h * asnum(horizon_hours) / 8.0, s_ref)
    cost = div(ROUND_TRIP * cfg.trade_cost * asnum(trade_scale),
               s_ref * cfg.holding_horizons)
    r = asnum(r2)
    e_star = div(maximum(mean + div(carry, r), 0.0), cfg.risk_aversion * var)
    h_free = div(1.0 - e_star, r)
    clipped = out(clip(h_free, cfg.hedge_min, cfg.hedge_max))
    return {"rho": out(rho), "jump": out(jump), "mean": out(mean), "var": out(var),
            "carry": out(carry), "cost": out(cost), "r2": out(r), "e_star": out(e_star),
            "h_free": out(h_free), "hedge_objective": clipped,
            "hedge": shrink_to_static(clipped, cfg)}


# ------------------------------------------------ shrinkage toward a static hedge
# A forecast whose noise, turned into trades, costs more than its information is worth should
# fall back toward a static hedge, as a forecast that cannot beat HAR falls back to it. With
# w = objective_weight and s = the static ratio (fixed in advance), the target is
#   h_w = s + w (h - s)   (h: the objective's band-clipped hedge),
# a convex combination of two ratios in the band, so it stays in the band and rises with h
# (monotone in risk for any w >= 0). It is the maximiser, over the band shrunk toward s by w,
# of U_w(h) = w^2 U(s + (h - s) / w) (U_w(h) = -A/2 (h - s)^2 at w = 0): the objective's
# utility with its curvature A = gamma v R^4 kept and its vertex shrunk toward s by w. The
# hold rule judges a move by U_w's gain, so the shrunk hedge is held and moved by the same
# fee-aware test as the objective's (at w = 1, U_w is U and every number is today's).


def shrink_to_static(hedge: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """``static + w (hedge - static)`` (w = ``objective_weight``, static =
    ``cfg.static_ratio``), held inside the band: w = 1 returns ``hedge`` unchanged, w = 0 the
    static ratio exactly."""
    w = cfg.objective_weight
    if w == 1.0:
        return hedge
    h = asnum(hedge)
    return out(clip(w * h + (1.0 - w) * cfg.static_ratio, cfg.hedge_min, cfg.hedge_max))


def shrunk_gain(target: ArrayLike, current: ArrayLike, terms: dict[str, ArrayLike],
                cfg: PolicyConfig) -> ArrayLike:
    """U_w(target) - U_w(current) (see above), in closed form: with U(h) = U0 + U1 h - A/2 h^2
    (U1 = gamma v R^2 - R^2 m - f, A = gamma v R^4) and k = (1 - w) s,
    U_w(h) = w^2 U0 + w U1 (h - k) - A/2 (h - k)^2. At w = 1 it is the objective's own gain
    (:func:`hedge_utility`), bit for bit."""
    w = cfg.objective_weight
    if w == 1.0:
        return out(hedge_utility(target, terms, cfg) - hedge_utility(current, terms, cfg))
    r, m, v = asnum(terms["r2"]), asnum(terms["mean"]), asnum(terms["var"])
    gv = cfg.risk_aversion * v
    slope = gv * r - r * m - asnum(terms["carry"])
    curvature = gv * r * r
    t, c = asnum(target), asnum(current)
    k = (1.0 - w) * cfg.static_ratio
    return out((t - c) * (w * slope - 0.5 * curvature * (t + c - 2.0 * k)))


def hedge_utility(hedge: ArrayLike, terms: dict[str, ArrayLike], cfg: PolicyConfig
                  ) -> ArrayLike:
    """U(h) = e m - gamma/2 e^2 v - h f (e = 1 - h R^2), before trading costs."""
    h = asnum(hedge)
    e = 1.0 - h * asnum(terms["r2"])
    return out(e * asnum(terms["mean"]) - 0.5 * cfg.risk_aversion * e * e * asnum(terms["var"])
               - h * asnum(terms["carry"]))


def hedge_trade_cost(target: ArrayLike, current: ArrayLike, notional: ArrayLike,
                     trade_scale: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """Quote cost of moving the hedge from ``current`` to ``target`` on ``notional``: the hedge
    notional traded (x ``trade_scale``, the beta of a proxy) times fee plus half spread, what the
    trading core books for the same trade."""
    return out(abs(asnum(target) - asnum(current)) * asnum(notional) * asnum(trade_scale)
               * cfg.trade_cost)


def objective_move(target: ArrayLike, current: ArrayLike, terms: dict[str, ArrayLike],
                   cfg: PolicyConfig) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """(worth_it, gain, cost) of moving the hedge from ``current`` to ``target``, in
    reference-vol units per unit notional: the change is at least the no-trade band, and the
    utility gained (:func:`shrunk_gain`: the objective's, or its shrunk form) beats the
    round-trip trading cost spread over the holding time, or the held hedge lies outside
    the band (a constraint: it moves whatever the cost)."""
    gain = shrunk_gain(target, current, terms, cfg)
    c = asnum(current)
    change = abs(asnum(target) - c)
    cost = change * asnum(terms["cost"])
    outside = (c < cfg.hedge_min - 1e-9) | (c > cfg.hedge_max + 1e-9)
    worth = (change >= cfg.no_trade_band - 1e-12) & ((gain >= cost) | outside)
    return out_bool(worth), out(gain), out(cost)


def target_hedge(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike,
                 n_fired: ArrayLike, cfg: PolicyConfig, reference: ArrayLike | None = None,
                 r2: ArrayLike = 1.0, trade_scale: ArrayLike = 1.0) -> ArrayLike:
    """The hedge target of ``cfg.hedge_rule``: the objective's clipped optimum, or the score
    map (``n_fired`` counts only there)."""
    if cfg.hedge_rule == "score":
        return hedge_ratio(sigma_h, horizon_hours, prob, n_fired, cfg, reference)
    return objective_terms(sigma_h, horizon_hours, prob, cfg, reference, r2,
                           trade_scale)["hedge"]


def hedge_path(target: Sequence[float], gain_ok: Callable[[int, float, float], bool],
               start: float | None = None,
               moves: Callable[[int, int, float], np.ndarray] | None = None,
               scalar_bars: int = 64, first_block: int = 64) -> list[float]:
    """The hedge held bar after bar: it moves to the bar's target only where
    ``gain_ok(i, target, held)`` says the move pays, else keeps the hedge already held (the
    first bar takes its target, or moves from ``start``).

    ``moves(a, b, held)``, when given, answers the same test for a block of bars [a, b) at once
    (numpy, the same float operations): a held hedge often stays for hundreds of bars, so after
    ``scalar_bars`` bars without a move the path asks for blocks that double while nothing
    moves; after a move it goes back to bar by bar (where moves come often, blocks would not
    pay). The path is the same either way."""
    t = target.tolist() if isinstance(target, np.ndarray) else list(target)
    arr = None if moves is None else np.asarray(target, dtype=float)
    n = len(t)
    held = t[0] if start is None else start
    path: list[float] = []
    i = quiet = 0
    while i < n:
        if arr is None or moves is None or quiet < scalar_bars:
            x = t[i]
            if x != held and gain_ok(i, x, held):
                held, quiet = x, -1
            path.append(held)
            i, quiet = i + 1, quiet + 1
            continue
        block = first_block
        while i < n:
            j = min(n, i + block)
            hit = np.flatnonzero((arr[i:j] != held) & moves(i, j, held))
            k = i + int(hit[0]) if len(hit) else j
            path.extend([held] * (k - i))
            if k < j:
                held = t[k]
                path.append(held)
                i, quiet = k + 1, 0
                break
            i, block = j, 2 * block
    return path


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


def risk_leverage_cap(hedge: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """The objective rule's leverage cap: the ceiling (at most ``max_leverage``) at the bottom of
    the hedge band, falling linearly to ``min_leverage`` at its top, so the risk reading that
    raises the hedge lowers the cap (3-5x with the defaults)."""
    top = cfg.leverage_ceiling
    low = minimum(cfg.min_leverage, top)
    width = cfg.hedge_max - cfg.hedge_min
    share = clip(div(asnum(hedge) - cfg.hedge_min, width), 0.0, 1.0) if width > 0 else 0.0
    return out(top - (top - low) * share)


def forecast_leverage_limits(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike,
                             cfg: PolicyConfig, vol_q99: ArrayLike | None = None,
                             hedge: ArrayLike | None = None) -> dict[str, ArrayLike]:
    """The leverage limits the forecast sets whatever the position: the ceiling, the risk cap
    (the ``objective`` rule, from the objective's ``hedge``) or the vol-target cap (the
    ``score`` rule), and the liquidation distance to keep (``required_distance``)."""
    if cfg.hedge_rule == "objective":
        h = cfg.hedge_max if hedge is None else hedge
        middle = {"risk": risk_leverage_cap(h, cfg)}
    else:
        middle = {"vol_target": vol_target_cap(sigma_h, horizon_hours, cfg)}
    return {"ceiling": cfg.leverage_ceiling, **middle,
            "required_distance": required_distance(sigma_h, prob, cfg, vol_q99)}


def position_leverage_caps(limits: dict[str, ArrayLike], side: Side, notional: ArrayLike,
                           tiers: Sequence[MarginTier]) -> dict[str, ArrayLike]:
    """Each leverage limit for a position of ``notional`` under the forecast's ``limits``
    (:func:`forecast_leverage_limits`), and their minimum under ``cap``."""
    distance = limits["required_distance"]
    mmr, exchange_max, cum = tier_params(notional, tiers)
    parts = {name: v for name, v in limits.items() if name != "required_distance"}
    parts["liquidation"] = max_leverage_in_bracket(side, distance, notional, mmr, cum)
    parts["exchange_tier"] = exchange_max
    # each part is already a float or an array (the rules' results, a config float)
    cap: ArrayLike = parts["ceiling"]
    for name, v in parts.items():
        if name != "ceiling":
            cap = minimum(cap, v)
    return {**parts, "cap": out(cap), "required_distance": distance}


def leverage_caps(sigma_h: ArrayLike, horizon_hours: ArrayLike, prob: ArrayLike, side: Side,
                  notional: ArrayLike, tiers: Sequence[MarginTier], cfg: PolicyConfig,
                  vol_q99: ArrayLike | None = None, hedge: ArrayLike | None = None
                  ) -> dict[str, ArrayLike]:
    """Each leverage limit and their minimum under ``cap`` (``hedge``: the objective's hedge
    target, which sets the risk cap; None: the top of the band)."""
    limits = forecast_leverage_limits(sigma_h, horizon_hours, prob, cfg, vol_q99, hedge)
    return position_leverage_caps(limits, side, notional, tiers)


INSTRUMENTS = ("same_perp", "BTC", "ETH")
"""Hedge instruments by code: 0 the same perp, 1 the BTC perp, 2 the ETH perp."""


def hedge_instrument(beta_btc: ArrayLike, r2_btc: ArrayLike, beta_eth: ArrayLike,
                     r2_eth: ArrayLike, cfg: PolicyConfig
                     ) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """(code, beta, R^2) of the hedge: the same perp, unless the BTC or ETH perp qualifies
    (:func:`proxy_qualifies`) with a higher R^2 than the best so far (NaN: unknown)."""
    code, beta, r2 = 0.0, 1.0, cfg.same_perp_effectiveness
    for k, (b, r) in enumerate(((beta_btc, r2_btc), (beta_eth, r2_eth)), start=1):
        b, r = asnum(b), asnum(r)
        ok = proxy_qualifies(b, r, cfg) & (r > r2)
        code, beta, r2 = where(ok, float(k), code), where(ok, b, beta), where(ok, r, r2)
    return out(code), out(beta), out(r2)


def proxy_qualifies(beta: ArrayLike, r2: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """Whether a BTC/ETH proxy may carry the hedge: a positive beta, R^2 >=
    ``min_cross_hedge_r2`` and above the same perp's ``same_perp_effectiveness`` (NaN: no).
    A proxy hedge held where its proxy no longer qualifies is moved to the decided instrument
    even inside the no-trade band (``trading.core.instrument_switch``)."""
    b, r = asnum(beta), asnum(r2)
    return out_bool(isfinite(b) & isfinite(r) & (b > 0) & (r >= cfg.min_cross_hedge_r2)
                    & (r > cfg.same_perp_effectiveness))


def net_exposure(hedge: ArrayLike, r2: ArrayLike) -> ArrayLike:
    """Share of a move of the position's own price that the hedged position loses: 1 - h R^2.

    Same perp (R^2 = 1): 1 - h exactly. Proxy hedge with beta = Cov/Var: the proxy moves
    beta R^2-weighted with the perp on average, so the hedge offsets h R^2 of the move.
    """
    return out(1.0 - asnum(hedge) * asnum(r2))


def adverse_move(sigma_size: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """The tail move the 2 % rule is sized on: ``size_k_sigma`` sigmas over the horizon
    (fraction of price); ``sigma_size`` is the perp's reference vol over H
    (:func:`reference_sigma_h`), so the size does not churn with every forecast."""
    return out(cfg.size_k_sigma * asnum(sigma_size))


def residual_fraction(hedge: ArrayLike, r2: ArrayLike) -> ArrayLike:
    """Share of the position's return vol left after hedging ``hedge`` with effectiveness R^2.

    Var(r_a - h beta r_b) / Var(r_a) = 1 - 2 h R^2 + h^2 R^2 for a beta-weighted hedge; equals
    (1 - h)^2 for the same perp (R^2 = 1).
    """
    h = asnum(hedge)
    r = asnum(r2)
    return out(sqrt(maximum(1 - 2 * h * r + h * h * r, 0.0)))


def loss_per_notional(sigma_size: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """What one unit of notional loses on the tail move *before* the hedge: the 2 % rule sizes
    the main leg as if unhedged, so the hedge lowers the risk actually run instead of buying a
    bigger main leg (with a hedged basis the net exposure, f x equity / move, would not depend
    on the hedge at all)."""
    return adverse_move(sigma_size, cfg)


def size_cap(equity: ArrayLike, sigma_size: ArrayLike, cfg: PolicyConfig) -> ArrayLike:
    """Risk-budget size cap: the notional that loses at most ``max_risk_fraction`` of equity on
    the tail move, unhedged."""
    return risk_budget_cap(equity, loss_per_notional(sigma_size, cfg), cfg)


def risk_budget_cap(equity: ArrayLike, loss_per_notional: ArrayLike,
                    cfg: PolicyConfig) -> ArrayLike:
    """:func:`size_cap` from the loss per unit notional (:func:`loss_per_notional`)."""
    return out(div(cfg.max_risk_fraction * asnum(equity), asnum(loss_per_notional)))


def size_caps(equity: ArrayLike, sigma_size: ArrayLike, leverage_cap: ArrayLike,
              cfg: PolicyConfig) -> dict[str, ArrayLike]:
    """Each size limit and their minimum under ``cap``: the risk budget, and what the leverage
    cap allows with the whole equity as margin (so the two caps never disagree)."""
    return size_limits(equity, loss_per_notional(sigma_size, cfg), leverage_cap, cfg)


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
                   cfg: PolicyConfig, sigma_size: ArrayLike | None = None
                   ) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """(worth_it, benefit, cost) of moving the hedge ratio from ``current`` to ``target`` (the
    trading core's test).

    ``objective`` rule: the policy's hedge already moves only when the objective's gain beats
    the amortised cost (:func:`objective_move`, applied by ``decide`` and along the backtest's
    hedge path), so here only the no-trade band applies (benefit NaN). ``score`` rule: benefit
    = change of the tail loss on ``sigma_size`` (the adverse move; ``sigma_h`` when None)
    weighted by :func:`tail_weight`; cost = hedge notional traded (x ``trade_scale``, the beta
    of a proxy) times fee plus half spread; worth it when the change is at least the no-trade
    band and the benefit beats the cost ``benefit_cost_multiple`` times.
    """
    if cfg.hedge_rule == "objective":
        change = abs(asnum(target) - asnum(current))
        cost = hedge_trade_cost(target, current, notional, trade_scale, cfg)
        nan = change * float("nan")
        return out_bool(change >= cfg.no_trade_band - 1e-12), out(nan), cost
    return rebalance_check(target, current, notional, r2, trade_scale,
                           adverse_move(sigma_h if sigma_size is None else sigma_size, cfg),
                           tail_weight(prob, cfg), residual_fraction(target, r2), cfg)


def rebalance_check(target: ArrayLike, current: ArrayLike, notional: ArrayLike, r2: ArrayLike,
                    trade_scale: ArrayLike, adverse: ArrayLike, weight: ArrayLike,
                    target_residual: ArrayLike, cfg: PolicyConfig
                    ) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """The ``score`` rule's :func:`rebalance_test` from what does not depend on the position,
    computed once: the :func:`adverse_move`, the :func:`tail_weight` and the target's
    :func:`residual_fraction`."""
    n = asnum(notional)
    benefit = asnum(weight) * (asnum(adverse) * n) * abs(
        residual_fraction(current, r2) - asnum(target_residual))
    change = abs(asnum(target) - asnum(current))
    cost = hedge_trade_cost(target, current, n, trade_scale, cfg)
    worth = (change >= cfg.no_trade_band - 1e-12) & (benefit >= cfg.benefit_cost_multiple * cost)
    return out_bool(worth), out(benefit), out(cost)
