"""The book: several perps on one account, each a position the policy hedges and sizes.

Every position is the bot's leveraged long (``task.side``) in one perp, hedged in the same perp
or, when the policy's instrument rule picks them, beta-weighted in the BTC or ETH perp, and
reads its own slice of the account: equity / positions (``trading.core.position_equity``,
re-read every bar; the slices sum to the account). Its isolated margin is ``margin_fraction``
of the slice, and the policy's size cap and stop put ``max_risk_fraction`` of the *slice* at
risk on the adverse move, so the book holds what that many single-perp accounts of one slice
each would (with the same rules: ``simulate_book`` is the single-perp engine), sharing their
free cash. (On the whole account instead, 21 positions put 21 x 2 % of it at risk on one
correlated tail move, and each one's leverage cap bound instead of its size cap, so the
model-fed main leg followed every move of the cap.) Funding is paid on every leg at its own
perp's rate. The book is simulated on the bars every symbol has out-of-sample forecasts for
(the intersection of their OOS spans).

Per position: P&L, return and drawdown on its allocation (initial equity / positions),
liquidations, stops, fees, funding, hedge and proxy use, and the basis risk of proxy hedges
(annualised vol of ``r_perp - beta r_proxy`` on the bars hedged by proxy, and the R^2 it
realised). Per strategy: the book's equity metrics, as for one perp.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import PROXIES, BacktestData, load, load_proxies
from cascade_ml.backtest.engine import BookResult, Market, PositionPlan, SimResult, simulate_book
from cascade_ml.backtest.metrics import HOURS_PER_YEAR, max_drawdown, summarize
from cascade_ml.backtest.simulate_all import run_metrics
from cascade_ml.backtest.strategies import strategy_plan
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.trading.config import TradingConfig

log = logging.getLogger(__name__)


@dataclass
class BookData:
    """Every symbol's aligned data on the common index, and the market the book trades."""

    symbols: list[str]
    data: dict[str, BacktestData]
    market: Market

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.data[self.symbols[0]].index


    def calendar(self) -> BacktestData:
        """The book's own periods: fold 1 where every symbol is in its final period, 0 where
        every symbol is in its development folds, -1 elsewhere (for the regime tables)."""
        d0 = self.data[self.symbols[0]]
        final = np.all([d.final_mask() for d in self.data.values()], axis=0)
        dev = np.all([d.development_mask() for d in self.data.values()], axis=0)
        fold = np.where(final, 1, np.where(dev, 0, -1))
        return BacktestData(d0.index, d0.open, d0.high, d0.low, d0.close, d0.funding_rate,
                            d0.signals, d0.cascade, d0.funding_coverage,
                            d0.funding_proxy_share, d0.forecast_coverage, fold=fold)


@dataclass
class BookRun:
    name: str
    result: SimResult          # the book as one strategy (summed legs), for the shared metrics
    positions: dict[str, SimResult]
    metrics: dict[str, float]
    position_metrics: dict[str, dict[str, float]]
    capped: np.ndarray | None = None  # the book's capped-unhedged equity (capture benchmark)


def load_book(store: MarketStore, symbols: list[str], task: TaskConfig, bt: BacktestConfig,
              policy: PolicyConfig) -> BookData:
    """Each symbol's OOS data, cut to the bars all of them share, plus BTC/ETH for proxies."""
    if not symbols:
        raise CascadeError("the book has no symbols (backtest.book.symbols or task.symbols)")
    venue = bt.venue or task.venue
    per = {s: load(store, s, venue=venue, interval=task.interval, horizon=task.horizon,
                   funding_proxy=bt.funding_proxy, vol_window=policy.vol_reference_window,
                   proxy_window=policy.proxy_window) for s in symbols}
    common = per[symbols[0]].index
    for s in symbols[1:]:
        common = common.intersection(per[s].index)
    if len(common) < 2:
        raise CascadeError(f"the OOS spans of {symbols} share fewer than 2 bars")
    data = {s: d.take(d.index.isin(common)) for s, d in per.items()}
    rows = {k: [getattr(data[s], k) for s in symbols] for k in
            ("open", "high", "low", "close", "funding_rate")}
    names, tiers = list(symbols), [policy.tiers_for(s) for s in symbols]
    extra = [p for p in PROXIES if p not in symbols]
    if bt.book.proxy_hedges and extra:
        prox = load_proxies(store, common, venue=venue, interval=task.interval,
                            tiers={p: policy.tiers_for(p) for p in PROXIES},
                            funding_proxy=bt.funding_proxy)
        for p in extra:
            k = prox.names.index(p)
            for key in rows:
                rows[key].append(getattr(prox, key)[k])
            names.append(p)
            tiers.append(policy.tiers_for(p))
    market = Market(names, *(np.vstack(rows[k]) for k in
                             ("open", "high", "low", "close", "funding_rate")), tiers=tiers)
    for s in symbols:  # a proxy with no bars (or not loaded) cannot be chosen
        for p in PROXIES:
            beta = data[s].cross[f"beta_{p.lower()}"]
            if p in names:
                beta[~np.isfinite(market.close[names.index(p)])] = np.nan
            else:
                beta[:] = np.nan
    return BookData(list(symbols), data, market)


def _plans(name: str, book: BookData, bt: BacktestConfig, trading: TradingConfig,
           policy: PolicyConfig, side: str,
           matched: dict[str, tuple[float, float]] | None,
           policies: dict[str, PolicyConfig] | None = None) -> list[PositionPlan] | None:
    n_pos = len(book.symbols)
    plans = []
    names = book.market.names
    code_to_row = [None, *(names.index(p) if p in names else -1 for p in PROXIES)]
    for s in book.symbols:
        d = book.data[s]
        cfg = (policies or {}).get(s, policy)
        tiers = cfg.tiers_for(s)
        notional = trading.nominal_notional(n_pos)
        plan = strategy_plan(name, d.signals, bt, trading, cfg, tiers, notional, side,
                             feeds=d.feeds,
                             trailing_vol_annual=d.trailing_vol_annual, cross=d.cross,
                             proxies=bt.book.proxy_hedges,
                             matched=None if matched is None else matched[s])
        if plan is None:
            return None
        extra = dict(plan.engine)
        main = names.index(s)
        if "hedge_instrument" in extra:
            codes = extra.pop("hedge_instrument")
            rows = np.array([main if c == 0 else code_to_row[c] for c in range(3)])
            extra["hedge_instrument"] = rows[codes]
            extra["hedge_ok"] = {int(rows[c]): ok for c, ok in extra.pop("hedge_ok").items()
                                 if rows[c] >= 0}
        plans.append(PositionPlan(main, plan.target_leverage, plan.target_hedge, plan.sigma_h,
                                  plan.cascade_prob, side=side, **extra))
    return plans


def _as_one(res: BookResult) -> SimResult:
    """The book as one strategy: summed notional, costs and events (for the shared metrics)."""
    ps = res.positions
    notional = np.sum([p.notional for p in ps], axis=0)
    lev = np.mean([p.leverage for p in ps], axis=0)
    hedge = np.mean([p.hedge for p in ps], axis=0)
    costs = np.sum([p.cum_costs for p in ps], axis=0)
    return SimResult(res.equity, lev, hedge, sorted(b for p in ps for b in p.liquidation_bars),
                     sum(p.fees for p in ps), sum(p.funding for p in ps),
                     sum(p.traded_notional for p in ps), sum(p.trades for p in ps),
                     sorted(b for p in ps for b in p.stop_bars), notional, None,
                     res.equity.copy(), costs)


def basis_risk(book: BookData, symbol: str, r: SimResult) -> dict[str, float]:
    """Annualised vol of the unhedged basis ``r_perp - beta r_proxy`` on the bars the position
    was hedged with a proxy, and the R^2 that hedge realised (NaN when never proxy-hedged)."""
    m = book.market
    main = m.names.index(symbol)
    held = np.r_[r.instrument[:-1], -1]  # the hedge held over bar i+1
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.diff(np.log(m.close), axis=1)
    rm = rets[main]
    resid, base = [], []
    d = book.data[symbol]
    for p in PROXIES:
        if p not in m.names:
            continue
        row = m.names.index(p)
        bars = np.flatnonzero(held[:-1] == row)
        if not len(bars):
            continue
        beta = d.cross[f"beta_{p.lower()}"][bars]
        resid.append(rm[bars] - beta * rets[row][bars])
        base.append(rm[bars])
    if not resid:
        return {"proxy_basis_vol": float("nan"), "proxy_realised_r2": float("nan")}
    e, b = np.concatenate(resid), np.concatenate(base)
    ok = np.isfinite(e) & np.isfinite(b)
    e, b = e[ok], b[ok]
    if len(e) < 2:
        return {"proxy_basis_vol": float("nan"), "proxy_realised_r2": float("nan")}
    return {"proxy_basis_vol": float(np.std(e, ddof=1) * np.sqrt(HOURS_PER_YEAR)),
            "proxy_realised_r2": float(1 - np.var(e) / np.var(b)) if np.var(b) > 0
            else float("nan")}


def position_metrics(book: BookData, symbol: str, r: SimResult, alloc: float) -> dict:
    """One position's P&L metrics on its allocation (initial equity / positions)."""
    curve = alloc + r.pnl
    m = summarize(np.maximum(curve, 1e-9))
    return {"pnl": float(r.pnl[-1]), "return_on_allocation": float(r.pnl[-1] / alloc),
            "ann_vol": m["ann_vol"], "max_drawdown": max_drawdown(np.maximum(curve, 1e-9)),
            "cvar_95": m["cvar_95"], "liquidations": float(len(r.liquidation_bars)),
            "stops": float(len(r.stop_bars)), "fees_paid": r.fees, "funding_paid": r.funding,
            "mean_hedge": float(np.mean(r.hedge)),
            "proxy_share": float(np.mean((r.instrument >= 0)
                                         & (r.instrument != book.market.names.index(symbol)))),
            "instrument_switches": float(r.switches), "forced_switches": float(r.forced_switches),
            **basis_risk(book, symbol, r)}


def run_book(book: BookData, bt: BacktestConfig, policy: PolicyConfig, side: str, *,
             trading: TradingConfig,
             policies: dict[str, PolicyConfig] | None = None) -> dict[str, BookRun]:
    """Simulate each book strategy (static_matched after model_policy); ``policies``: a
    position's own policy where it differs from ``policy`` (the proxy-hedged variant)."""
    names = list(dict.fromkeys(["unhedged", *bt.book.strategies]))
    if "static_matched" in names and "model_policy" not in names:
        names.insert(names.index("static_matched"), "model_policy")
    names.sort(key=lambda n: n == "static_matched")
    results: dict[str, BookResult] = {}
    for name in names:
        matched = None
        if name == "static_matched":
            mp = results["model_policy"].positions
            matched = {s: (float(np.mean(r.leverage)), float(np.mean(r.hedge)))
                       for s, r in zip(book.symbols, mp, strict=True)}
        plans = _plans(name, book, bt, trading, policy, side, matched, policies)
        if plans is None:
            log.warning("book %s: a symbol lacks its inputs; left out", name)
            continue
        results[name] = simulate_book(book.market, plans, policy=policy,
                                      initial_equity=trading.initial_equity,
                                      margin_fraction=trading.margin_fraction,
                                      leverage_tolerance=trading.leverage_tolerance,
                                      stop_cooldown=trading.stop_cooldown_bars)
    base = results["unhedged"].equity
    capped = results["capped_unhedged"].equity if "capped_unhedged" in results else None
    alloc = trading.initial_equity / len(book.symbols)
    runs = {}
    for name in bt.book.strategies:
        if name not in results:
            continue
        one = _as_one(results[name])
        pos = dict(zip(book.symbols, results[name].positions, strict=True))
        per = {s: position_metrics(book, s, r, alloc) for s, r in pos.items()}
        metrics = run_metrics(one, base, capped=capped)
        metrics["proxy_share"] = float(np.mean([p["proxy_share"] for p in per.values()]))
        runs[name] = BookRun(name, one, pos, metrics, per, capped)
    return runs


def proxy_policies(book: BookData, policy: PolicyConfig,
                   effectiveness: float) -> dict[str, PolicyConfig]:
    """Every position but BTC/ETH with ``same_perp_effectiveness`` set to ``effectiveness``:
    the same perp then loses to a BTC/ETH hedge whose R^2 passes ``min_cross_hedge_r2`` and
    exceeds it (``rules.hedge_instrument``). BTC and ETH keep the policy as configured."""
    cfg = PolicyConfig.model_validate({**policy.model_dump(),
                                       "same_perp_effectiveness": effectiveness})
    return {s: cfg for s in book.symbols if s not in PROXIES}


def proxy_summary(per: dict[str, dict[str, float]]) -> dict[str, float]:
    """The book's proxy use and basis risk over its positions: how many used a proxy, their
    basis vol and realised R^2 weighted by each one's proxy share (NaN: none did), and the
    instrument switches of all (those forced by a proxy that no longer qualified apart)."""
    used = {s: m for s, m in per.items() if m["proxy_share"] > 0
            and np.isfinite(m["proxy_basis_vol"])}
    w = np.array([m["proxy_share"] for m in used.values()])
    out = {"proxy_positions": float(len(used)),
           **{k: float(sum(m[k] for m in per.values()))
              for k in ("instrument_switches", "forced_switches")}}
    for key in ("proxy_basis_vol", "proxy_realised_r2"):
        v = np.array([m[key] for m in used.values()])
        ok = np.isfinite(v)
        out[key] = float(np.average(v[ok], weights=w[ok])) if ok.any() else float("nan")
    return out


def run_proxy_book(book: BookData, bt: BacktestConfig, policy: PolicyConfig, side: str, *,
                   trading: TradingConfig) -> dict[str, BookRun] | None:
    """The book's strategies again with ``backtest.book.proxy_effectiveness`` as the
    non-BTC/ETH positions' same-perp effectiveness (None when that key is unset): the proxy
    path of a one-way account, measured beside the same-perp book. Each run's metrics add
    :func:`proxy_summary`."""
    eff = bt.book.proxy_effectiveness
    if eff is None:
        return None
    runs = run_book(book, bt, policy, side, trading=trading,
                    policies=proxy_policies(book, policy, eff))
    for run in runs.values():
        run.metrics.update(proxy_summary(run.position_metrics))
    return runs
