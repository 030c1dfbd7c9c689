"""Bar-by-bar simulation of a book of leveraged perp positions, each with a hedge leg.

Model (documented in docs/policy.md):
- The account holds ``free`` cash and, per position, an isolated bucket of margin. A position's
  main leg (long by default) has gross notional ``leverage x bucket``; its hedge is an opposite
  leg of ``hedge x main`` in the same perp (Binance hedge mode) or, beta-weighted
  (``hedge x main x beta``), in a proxy perp (BTC, ETH), both on that bucket.
- Bar i runs from its open to its close. First the protective stop (when one is set): if the
  bar's adverse extreme reaches it, both legs are closed there (at the open when the bar gapped
  through it; a proxy leg at its previous close moved by beta times the main leg's move, held
  inside its bar's range) unless the bucket was already below its maintenance margin at that
  point (then it is a liquidation). Then the liquidation check: for a same-perp hedge the
  bucket is liquidated if the bar's adverse extreme (low for a net long, high for a net short)
  reaches the liquidation price of both legs with tiered maintenance margin; for a proxy hedge
  if the bucket's equity falls to its maintenance margin with both perps at their lows, or both
  at their highs (co-moving extremes). A liquidated bucket's equity is lost. Otherwise the legs
  are marked to the close.
- Funding settling at the bar's close is paid on every leg at its own perp's rate: longs pay
  ``rate x notional`` when the rate is positive, shorts receive it.
- At the close the strategy's targets for that bar (decided with data known at that close) are
  applied through the no-trade band: leverage is reset only when it drifted beyond the
  tolerance (and then the bucket is also reset to ``margin_fraction`` of equity divided among
  the positions, a free transfer); the hedge only when the policy's benefit-vs-cost test passes
  (the hedge instrument changes only then). With a size cap the main leg is held to
  ``max_risk_fraction x equity / loss_per_notional``; with ``no_new_exposure`` it never grows.
  Each traded notional pays the fee plus half the spread. After a liquidation, or once the
  cooldown after a stop has passed, the position re-enters with its share of the equity.
- The stop is set whenever the position trades: measured from the entry price, where the hedged
  position (exposure ``1 - h R^2``) loses ``max_risk_fraction`` of equity, but no farther than
  ``stop_liquidation_buffer`` of the way to the liquidation price (the rule of ``decide``).

Plain Python floats in the loop: a position-bar costs a few microseconds.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from cascade_ml.policy import rules
from cascade_ml.policy.config import MarginTier, PolicyConfig
from cascade_ml.policy.liquidation import tier_arrays


@dataclass
class SimResult:
    """Per-bar paths and totals of one simulated strategy (one position)."""

    equity: np.ndarray
    leverage: np.ndarray
    hedge: np.ndarray
    liquidation_bars: list[int]
    fees: float
    funding: float
    traded_notional: float
    trades: int
    stop_bars: list[int] = field(default_factory=list)
    notional: np.ndarray | None = None      # main-leg notional at each close
    instrument: np.ndarray | None = None    # hedge instrument index at each close (-1: none)
    pnl: np.ndarray | None = None           # cumulative P&L of the position (quote)
    cum_costs: np.ndarray | None = None     # (3, n): cumulative fees, funding, traded notional


@dataclass
class Market:
    """Bars of every perp the book trades, aligned on one index: arrays of shape (K, n)."""

    names: list[str]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    funding_rate: np.ndarray
    tiers: list[list[MarginTier]]

    def index_of(self, name: str) -> int:
        return self.names.index(name)


@dataclass
class PositionPlan:
    """One position's targets per bar (NaN target = keep the position as it is)."""

    main: int                                   # instrument index of the main leg
    target_leverage: np.ndarray
    target_hedge: np.ndarray
    sigma_h: np.ndarray                         # for the no-trade band's benefit estimate
    cascade_prob: np.ndarray
    side: str = "long"
    hedge_instrument: np.ndarray | None = None  # instrument index per bar (None: the main perp)
    hedge_beta: np.ndarray | None = None
    hedge_r2: np.ndarray | None = None
    loss_per_notional: np.ndarray | None = None  # size cap (None: no cap)
    no_new_exposure: np.ndarray | None = None    # bars where the main leg may only shrink
    stops: bool = False                           # honour the protective stop


@dataclass
class BookResult:
    """The book's equity and one SimResult per position (equity = its cumulative P&L path)."""

    equity: np.ndarray
    positions: list[SimResult]


class _Tiers:
    """Bracket lookups without per-call array building (hot loop)."""

    def __init__(self, tiers: list[MarginTier]) -> None:
        self.bounds, self.mmr, _, self.cum = tier_arrays(tiers)
        self._b = [float(b) for b in self.bounds]
        self._m = [float(m) for m in self.mmr]
        self._c = [float(c) for c in self.cum]
        self.last = len(self.bounds) - 1

    def get(self, notional: float) -> tuple[float, float]:
        i = min(bisect_right(self._b, notional), self.last)
        return self._m[i], self._c[i]


def _liq_price(long_q: float, short_q: float, equity: float, price: float, t: _Tiers) -> float:
    """Same solution as ``policy.liquidation.bucket_liquidation_price`` (tested equal)."""
    q_net = long_q - short_q
    mmr_l, cum_l = t.get(long_q * price)
    mmr_s, cum_s = t.get(short_q * price)
    cum = (cum_l if long_q > 0 else 0.0) + (cum_s if short_q > 0 else 0.0)
    denom = long_q * mmr_l + short_q * mmr_s - q_net
    if denom == 0:
        return 0.0 if q_net > 0 else np.inf
    x = (equity - q_net * price + cum) / denom
    if q_net > 0:
        return max(x, 0.0)
    return x if x > 0 else np.inf


def _mm(q: float, price_now: float, price_ref: float, t: _Tiers) -> float:
    """Maintenance margin of |q| at ``price_now`` with the bracket of its notional at
    ``price_ref``."""
    if q <= 0:
        return 0.0
    mmr, cum = t.get(q * price_ref)
    return q * price_now * mmr - cum


class _Pos:
    """Mutable state of one position in the loop."""

    __slots__ = ("plan", "main", "s", "bucket", "main_q", "hedge_q", "hinst", "hbeta", "hr2",
                 "h_cur", "entry", "stop", "cool_until", "pnl", "fees", "funding", "traded",
                 "trades", "liqs", "stops", "tiers", "rec", "lt", "ht", "sig", "prob", "hi_arr",
                 "hb_arr", "hr_arr", "lpn", "nne")

    def __init__(self, plan: PositionPlan, n: int) -> None:
        self.plan = plan
        self.main = plan.main
        self.s = 1.0 if plan.side == "long" else -1.0
        self.bucket = 0.0
        self.main_q = self.hedge_q = 0.0
        self.hinst, self.hbeta, self.hr2, self.h_cur = plan.main, 1.0, 1.0, 0.0
        self.entry = 0.0
        self.stop = math.nan
        self.cool_until = 0
        self.pnl = self.fees = self.funding = self.traded = 0.0
        self.trades = 0
        self.liqs: list[int] = []
        self.stops: list[int] = []
        self.rec: list[tuple] = []  # per bar: pnl, notional, leverage, hedge, instrument, costs
        self.lt = plan.target_leverage.tolist()
        self.ht = plan.target_hedge.tolist()
        self.sig = np.where(np.isfinite(plan.sigma_h), plan.sigma_h, 0.0).tolist()
        self.prob = np.where(np.isfinite(plan.cascade_prob), plan.cascade_prob, 0.0).tolist()
        self.hi_arr = None if plan.hedge_instrument is None else plan.hedge_instrument.tolist()
        self.hb_arr = None if plan.hedge_beta is None else plan.hedge_beta.tolist()
        self.hr_arr = None if plan.hedge_r2 is None else plan.hedge_r2.tolist()
        self.lpn = None if plan.loss_per_notional is None else plan.loss_per_notional.tolist()
        self.nne = None if plan.no_new_exposure is None else plan.no_new_exposure.tolist()


def simulate_book(market: Market, plans: list[PositionPlan], *, policy: PolicyConfig,
                  initial_equity: float = 10_000.0, margin_fraction: float = 0.5,
                  leverage_tolerance: float = 0.1, stop_cooldown: int = 24) -> BookResult:
    """Simulate every position of the book on one shared account (see the module docstring)."""
    k, n = market.close.shape
    o, hi, lo, cl, fr = (a.tolist() for a in (market.open, market.high, market.low,
                                              market.close, market.funding_rate))
    tiers = [_Tiers(t) for t in market.tiers]
    cost_rate = policy.trade_cost
    f_risk, buffer = policy.max_risk_fraction, policy.stop_liquidation_buffer
    band = policy.no_trade_band - 1e-12  # rules.rebalance_test never passes below it
    n_pos = len(plans)
    share = margin_fraction / max(n_pos, 1)
    free = initial_equity
    book = [_Pos(p, n) for p in plans]
    equity = np.empty(n)

    for i in range(n):
        # --- 1. stops, liquidations and marks from the previous close to this one
        for ps in book:
            if i == 0 or ps.main_q == 0.0:
                continue
            m, j, s = ps.main, ps.hinst, ps.s
            p0, c = cl[m][i - 1], cl[m][i]
            h0, hc = cl[j][i - 1], cl[j][i]
            tm, th = tiers[m], tiers[j]
            same = j == m
            liquidated = None
            if ps.stop == ps.stop and (lo[m][i] <= ps.stop if s > 0 else hi[m][i] >= ps.stop):
                st = ps.stop
                fill = min(o[m][i], st) if s > 0 else max(o[m][i], st)
                hfill = fill if same else min(max(h0 * (1 + ps.hbeta * (fill / p0 - 1)),
                                                  lo[j][i]), hi[j][i])
                pnl = s * ps.main_q * (fill - p0) - s * ps.hedge_q * (hfill - h0)
                eq_f = ps.bucket + pnl
                if eq_f > _mm(ps.main_q, fill, p0, tm) + _mm(ps.hedge_q, hfill, h0, th):
                    gross = ps.main_q * fill + ps.hedge_q * hfill
                    cost = gross * cost_rate
                    ps.traded += gross
                    ps.fees += cost
                    ps.pnl += pnl - cost
                    ps.trades += 1
                    free += eq_f - cost
                    ps.bucket = 0.0
                    ps.main_q = ps.hedge_q = 0.0
                    ps.stop = math.nan
                    ps.stops.append(i)
                    ps.cool_until = i + stop_cooldown
                    continue
                liquidated = True  # maintenance margin was reached before the stop price
            if liquidated is None:
                if same:
                    long_q, short_q = (ps.main_q, ps.hedge_q) if s > 0 else (ps.hedge_q, ps.main_q)
                    x = _liq_price(long_q, short_q, ps.bucket, p0, tm)
                    q_net = long_q - short_q
                    liquidated = (q_net > 0 and lo[m][i] <= x) or (q_net < 0 and hi[m][i] >= x)
                else:
                    liquidated = any(
                        ps.bucket + s * ps.main_q * (xm - p0) - s * ps.hedge_q * (xh - h0)
                        <= _mm(ps.main_q, xm, p0, tm) + _mm(ps.hedge_q, xh, h0, th)
                        for xm, xh in ((lo[m][i], lo[j][i]), (hi[m][i], hi[j][i])))
            if liquidated:
                ps.liqs.append(i)
                ps.pnl -= ps.bucket
                ps.bucket = 0.0
                ps.main_q = ps.hedge_q = 0.0
                ps.stop = math.nan
                continue
            pnl = s * ps.main_q * (c - p0) - s * ps.hedge_q * (hc - h0)
            pay = s * fr[m][i] * c * ps.main_q - s * fr[j][i] * hc * ps.hedge_q
            ps.bucket += pnl - pay
            ps.funding += pay
            ps.pnl += pnl - pay

        total = free + sum(ps.bucket for ps in book)
        # --- 2. decisions at the close
        for ps in book:
            m = ps.main
            c = cl[m][i]
            if ps.main_q == 0.0 and ps.bucket <= 0.0 and i >= ps.cool_until and free > 0:
                want = total * share
                take = min(want, free)
                ps.bucket += take
                free -= take
            lt, ht = ps.lt[i], ps.ht[i]
            if ps.bucket > 0 and lt == lt and ht == ht and i >= ps.cool_until:
                gross = ps.main_q * c
                n_cap = math.inf
                if ps.lpn is not None and ps.lpn[i] > 0:
                    n_cap = f_risk * total / ps.lpn[i]
                if ps.nne is not None and ps.nne[i]:
                    n_cap = min(n_cap, gross)
                lt_eff = min(lt, n_cap / ps.bucket)
                cur_lev = gross / ps.bucket
                relever = ps.main_q == 0.0 or abs(cur_lev - lt_eff) > leverage_tolerance * lt_eff
                ti = m if ps.hi_arr is None else ps.hi_arr[i]
                tb = 1.0 if ps.hb_arr is None else ps.hb_arr[i]
                tr = 1.0 if ps.hr_arr is None else ps.hr_arr[i]
                if ps.main_q == 0.0:
                    move_hedge = True
                elif abs(ht - ps.h_cur) < band:  # inside the no-trade band: the test fails
                    move_hedge = False
                else:
                    move_hedge = bool(rules.rebalance_test(
                        ht, ps.h_cur, ps.sig[i], ps.prob[i], max(gross, lt_eff * ps.bucket),
                        tr, tb, policy)[0])
                if relever:
                    tot_here = ps.bucket + free
                    target_bucket = min(total * share, tot_here)
                    free, ps.bucket = tot_here - target_bucket, target_bucket
                    new_main = min(lt * ps.bucket, n_cap) / c
                else:
                    new_main = ps.main_q
                if move_hedge:
                    new_h, inst, beta, r2 = ht, ti, tb, tr
                else:
                    new_h, inst, beta, r2 = ps.h_cur, ps.hinst, ps.hbeta, ps.hr2
                hc = cl[inst][i]
                if move_hedge:
                    new_hedge = new_h * new_main * c * beta / hc
                elif relever:  # resize the held hedge with the main leg, same ratio
                    new_hedge = ps.hedge_q * new_main / ps.main_q
                else:
                    new_hedge = ps.hedge_q
                d_main = abs(new_main - ps.main_q) * c
                if inst == ps.hinst:
                    d_hedge = abs(new_hedge - ps.hedge_q) * hc
                else:
                    d_hedge = ps.hedge_q * cl[ps.hinst][i] + new_hedge * hc
                traded = d_main + d_hedge
                if traded > 1e-9:
                    cost = traded * cost_rate
                    ps.bucket -= cost
                    ps.fees += cost
                    ps.pnl -= cost
                    ps.traded += traded
                    ps.trades += 1
                    if new_main > ps.main_q:
                        ps.entry = (ps.entry * ps.main_q + c * (new_main - ps.main_q)) / new_main
                    elif new_main == 0.0:
                        ps.entry = 0.0
                    ps.main_q, ps.hedge_q = new_main, new_hedge
                    ps.hinst, ps.hbeta, ps.hr2, ps.h_cur = inst, beta, r2, new_h
                    ps.stop = _stop_price(ps, tiers, c, hc, f_risk * total, buffer) \
                        if ps.plan.stops and new_main > 0 else math.nan
        total = free + sum(ps.bucket for ps in book)
        equity[i] = total
        for ps in book:
            nq = ps.main_q * cl[ps.main][i]
            held = ps.main_q > 0
            ps.rec.append((ps.pnl, nq, nq / ps.bucket if ps.bucket > 0 else 0.0,
                           ps.h_cur if held else 0.0,
                           ps.hinst if held and ps.hedge_q > 0 else -1,
                           ps.fees, ps.funding, ps.traded))
    results = []
    for ps in book:
        rec = np.array(ps.rec, dtype=float).reshape(n, 8).T
        results.append(SimResult(rec[0], rec[2], rec[3], ps.liqs, ps.fees, ps.funding,
                                 ps.traded, ps.trades, ps.stops, rec[1],
                                 rec[4].astype(int), rec[0].copy(), rec[5:8].copy()))
    return BookResult(equity, results)


def _stop_price(ps: _Pos, tiers: list[_Tiers], c: float, hc: float, max_loss: float,
                buffer: float) -> float:
    """The protective stop after a trade: ``rules.stop_distance`` from the entry price, with the
    bucket's liquidation price (the main leg alone for a proxy hedge: conservative)."""
    s = ps.s
    if ps.hinst == ps.main:
        long_q, short_q = (ps.main_q, ps.hedge_q) if s > 0 else (ps.hedge_q, ps.main_q)
    else:
        long_q, short_q = (ps.main_q, 0.0) if s > 0 else (0.0, ps.main_q)
    x = _liq_price(long_q, short_q, ps.bucket, c, tiers[ps.main])
    liq_dist = s * (ps.entry - x) / ps.entry if 0.0 < x < math.inf else math.inf
    exposure = 1.0 - ps.h_cur * ps.hr2
    notional = ps.main_q * ps.entry
    d = min(max_loss / (notional * exposure) if exposure > 0 else math.inf, buffer * liq_dist)
    if s > 0:
        return ps.entry * (1 - d) if d < 1 else math.nan
    return ps.entry * (1 + d) if d < math.inf else math.nan


def simulate(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
             funding_rate: np.ndarray, target_leverage: np.ndarray, target_hedge: np.ndarray,
             sigma_h: np.ndarray, cascade_prob: np.ndarray, *, side: str, tiers: list[MarginTier],
             policy: PolicyConfig, initial_equity: float = 10_000.0, margin_fraction: float = 0.5,
             leverage_tolerance: float = 0.1, loss_per_notional: np.ndarray | None = None,
             no_new_exposure: np.ndarray | None = None, stops: bool = False,
             stop_cooldown: int = 24, proxies: Market | None = None,
             hedge_instrument: np.ndarray | None = None, hedge_beta: np.ndarray | None = None,
             hedge_r2: np.ndarray | None = None) -> SimResult:
    """Simulate one position (a book of one); NaN targets mean 'keep the position as it is'.

    ``funding_rate[i]`` settles at the close of bar i (0 when none). ``sigma_h``/``cascade_prob``
    feed the no-trade band's benefit estimate (NaN: floor tail weight and a 0 benefit).
    ``proxies`` holds the proxy perps a hedge may use (``hedge_instrument`` codes 1, 2, ... index
    them in order; 0 is the same perp). Equity is the account's.
    """
    rows = [np.asarray(a, dtype=float) for a in (open_, high, low, close, funding_rate)]
    names, tier_list = ["main"], [list(tiers)]
    if proxies is not None:
        rows = [np.vstack([r, getattr(proxies, a)]) for r, a in
                zip(rows, ("open", "high", "low", "close", "funding_rate"), strict=True)]
        names += proxies.names
        tier_list += proxies.tiers
    else:
        rows = [r[None, :] for r in rows]
    market = Market(names, *rows, tiers=tier_list)
    plan = PositionPlan(0, np.asarray(target_leverage, dtype=float),
                        np.asarray(target_hedge, dtype=float), np.asarray(sigma_h, dtype=float),
                        np.asarray(cascade_prob, dtype=float), side=side,
                        hedge_instrument=None if hedge_instrument is None
                        else np.asarray(hedge_instrument, dtype=int),
                        hedge_beta=hedge_beta, hedge_r2=hedge_r2,
                        loss_per_notional=loss_per_notional, no_new_exposure=no_new_exposure,
                        stops=stops)
    res = simulate_book(market, [plan], policy=policy, initial_equity=initial_equity,
                        margin_fraction=margin_fraction, leverage_tolerance=leverage_tolerance,
                        stop_cooldown=stop_cooldown)
    r = res.positions[0]
    r.equity = res.equity
    return r
