"""Bar-by-bar simulation of a book of leveraged perp positions, each with a hedge leg.

The account holds ``free`` cash and, per position, an isolated margin bucket; every rule of a
bar (stop, liquidation, marks, funding, allocation, rebalancing through the no-trade band, fees,
the stop's price) is the trading core's (:mod:`cascade_ml.trading.core`, docs/policy.md), looped
here over whole price columns. The live paper book calls the same functions one bar at a time.

Plain Python floats in the loop: a position-bar costs a few microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from cascade_ml.policy.config import MarginTier, PolicyConfig
from cascade_ml.trading import core
from cascade_ml.trading.margin import Tiers

INLINE_QUIET_BARS = True
"""Default of :func:`simulate_book`'s ``inline`` (benchmarks/bench_universe_backtest.py turns it
off in-process to time the engine as it was before)."""


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
    switches: int = 0                       # trades that moved a held hedge to another instrument
    forced_switches: int = 0                # trades that left a held proxy no longer qualifying


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

    def rows(self) -> tuple[core.Rows, ...]:
        """Open, high, low, close and funding rate as lists of lists (the loop's plain floats),
        built once per market: its many simulations share them."""
        cached = self.__dict__.get("_rows")
        if cached is None:
            cached = tuple(a.tolist() for a in (self.open, self.high, self.low, self.close,
                                                self.funding_rate))
            self.__dict__["_rows"] = cached
        return cached


class HoldRule(Protocol):
    """The policy's hold rule (``policy.batch.HedgeHold``): its unheld hedge targets, and the
    hedge held from a bar on by a position that opens there."""

    target: np.ndarray

    def path(self, begin: int = 0) -> list[float]: ...


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
    hedge_ok: dict[int, np.ndarray] | None = None  # proxy row -> bars it qualifies (else none)
    loss_per_notional: np.ndarray | None = None  # size cap (None: no cap)
    no_new_exposure: np.ndarray | None = None    # bars where the main leg may only shrink
    stops: bool = False                           # honour the protective stop
    # the hold rule target_hedge follows (None: the targets are the hedge): a position that
    # opens from flat takes the bar's target and holds hedge_hold.path(bar) from there
    hedge_hold: HoldRule | None = None


@dataclass
class BookResult:
    """The book's equity and one SimResult per position (equity = its cumulative P&L path)."""

    equity: np.ndarray
    positions: list[SimResult]


class _Pos(core.PositionState):
    """A position in the loop, with its plan's targets as lists (fast indexing)."""

    __slots__ = ("plan", "lt", "ht", "sig", "prob", "hi_arr", "hb_arr", "hr_arr", "ok", "lpn",
                 "nne", "rec", "main_close", "tgt")

    def __init__(self, plan: PositionPlan, n: int) -> None:
        super().__init__(plan.main, plan.side, plan.stops)
        self.plan = plan
        self.rec: list[float] = []  # 8 per bar: pnl, notional, leverage, hedge, instrument, costs
        self.main_close: list[float] = []  # the main perp's closes (set by simulate_book)
        self.lt = plan.target_leverage.tolist()
        self.ht = plan.target_hedge.tolist()
        self.sig = np.where(np.isfinite(plan.sigma_h), plan.sigma_h, 0.0).tolist()
        self.prob = np.where(np.isfinite(plan.cascade_prob), plan.cascade_prob, 0.0).tolist()
        # absent columns as their defaults: the main perp, beta and R^2 1, no size cap, no
        # fail-safe bar
        self.hi_arr = ([plan.main] * n if plan.hedge_instrument is None
                       else plan.hedge_instrument.tolist())
        self.hb_arr = [1.0] * n if plan.hedge_beta is None else plan.hedge_beta.tolist()
        self.hr_arr = [1.0] * n if plan.hedge_r2 is None else plan.hedge_r2.tolist()
        self.ok = {k: np.asarray(v, dtype=bool).tolist() for k, v in (plan.hedge_ok or {}).items()}
        self.lpn = ([math.nan] * n if plan.loss_per_notional is None
                    else plan.loss_per_notional.tolist())
        self.nne = ([False] * n if plan.no_new_exposure is None
                    else [bool(x) for x in plan.no_new_exposure.tolist()])
        self.tgt = None if plan.hedge_hold is None else plan.hedge_hold.target.tolist()

    def held_ok(self, i: int) -> bool:
        """The proxy the hedge is held in qualifies at bar ``i`` (``core.instrument_switch``)."""
        col = self.ok.get(self.hinst)
        return col is not None and col[i]


def simulate_book(market: Market, plans: list[PositionPlan], *, policy: PolicyConfig,
                  initial_equity: float = 10_000.0, margin_fraction: float = 0.5,
                  leverage_tolerance: float = 0.1, stop_cooldown: int = 24,
                  inline: bool | None = None) -> BookResult:
    """Simulate every position of the book on one shared account (the trading core's rules).

    Each position's rules read its slice of the account (``core.position_equity``: equity
    over the positions, re-read every bar): margin ``margin_fraction`` of the slice, size cap
    and stop on ``max_risk_fraction`` of it, so the book is the sum of one-slice accounts that
    share their free cash (a book of one is the single-perp backtest).

    ``inline=False`` runs every bar through the core's functions (the reference the quiet bars
    of :func:`_bar` are tested against); None: :data:`INLINE_QUIET_BARS`."""
    k, n = market.close.shape
    o, hi, lo, cl, fr = market.rows()
    tiers = [Tiers(t) for t in market.tiers]
    r = core.CoreRules.of(policy, leverage_tolerance=leverage_tolerance,
                          stop_cooldown=stop_cooldown)
    share = margin_fraction  # of each position's slice
    free = initial_equity
    book = [_Pos(p, n) for p in plans]
    for ps in book:
        ps.main_close = cl[ps.main]
    equity = [0.0] * n
    if inline is None:
        inline = INLINE_QUIET_BARS
    if len(book) == 1 and inline:
        _run_one(book[0], n, o, hi, lo, cl, fr, tiers, r, free, share, equity)
    else:
        for i in range(n):
            free = _bar(book, i, o, hi, lo, cl, fr, tiers, r, free, share, equity, inline)
    results = []
    for ps in book:
        rec = np.array(ps.rec, dtype=float).reshape(n, 8).T  # a flat list: fast to convert
        results.append(SimResult(rec[0], rec[2], rec[3], ps.liqs, ps.fees, ps.funding,
                                 ps.traded, ps.trades, ps.stops, rec[1],
                                 rec[4].astype(int), rec[0].copy(), rec[5:8].copy(),
                                 ps.switches, ps.forced))
    return BookResult(np.array(equity), results)


def _bar(book: list[_Pos], i: int, o: core.Rows, hi: core.Rows, lo: core.Rows, cl: core.Rows,
         fr: core.Rows, tiers: list[Tiers], r: core.CoreRules, free: float, share: float,
         equity: list[float], inline: bool) -> float:
    """Bar ``i`` of the book by the trading core's rules; records it, returns free cash.

    With ``inline`` a held position's quiet bar skips the core's functions: :func:`_mark`
    instead of ``core.settle`` when no stop or liquidation can happen, and nothing instead of
    ``core.rebalance`` when :func:`_holds` says it would return at once. Same numbers, bit for
    bit (tests/backtest/test_backtest_fast_path.py), in less time."""
    # --- 1. stops, liquidations, marks and funding from the previous close to this one
    if i > 0:
        for ps in book:
            if ps.main_q != 0.0 and not (inline and _mark(ps, i, hi, lo, cl, fr, tiers)):
                free += core.settle(ps, i, o, hi, lo, cl, fr, tiers, r)[1]
    # --- 2. decisions at the close, each position on its slice of the account
    alloc = core.position_equity(free + sum(ps.bucket for ps in book), len(book))
    for ps in book:
        if inline and ps.main_q != 0.0 and _holds(ps, i, cl[ps.main][i], r, alloc):
            continue  # allocate does nothing to a held position, rebalance would return
        free = core.allocate(ps, i, free, alloc, share)
        ht = ps.ht[i]
        opening = ps.main_q == 0.0 and ps.tgt is not None
        if opening:  # live, a flat position's hedge is 0, outside the band: it takes the target
            ht = ps.tgt[i]
        free = core.rebalance(ps, i, cl, tiers, r, free, alloc, share, ps.lt[i], ht,
                              ps.sig[i], ps.prob[i], ps.hi_arr[i], ps.hb_arr[i], ps.hr_arr[i],
                              ps.lpn[i], ps.nne[i], ps.held_ok(i))
        if opening and ps.main_q != 0.0 and ht != ps.ht[i]:
            _restart_hold(ps, i)
    equity[i] = free + sum(ps.bucket for ps in book)
    for ps in book:
        q = ps.main_q
        nq = q * ps.main_close[i]
        b = ps.bucket
        ps.rec.extend((ps.pnl, nq, nq / b if b > 0 else 0.0, ps.h_cur if q > 0 else 0.0,
                       ps.hinst if q > 0 and ps.hedge_q > 0 else -1,
                       ps.fees, ps.funding, ps.traded))
    return free


def _restart_hold(ps: _Pos, i: int) -> None:
    """The position opened from flat at bar ``i`` with the bar's target hedge, off the held
    path (which assumed a position held throughout): the hedge it holds from ``i`` on is the
    hold rule's path from there (in place: :func:`_run_one` reads the same list). Only where
    the held path differs from the target: from a bar where they agree the path is the same."""
    hold = ps.plan.hedge_hold
    assert hold is not None
    ps.ht[i:] = hold.path(i)


def _mark(ps: _Pos, i: int, hi: core.Rows, lo: core.Rows, cl: core.Rows, fr: core.Rows,
          tiers: list[Tiers]) -> bool:
    """``core.settle``'s mark and funding of a held position (the same float operations), done
    only when the bar reaches no stop and the bucket stays above its maintenance margin at both
    extremes even at the highest rate of any bracket (a bound: every bracket's ``cum`` is
    >= 0), with a margin for rounding. False: nothing done, the core decides."""
    m, j, s, q, hq, b, stop = (ps.main, ps.hinst, ps.s, ps.main_q, ps.hedge_q, ps.bucket,
                               ps.stop)
    lm, hm = lo[m][i], hi[m][i]
    if stop == stop and (lm <= stop if s > 0 else hm >= stop):
        return False
    p0, h0 = cl[m][i - 1], cl[j][i - 1]
    lj, hj = lo[j][i], hi[j][i]
    sq, shq, top_m, top_j = s * q, s * hq, tiers[m].top, tiers[j].top
    tol = 1e-6 * abs(b) + 1e-9
    if not (b + sq * (lm - p0) - shq * (lj - h0) - q * lm * top_m - hq * lj * top_j > tol
            and b + sq * (hm - p0) - shq * (hj - h0) - q * hm * top_m - hq * hj * top_j > tol):
        return False
    c, hc = cl[m][i], cl[j][i]
    pnl = sq * (c - p0) - shq * (hc - h0)
    pay = -(-sq * c * fr[m][i] + -(-s * hq) * hc * fr[j][i])  # funding_amount, both legs
    ps.bucket = b + (pnl - pay)
    ps.funding += pay
    ps.pnl += pnl - pay
    return True


def _holds(ps: _Pos, i: int, c: float, r: core.CoreRules, total: float) -> bool:
    """True when ``core.rebalance`` would return at once for this held position (no target, or
    inside both no-trade bands) on its equity ``total``: its first tests, the same float
    operations."""
    if r.stop_reset and ps.stops_on and ps.main_q > 0 and i >= ps.anchor_at:
        return False  # the stop is re-anchored at this close (``core.rebalance``)
    lt, ht, b = ps.lt[i], ps.ht[i], ps.bucket
    if not (b > 0 and lt == lt and ht == ht and i >= ps.cool_until):
        return True
    if ps.hinst != ps.main and core.instrument_switch(ps, ps.hi_arr[i], ps.held_ok(i)):
        return False  # a held proxy that no longer qualifies moves, inside the band too
    gross = ps.main_q * c
    n_cap = math.inf
    lpn = ps.lpn[i]
    if lpn > 0:
        n_cap = r.f_risk * total / lpn
    if ps.nne[i]:
        n_cap = min(n_cap, gross)
    lt_eff = min(lt, n_cap / b)
    cur = gross / b
    return (cur <= lt_eff * (1.0 + core._ROUNDING)
            and not cur < lt_eff * (1.0 - r.leverage_tolerance)
            and abs(ht - ps.h_cur) < r.band)


def _run_one(ps: _Pos, n: int, o: core.Rows, hi: core.Rows, lo: core.Rows, cl: core.Rows,
             fr: core.Rows, tiers: list[Tiers], r: core.CoreRules, free: float, share: float,
             equity: list[float]) -> None:
    """A book of one: :func:`_bar`'s quiet bars (:func:`_mark` then :func:`_holds`) with the
    position in locals, a quarter faster again than calling them (the universe backtest runs
    some 30 books of one per perp); every other bar (a stop or a liquidation possible, a trade,
    a flat position) runs :func:`_bar` without them, i.e. the core's functions. Bit-equal to
    every bar through the core (tests/backtest/test_backtest_fast_path.py).
    """
    m = ps.main
    hi_m, lo_m, cl_m, fr_m = hi[m], lo[m], cl[m], fr[m]
    lt_a, ht_a, lpn_a, nne_a, rec, hi_a = ps.lt, ps.ht, ps.lpn, ps.nne, ps.rec, ps.hi_arr
    band, f_risk = r.band, r.f_risk
    up, down = 1.0 + core._ROUNDING, 1.0 - r.leverage_tolerance
    top_m = tiers[m].top
    book = [ps]
    stale = True
    for i in range(n):
        if stale:  # reload the position after the core's functions ran
            q, hq, s, stop, j = ps.main_q, ps.hedge_q, ps.s, ps.stop, ps.hinst
            b, pnl_t, fund, fees, traded = ps.bucket, ps.pnl, ps.funding, ps.fees, ps.traded
            cool, h_cur = ps.cool_until, ps.h_cur
            # the bar the core re-anchors the stop at (never, without stops or reset)
            anchor_at = ps.anchor_at if r.stop_reset and ps.stops_on and q > 0 else n
            sq, shq, nshq = s * q, s * hq, -s * hq
            hi_j, lo_j, cl_j, fr_j, top_j = hi[j], lo[j], cl[j], fr[j], tiers[j].top
            h_rec = h_cur if q > 0 else 0.0
            inst = ps.hinst if q > 0 and hq > 0 else -1
            proxy = hq > 0 and j != m  # a proxy hedge: core.instrument_switch may move it
            stale = False
        if q != 0.0 and i > 0:
            lm, hm = lo_m[i], hi_m[i]
            if not (stop == stop and (lm <= stop if s > 0 else hm >= stop)):
                p0, h0 = cl_m[i - 1], cl_j[i - 1]
                lj, hj = lo_j[i], hi_j[i]
                tol = 1e-6 * abs(b) + 1e-9
                if (b + sq * (lm - p0) - shq * (lj - h0) - q * lm * top_m - hq * lj * top_j > tol
                        and b + sq * (hm - p0) - shq * (hj - h0) - q * hm * top_m
                        - hq * hj * top_j > tol):
                    c, hc = cl_m[i], cl_j[i]
                    pnl = sq * (c - p0) - shq * (hc - h0)
                    pay = -(-sq * c * fr_m[i] + -nshq * hc * fr_j[i])
                    b += pnl - pay
                    fund += pay
                    pnl_t += pnl - pay
                    lt, ht = lt_a[i], ht_a[i]
                    quiet = i < anchor_at
                    if quiet and b > 0 and lt == lt and ht == ht and i >= cool:
                        gross = q * c
                        n_cap = math.inf
                        lpn = lpn_a[i]
                        if lpn > 0:
                            n_cap = f_risk * (free + b) / lpn
                        if nne_a[i]:
                            n_cap = min(n_cap, gross)
                        lt_eff = min(lt, n_cap / b)
                        cur = gross / b
                        quiet = (cur <= lt_eff * up and not cur < lt_eff * down
                                 and abs(ht - h_cur) < band
                                 and not (proxy and core.instrument_switch(
                                     ps, hi_a[i], ps.held_ok(i))))
                    if quiet:
                        nq = q * c
                        rec.extend((pnl_t, nq, nq / b if b > 0 else 0.0, h_rec, inst, fees,
                                    fund, traded))
                        equity[i] = free + b
                        continue
                    # marked here: the decision at the close by the core
                    ps.bucket, ps.pnl, ps.funding = b, pnl_t, fund
                    free = core.allocate(ps, i, free, free + b, share)
                    free = core.rebalance(ps, i, cl, tiers, r, free, free + b, share, lt, ht,
                                          ps.sig[i], ps.prob[i], ps.hi_arr[i], ps.hb_arr[i],
                                          ps.hr_arr[i], lpn_a[i], nne_a[i], ps.held_ok(i))
                    equity[i] = free + ps.bucket
                    q2 = ps.main_q
                    nq = q2 * cl_m[i]
                    b2 = ps.bucket
                    rec.extend((ps.pnl, nq, nq / b2 if b2 > 0 else 0.0,
                                ps.h_cur if q2 > 0 else 0.0,
                                ps.hinst if q2 > 0 and ps.hedge_q > 0 else -1,
                                ps.fees, ps.funding, ps.traded))
                    stale = True
                    continue
        if not stale:  # the quiet bars' marks, back into the position
            ps.bucket, ps.pnl, ps.funding = b, pnl_t, fund
        free = _bar(book, i, o, hi, lo, cl, fr, tiers, r, free, share, equity, False)
        stale = True
    if not stale:
        ps.bucket, ps.pnl, ps.funding = b, pnl_t, fund


def single_market(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                  funding_rate: np.ndarray, tiers: list[MarginTier],
                  proxies: Market | None = None) -> Market:
    """The market of one position: its perp (index 0), then the ``proxies`` (1, 2, ...)."""
    rows = [np.asarray(a, dtype=float) for a in (open_, high, low, close, funding_rate)]
    names, tier_list = ["main"], [list(tiers)]
    if proxies is not None:
        rows = [np.vstack([r, getattr(proxies, a)]) for r, a in
                zip(rows, ("open", "high", "low", "close", "funding_rate"), strict=True)]
        names += proxies.names
        tier_list += proxies.tiers
    else:
        rows = [r[None, :] for r in rows]
    return Market(names, *rows, tiers=tier_list)


def simulate(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
             funding_rate: np.ndarray, target_leverage: np.ndarray, target_hedge: np.ndarray,
             sigma_h: np.ndarray, cascade_prob: np.ndarray, *, side: str, tiers: list[MarginTier],
             policy: PolicyConfig, proxies: Market | None = None, **kw: Any) -> SimResult:
    """Simulate one position (a book of one); NaN targets mean 'keep the position as it is'.

    ``funding_rate[i]`` settles at the close of bar i (0 when none). ``sigma_h``/``cascade_prob``
    feed the no-trade band's benefit estimate (NaN: floor tail weight and a 0 benefit).
    ``proxies`` holds the proxy perps a hedge may use (``hedge_instrument`` codes 1, 2, ... index
    them in order; 0 is the same perp). Equity is the account's. The other keywords are
    :func:`simulate_on`'s.
    """
    market = single_market(open_, high, low, close, funding_rate, tiers, proxies)
    return simulate_on(market, target_leverage, target_hedge, sigma_h, cascade_prob, side=side,
                       policy=policy, **kw)


def simulate_on(market: Market, target_leverage: np.ndarray, target_hedge: np.ndarray,
                sigma_h: np.ndarray, cascade_prob: np.ndarray, *, side: str,
                policy: PolicyConfig, initial_equity: float = 10_000.0,
                margin_fraction: float = 0.5, leverage_tolerance: float = 0.1,
                loss_per_notional: np.ndarray | None = None,
                no_new_exposure: np.ndarray | None = None, stops: bool = False,
                stop_cooldown: int = 24, hedge_instrument: np.ndarray | None = None,
                hedge_beta: np.ndarray | None = None,
                hedge_r2: np.ndarray | None = None,
                hedge_ok: dict[int, np.ndarray] | None = None,
                hedge_hold: HoldRule | None = None) -> SimResult:
    """:func:`simulate` on a :func:`single_market` built once (many strategies share it);
    ``hedge_ok``: per proxy code (its row), the bars it qualifies as a hedge."""
    plan = PositionPlan(0, np.asarray(target_leverage, dtype=float),
                        np.asarray(target_hedge, dtype=float), np.asarray(sigma_h, dtype=float),
                        np.asarray(cascade_prob, dtype=float), side=side,
                        hedge_instrument=None if hedge_instrument is None
                        else np.asarray(hedge_instrument, dtype=int),
                        hedge_beta=hedge_beta, hedge_r2=hedge_r2, hedge_ok=hedge_ok,
                        loss_per_notional=loss_per_notional, no_new_exposure=no_new_exposure,
                        stops=stops, hedge_hold=hedge_hold)
    res = simulate_book(market, [plan], policy=policy, initial_equity=initial_equity,
                        margin_fraction=margin_fraction, leverage_tolerance=leverage_tolerance,
                        stop_cooldown=stop_cooldown)
    r = res.positions[0]
    r.equity = res.equity
    return r
