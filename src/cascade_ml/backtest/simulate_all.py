"""Run every configured strategy on the same aligned data and compute their metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import BacktestData
from cascade_ml.backtest.engine import Market, SimResult, simulate_on, single_market
from cascade_ml.backtest.metrics import capture, summarize
from cascade_ml.backtest.strategies import (
    MATCHED,
    POLICY_FEEDS,
    SIZED,
    Plan,
    policy_targets,
    strategy_plan,
    with_static_hedge,
    without_hedge,
)
from cascade_ml.contracts.task import Side
from cascade_ml.errors import ConfigError
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.trading.config import TradingConfig

log = logging.getLogger(__name__)


@dataclass
class StrategyRun:
    name: str
    result: SimResult
    metrics: dict[str, float]
    plan: Plan | None = None
    capped: np.ndarray | None = None  # equity of its capped-unhedged benchmark


def _ratio(a: float, b: float) -> float:
    return a / b if np.isfinite(a) and np.isfinite(b) and b != 0 else float("nan")


def run_metrics(r: SimResult, base_equity: np.ndarray, sl: slice = slice(None),
                capped: np.ndarray | None = None) -> dict:
    """Metrics of one simulated strategy over the bars ``sl``: capture against ``base`` (the
    full-size unhedged bot) and, given ``capped`` (the same size-capped position without its
    hedge, :func:`~cascade_ml.backtest.strategies.without_hedge`), capture and vol ratio against
    it, which measure the hedge alone."""
    eq = r.equity[sl]
    m = summarize(eq)
    up, down = capture(eq, base_equity[sl])
    mean_equity = float(np.mean(eq))
    lo, hi, _ = sl.indices(len(r.equity))
    inside = lambda bars: float(sum(lo < b < hi for b in bars))  # noqa: E731
    m.update({"upside_capture": up, "downside_capture": down,
              "capture_ratio": _ratio(up, down),
              "liquidations": inside(r.liquidation_bars), "stops": inside(r.stop_bars)})
    if capped is not None:
        cup, cdown = capture(eq, capped[sl])
        m.update({"upside_capture_capped": cup, "downside_capture_capped": cdown,
                  "capture_ratio_capped": _ratio(cup, cdown),
                  "vol_ratio_capped": _ratio(m["ann_vol"], summarize(capped[sl])["ann_vol"])})
    if sl == slice(None) or r.cum_costs is None:
        fees, funding, traded = r.fees, r.funding, r.traded_notional
    else:  # costs accrued inside the slice (the first bar is the slice's base)
        c = r.cum_costs[:, sl]
        fees, funding, traded = (float(c[k, -1] - c[k, 0]) for k in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        exposure = r.notional[sl] / eq if r.notional is not None else np.full(len(eq), np.nan)
    m.update({"fees_paid": fees, "funding_paid": funding, "turnover": traded / mean_equity,
              "mean_leverage": float(np.mean(r.leverage[sl])),
              "mean_hedge": float(np.mean(r.hedge[sl])),
              "mean_exposure": float(np.nanmean(exposure)) if np.isfinite(exposure).any()
              else float("nan"),
              "proxy_share": float(np.mean(r.instrument[sl] > 0))
              if r.instrument is not None else 0.0})
    if sl == slice(None):
        m["trades"] = float(r.trades)
    return m


def mean_size(r: SimResult) -> tuple[float, float]:
    """A policy run's mean leverage and mean hedge ratio over every bar (the held hedge, 0 while
    flat): what its equal-cost static (:data:`~cascade_ml.backtest.strategies.MATCHED`), in a
    position on every bar, holds."""
    return float(np.mean(r.leverage)), float(np.mean(r.hedge))


def mean_held_hedge(r: SimResult) -> float:
    """A policy run's mean hedge ratio over the bars it holds a position (0 if none): what its
    same-size static (:data:`~cascade_ml.backtest.strategies.SIZED`) holds. That static is
    flat where the policy's plan is (fail-safe bars before the first forecast, stops), so the
    mean over every bar (:func:`mean_size`, which counts flat bars as 0) would hedge it less
    than the policy wherever both hold a position; over the held bars both average the same
    hedge, and a policy whose hedge never moves gives its static exactly."""
    held = r.notional > 0 if r.notional is not None else r.leverage > 0
    h = r.hedge[held]
    if not len(h):
        return 0.0
    # a hedge that never moved is its own mean (a float mean of n equal values can be an ulp off)
    return float(h[0]) if h.min() == h.max() else float(np.mean(h))


def _market(data: BacktestData, tiers, proxies) -> Market:
    """The perp (and its proxies) as the engine's market, built once for many strategies."""
    return single_market(data.open, data.high, data.low, data.close, data.funding_rate, tiers,
                         proxies)


def _simulate(plan: Plan, market: Market, trading: TradingConfig, policy: PolicyConfig,
              side: Side) -> SimResult:
    return simulate_on(
        market, plan.target_leverage, plan.target_hedge, plan.sigma_h, plan.cascade_prob,
        side=side, policy=policy, initial_equity=trading.initial_equity,
        margin_fraction=trading.margin_fraction, leverage_tolerance=trading.leverage_tolerance,
        stop_cooldown=trading.stop_cooldown_bars, **plan.engine)


def run_strategies(data: BacktestData, bt: BacktestConfig, policy: PolicyConfig,
                   symbol: str, side: Side, *, trading: TradingConfig
                   ) -> dict[str, StrategyRun]:
    """Simulate each strategy and add capture ratios against the unhedged one.

    ``static_matched`` holds the model policy's *average* leverage and hedge ratio fixed (the
    same average size and cost, no forecasts), so it runs after ``model_policy``; each
    ``static_matched_<feed>`` does the same for its feed's policy (``strategies.MATCHED``).
    ``static_sized`` / ``static_sized_<feed>`` (``strategies.SIZED``) run the feed policy's own
    plan with its hedge held at its mean over the bars it holds a position
    (:func:`mean_held_hedge`): the same main leg.
    Strategies whose inputs are missing (e.g. no HAR column) are left out with a warning. With
    ``capped_unhedged`` among the strategies, each policy row (and each ``static_sized*`` row,
    on its feed's main leg) is also measured against its own feed's position without the hedge
    (the model feed's is the ``capped_unhedged`` row; the other feeds' are simulated for the
    measure only), every other row against the model's.
    """
    tiers = policy.tiers_for(symbol)
    notional = trading.nominal_notional()
    proxies = data.proxies if bt.proxy_hedges else None
    market = _market(data, tiers, proxies)
    statics = {**MATCHED, **SIZED}  # static benchmark -> the policy whose run it reads
    names = list(dict.fromkeys(["unhedged", *bt.strategies]))
    for name in [n for n in names if n in statics]:
        if statics[name] not in names:
            names.insert(names.index(name), statics[name])
    # capped_unhedged is the model policy's plan without its hedge: after model_policy, it
    # reuses that plan's decisions instead of computing them again; each static after its own
    # feed's policy (a same-size static reuses that policy's plan too)
    names.sort(key=lambda n: (n in statics, n == "capped_unhedged"))
    results: dict[str, tuple[SimResult, Plan]] = {}
    for name in names:
        matched = None
        if name in statics and statics[name] not in results:
            log.warning("%s: %s left out, so is its static hedge", name, statics[name])
            continue
        if name in MATCHED:
            matched = mean_size(results[MATCHED[name]][0])
        if name == "capped_unhedged" and "model_policy" in results:
            plan = without_hedge(results["model_policy"][1])
        elif name in SIZED:
            feed_run, feed_plan = results[SIZED[name]]
            plan = with_static_hedge(feed_plan, mean_held_hedge(feed_run),
                                     policy.same_perp_effectiveness)
        else:
            plan = strategy_plan(name, data.signals, bt, trading, policy, tiers, notional,
                                 side, feeds=data.feeds,
                                 trailing_vol_annual=data.trailing_vol_annual, cross=data.cross,
                                 proxies=proxies is not None, matched=matched)
        if plan is None:
            log.warning("%s: inputs missing (no %s forecasts in the OOS table); left out",
                        name, name.removesuffix("_policy"))
            continue
        results[name] = (_simulate(plan, market, trading, policy, side), plan)
    base = results["unhedged"][0].equity
    capped: dict[str, np.ndarray] = {}
    if "capped_unhedged" in results:
        capped["model_policy"] = results["capped_unhedged"][0].equity
        for name in POLICY_FEEDS:
            if name in results and name not in capped:
                capped[name] = _simulate(without_hedge(results[name][1]), market, trading,
                                         policy, side).equity
    default = capped.get("model_policy")
    out = {}
    for name in bt.strategies:
        if name in results:
            c = capped.get(SIZED.get(name, name), default)
            out[name] = StrategyRun(name, results[name][0],
                                    run_metrics(results[name][0], base, capped=c),
                                    results[name][1], c)
    return out


def model_policy_paths(data: BacktestData, trading: TradingConfig, policy: PolicyConfig,
                       symbol: str, side: Side) -> dict[str, np.ndarray]:
    """The policy's hedge ratio and leverage cap per bar (for the plots)."""
    return policy_targets(data.signals, side, trading.nominal_notional(),
                          policy.tiers_for(symbol), policy,
                          trailing_vol_annual=data.trailing_vol_annual, cross=data.cross)


def variant_policies(policy: PolicyConfig, variants: list[dict]
                     ) -> list[tuple[str, PolicyConfig]]:
    """(label, policy) of each frontier variant: the policy section with the variant's fields
    overridden and validated again; a bad variant is a ConfigError naming it."""
    out = []
    for k, variant in enumerate(variants):
        try:
            cfg = PolicyConfig.model_validate({**policy.model_dump(), **variant})
        except ValidationError as exc:
            msg = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'policy'}: {e['msg']}"
                            for e in exc.errors())
            raise ConfigError(f"variant {variant} is not a valid policy ({msg})",
                              f"backtest.frontier.variants[{k}]") from exc
        label = ", ".join(f"{key}={v}" for key, v in variant.items()) or "as configured"
        out.append((label, cfg))
    return out


def frontier_points(data: BacktestData, bt: BacktestConfig, policy: PolicyConfig, symbol: str,
                    side: Side, *, trading: TradingConfig, runs: dict[str, StrategyRun]
                    ) -> list[dict]:
    """One perp's frontier points (:mod:`cascade_ml.backtest.frontier`): the static hedges at
    ``backtest.frontier.static_ratios`` held at the model policy's mean leverage (the size of
    ``static_matched``), and the policy fed by each of ``frontier.feeds`` under each variant
    (the configured policy's runs are reused)."""
    from cascade_ml.backtest.frontier import point

    fc = bt.frontier
    tiers = policy.tiers_for(symbol)
    notional = trading.nominal_notional()
    proxies = data.proxies if bt.proxy_hedges else None
    market = _market(data, tiers, proxies)
    ref = runs.get("model_policy") or runs.get("static_matched")
    lev = float(np.mean(ref.result.leverage)) if ref is not None else trading.leverage

    def coords(r: SimResult) -> dict:
        return point(r.equity, data.close, r.hedge, r.notional, r.fees, r.funding,
                     liquidations=len(r.liquidation_bars), side=side)

    points = []
    for h in fc.static_ratios:
        plan = strategy_plan("static_matched", data.signals, bt, trading, policy, tiers,
                             notional, side, matched=(lev, h))
        res = _simulate(plan, market, trading, policy, side)
        points.append({"kind": "static", "feed": None, "label": f"static {h:.0%}", "ratio": h,
                       "leverage": lev, **coords(res)})
    for (label, cfg), variant in zip(variant_policies(policy, fc.variants), fc.variants,
                                     strict=True):
        for feed in fc.feeds:
            name = f"{feed}_policy"
            if not variant and name in runs:
                res = runs[name].result
            else:
                plan = strategy_plan(name, data.signals, bt, trading, cfg, tiers, notional,
                                     side, feeds=data.feeds,
                                     trailing_vol_annual=data.trailing_vol_annual,
                                     cross=data.cross, proxies=proxies is not None)
                if plan is None:
                    continue
                res = _simulate(plan, market, trading, cfg, side)
            points.append({"kind": "policy", "feed": feed, "label": label,
                           "variant": dict(variant), **coords(res)})
    return points
