"""Target leverage and hedge per bar for each strategy, from data known at that bar's close.

All strategies trade the same bars through the same engine, fees and no-trade band; only their
targets differ. NaN targets mean "no decision this bar" (the engine keeps the position).

The policy strategies are one policy fed by different forecasts (the ablation):
``model_policy`` (the models), ``har_policy`` (HAR-RV vol + climatological cascade probability),
``ewma_policy`` (EWMA vol + climatology) and ``oracle_policy`` (the realised future variance and
cascade label: the ceiling). They enforce the size cap and honour the protective stop when the
backtest section says so; the benchmarks (unhedged, static, vol targeting, rule triggers,
static_matched) hold their fixed size. Two unhedged benchmarks: ``unhedged`` is the bot's full
position (``trading.leverage``, no size cap), ``capped_unhedged`` the model policy's own
size-capped position with hedge 0 (what captures of the hedge alone are measured against).
Each policy feed has two static benchmarks: ``static_matched`` (:data:`MATCHED`) holds the
model-fed policy's mean leverage and hedge, ``static_matched_<feed>`` those of the other feeds;
``static_sized`` / ``static_sized_<feed>`` (:data:`SIZED`, :func:`with_static_hedge`) is the
feed's own policy plan (leverage targets, size cap, stop, fail-safe) with its hedge held at the
policy's mean hedge ratio over the bars it holds a position, so against it a feed's policy is
judged on its hedge alone, not on its sizing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cascade_ml.contracts.task import Side
from cascade_ml.policy import rules
from cascade_ml.policy.batch import HedgeHold, decide_columns_hold
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.trading.config import TradingConfig

POLICY_FEEDS = {"model_policy": "model", "har_policy": "har", "ewma_policy": "ewma",
                "oracle_policy": "oracle"}
"""Policy strategy -> the forecast feed it reads (BacktestData.feeds)."""
_SUFFIX = {"model_policy": "", "har_policy": "_har", "ewma_policy": "_ewma",
           "oracle_policy": "_oracle"}
"""Policy -> the suffix of its static benchmarks' names (the model feed's have none)."""
MATCHED = {f"static_matched{s}": p for p, s in _SUFFIX.items()}
"""Static hedge -> the policy whose mean leverage and hedge ratio it holds fixed: each feed's
policy is compared with a static hedge of its own average size and cost (``static_matched``
keeps its name: the model feed's)."""
SIZED = {f"static_sized{s}": p for p, s in _SUFFIX.items()}
"""Same-size static hedge -> the policy whose plan it follows with the hedge held at that
policy's mean hedge ratio over the bars it holds a position: the same main leg, bar by bar,
under a static hedge (:func:`with_static_hedge`)."""


_OWN_HEDGE = ("hedge_instrument", "hedge_beta", "hedge_ok", "hedge_hold")
"""Engine keywords about the policy's own hedge: dropped by a plan that holds another one."""


@dataclass
class Signals:
    """Per-bar inputs the strategies may use (aligned numpy arrays)."""

    sigma_h: np.ndarray        # forecast vol over the horizon (NaN where no OOS forecast)
    cascade_prob: np.ndarray   # forecast cascade probability (NaN where none)
    n_fired: np.ndarray        # number of rule triggers fired (0 where missing)
    horizon_hours: float
    vol_q99: np.ndarray | None = None


@dataclass
class Plan:
    """One strategy's per-bar targets, plus what the engine needs to apply them."""

    target_leverage: np.ndarray
    target_hedge: np.ndarray
    sigma_h: np.ndarray                 # read by the no-trade band's benefit test
    cascade_prob: np.ndarray
    engine: dict = field(default_factory=dict)  # extra keyword arguments of engine.simulate
    decisions: dict[str, np.ndarray] | None = None  # the policy's columns (policy strategies)


def policy_targets(sig: Signals, side: str, notional: float, tiers, cfg: PolicyConfig, *,
                   trailing_vol_annual: np.ndarray | None = None,
                   cross: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """``decide``'s answer for every bar at once (:func:`cascade_ml.policy.batch.decide_columns`:
    the same rules and the same fail-safe), on the feed's vol forecast smoothed over
    ``cfg.forecast_halflife_bars`` (:func:`rules.smooth_log_vol`; as it is with 0), which it
    returns as ``sigma_h`` (the live callers smooth the same way: ``forecasting.smoothing``)."""
    return policy_targets_hold(sig, side, notional, tiers, cfg,
                               trailing_vol_annual=trailing_vol_annual, cross=cross)[0]


def policy_targets_hold(sig: Signals, side: str, notional: float, tiers, cfg: PolicyConfig, *,
                        trailing_vol_annual: np.ndarray | None = None,
                        cross: dict[str, np.ndarray] | None = None
                        ) -> tuple[dict[str, np.ndarray], HedgeHold | None]:
    """:func:`policy_targets` and the hold rule a position opening from flat restarts from
    (:func:`cascade_ml.policy.batch.decide_columns_hold`)."""
    cross = cross or {}
    sigma = rules.smooth_log_vol(sig.sigma_h, cfg.forecast_halflife_bars)
    cols, hold = decide_columns_hold(sigma, sig.cascade_prob, sig.n_fired, sig.horizon_hours,
                                     side, notional, tiers, cfg, vol_q99=sig.vol_q99,
                                     trailing_vol_annual=trailing_vol_annual, **cross)
    return {**cols, "sigma_h": sigma}, hold


def feed_policy(cfg: PolicyConfig, bt, feed: str) -> PolicyConfig:
    """The policy the feed's strategy runs: ``cfg`` with the feed's own objective weight
    (``backtest.feed_objective_weight``) where one is set, validated again."""
    w = (getattr(bt, "feed_objective_weight", None) or {}).get(feed)
    if w is None or w == cfg.objective_weight:
        return cfg
    return PolicyConfig.model_validate({**cfg.model_dump(), "objective_weight": w})


def _fixed(lev: np.ndarray | float, hedge: np.ndarray | float, sig: Signals) -> Plan:
    n = len(sig.sigma_h)
    return Plan(np.broadcast_to(np.asarray(lev, dtype=float), (n,)).copy(),
                np.broadcast_to(np.asarray(hedge, dtype=float), (n,)).copy(),
                sig.sigma_h, sig.cascade_prob)


def policy_plan(sig: Signals, bt, trading: TradingConfig, cfg: PolicyConfig, tiers,
                notional: float, side: Side, *,
                trailing_vol_annual: np.ndarray | None = None,
                cross: dict[str, np.ndarray] | None = None, proxies: bool = False) -> Plan:
    """The policy's targets from one forecast feed, with its size cap, stop and fail-safe."""
    t, hold = policy_targets_hold(sig, side, notional, tiers, cfg,
                                  trailing_vol_annual=trailing_vol_annual,
                                  cross=cross if proxies else None)
    engine: dict = {"no_new_exposure": t["fail_safe"], "stops": bool(trading.stops),
                    "hedge_r2": t["r2"], "hedge_hold": hold}
    if bt.enforce_size_cap:
        engine["loss_per_notional"] = t["loss_per_notional"]
    if proxies:
        engine.update(hedge_instrument=t["instrument"], hedge_beta=t["beta"],
                      hedge_ok={1: t["ok_btc"], 2: t["ok_eth"]})  # by instrument code
    # the hedge a position following decide holds (it moves only where the move pays); the
    # engine restarts it from the bar's target where the position opens from flat (hedge_hold)
    return Plan(np.minimum(trading.leverage, t["cap"]), t["held"], sig.sigma_h, sig.cascade_prob,
                engine, t)


def without_hedge(plan: Plan) -> Plan:
    """The same size-capped position without its hedge: the plan's leverage targets, size cap
    (the hedged position's loss per notional, so the main leg is the same size), stop and
    fail-safe, with hedge 0 on every bar. Against it, captures measure the hedge alone."""
    engine = {k: v for k, v in plan.engine.items() if k not in _OWN_HEDGE}
    return Plan(plan.target_leverage, np.zeros_like(plan.target_hedge), plan.sigma_h,
                plan.cascade_prob, engine, plan.decisions)


def with_static_hedge(plan: Plan, hedge: float, same_perp_effectiveness: float) -> Plan:
    """The same size-capped position under a static hedge: the plan's leverage targets, size
    cap (its loss per notional does not read the hedge, so the main leg is the same size),
    stop and fail-safe, with the hedge held at ``hedge`` in the perp itself on every bar the
    plan decides (a NaN hedge target, no decision, stays NaN). A proxy instrument the plan may
    pick is dropped, its effectiveness with it: the hedge is the same perp's
    (``same_perp_effectiveness``, the R^2 the stop reads). Against it, a policy is judged on
    its hedge's timing alone."""
    engine = {k: v for k, v in plan.engine.items() if k not in _OWN_HEDGE}
    n = len(plan.target_hedge)
    engine["hedge_r2"] = np.full(n, float(same_perp_effectiveness))
    target = np.where(np.isnan(plan.target_hedge), np.nan, float(hedge))
    return Plan(plan.target_leverage, target, plan.sigma_h, plan.cascade_prob, engine,
                plan.decisions)


def strategy_plan(name: str, sig: Signals, bt, trading: TradingConfig, cfg: PolicyConfig,
                  tiers, notional: float, side: Side, *, feeds: dict[str, Signals] | None = None,
                  trailing_vol_annual: np.ndarray | None = None,
                  cross: dict[str, np.ndarray] | None = None, proxies: bool = False,
                  matched: tuple[float, float] | None = None) -> Plan | None:
    """The plan of one strategy (None when its inputs are missing, e.g. no HAR column).
    ``matched``: the (mean leverage, mean hedge) of the feed's policy run, which a
    :data:`MATCHED` static holds; a :data:`SIZED` static reads only the hedge, its mean over
    the bars the policy holds a position (None: they are left out)."""
    n = len(sig.sigma_h)
    if name == "unhedged":
        return _fixed(trading.leverage, 0.0, sig)
    if name == "static_hedge":
        return _fixed(trading.leverage, bt.static_hedge, sig)
    if name in MATCHED:
        return None if matched is None else _fixed(matched[0], matched[1], sig)
    if name == "vol_target":
        vt = np.asarray(rules.vol_target_cap(sig.sigma_h, sig.horizon_hours, cfg))
        vt = np.where(np.isfinite(sig.sigma_h) & (sig.sigma_h > 0), vt, np.nan)
        return _fixed(np.minimum(vt, min(trading.leverage, cfg.leverage_ceiling)), np.zeros(n),
                      sig)
    if name == "rule_triggers":
        return _fixed(trading.leverage,
                      np.where(sig.n_fired > 0, cfg.hedge_max, cfg.hedge_min), sig)
    if name in SIZED:
        if matched is None:  # no run of the feed's policy to read its mean hedge from
            return None
        plan = strategy_plan(SIZED[name], sig, bt, trading, cfg, tiers, notional, side,
                             feeds=feeds, trailing_vol_annual=trailing_vol_annual, cross=cross,
                             proxies=proxies)
        return (None if plan is None
                else with_static_hedge(plan, matched[1], cfg.same_perp_effectiveness))
    if name == "capped_unhedged":
        plan = strategy_plan("model_policy", sig, bt, trading, cfg, tiers, notional, side,
                             feeds=feeds, trailing_vol_annual=trailing_vol_annual, cross=cross,
                             proxies=proxies)
        return None if plan is None else without_hedge(plan)
    if name in POLICY_FEEDS:
        feed = (feeds or {"model": sig}).get(POLICY_FEEDS[name])
        if feed is None:
            return None
        return policy_plan(feed, bt, trading, feed_policy(cfg, bt, POLICY_FEEDS[name]),
                           tiers, notional, side,
                           trailing_vol_annual=trailing_vol_annual, cross=cross,
                           proxies=proxies)
    raise ValueError(f"unknown strategy {name!r}")
