"""One position of the bot, bar by bar: the trading core's rules, written once.

A position is a main leg (long by default) and an opposite hedge leg in the same perp (Binance
hedge mode) or, beta-weighted, in a proxy perp (BTC, ETH), both on one isolated margin bucket
(:mod:`cascade_ml.trading.margin`). Bar ``i`` runs from its open to its close:

1. :func:`settle` (inside the bar, then at its close):
   - the protective stop: when the bar's adverse extreme (low for a long, high for a short)
     reaches it, both legs are closed at the stop, or at the open when the bar gapped through
     it (a proxy leg at its previous close moved by beta times the main leg's move, held inside
     its bar's range), paying :func:`fee + half spread <cascade_ml.trading.costs>` on both;
     unless the bucket was below its maintenance margin at that point: then it is a liquidation.
     After a stop the position stays flat for ``stop_cooldown`` bars;
   - liquidation: a same-perp bucket is liquidated when the bar's low or high reaches the
     liquidation price of both legs with tiered maintenance margin (on the side where equity
     less maintenance margin falls: the low for a net long, but the high for a near-full
     hedge, whose two legs' margin grows faster with the price than its small net position
     earns); a proxy bucket when its equity falls to its maintenance margin with both perps
     at their lows, or both at their highs. A liquidated bucket's equity is lost and the
     position re-enters from the next bar;
   - otherwise both legs are marked to the close and pay funding settling at that close, each
     at its own perp's rate (:func:`cascade_ml.trading.funding.funding_amount`).
2. :func:`allocate` then :func:`rebalance` at the close, with the decision for that bar, each on
   the position's own slice of the account's equity (:func:`position_equity`: equity over the
   positions; "equity" below is that slice): a flat
   position (re)enters with ``margin_fraction`` of its equity as margin; the
   leverage is reset when it sits above the bar's cap (``min(target, size cap / bucket)``: never
   tolerated, cut back to the cap at that close) or more than ``leverage_tolerance`` below it
   (the tolerance is one-sided: it only spares re-levering up); the bucket is then reset to its
   margin share of its equity, a free transfer. The hedge moves only when
   ``policy.rules.rebalance_test`` (the no-trade band and the benefit-vs-cost test) passes (on
   a fail-safe bar the benefit test does not apply, as in ``decide``: outside the band the
   hedge moves to the fail-safe's), or when it is held in a BTC/ETH proxy that no longer
   qualifies (``rules.proxy_qualifies``) and the decision names another instrument: then it
   moves to the decision's instrument and ratio at once, inside the band too
   (:func:`instrument_switch`); a switch between two instruments that both qualify waits for
   the ratio's own trade. A switch pays the fee on both hedge legs (the old one closed, the
   new one opened) as any trade does. The main leg is held
   to the risk-budget size cap ``max_risk_fraction x equity / loss_per_notional``; while the
   policy fails safe it never grows. Traded notional pays ``policy.trade_cost``. Every trade
   resets the stop: from the entry price, where the hedged position (exposure ``1 - h R^2``)
   loses ``max_risk_fraction`` of equity, but no farther than ``stop_liquidation_buffer`` of
   the way to the liquidation price (the rule of ``decide``). With ``policy.stop_reset_bars``
   the stop is measured from the trade's close instead, and re-anchored at the close every
   ``stop_reset_bars`` bars while the position is held: the 2 % rule bounds the loss from each
   anchor (on the equity then), not the loss since the first entry.

Prices are lists per instrument (``cl[k][i]``), so the backtest passes whole columns and the
paper book a window of two bars. Plain floats: a position-bar costs a few microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cascade_ml.policy import rules
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.trading.funding import funding_amount
from cascade_ml.trading.margin import Tiers, liquidation_bounds, maintenance_margin

HELD, STOPPED, LIQUIDATED = 0, 1, 2
_ROUNDING = 1e-6  # relative leverage above the cap taken as rounding (fee sizing's residue)
_FEE_PASSES = 3
Rows = list[list[float]]


@dataclass(frozen=True, slots=True)
class CoreRules:
    """The numbers the core reads, taken once from the policy and the trading section."""

    policy: PolicyConfig
    cost_rate: float
    f_risk: float
    buffer: float
    band: float
    leverage_tolerance: float
    stop_cooldown: int
    stop_reset: int = 0  # policy.stop_reset_bars: re-anchor the stop this often (0: never)

    @classmethod
    def of(cls, policy: PolicyConfig, *, leverage_tolerance: float,
           stop_cooldown: int) -> CoreRules:
        return cls(policy, policy.trade_cost, policy.max_risk_fraction,
                   policy.stop_liquidation_buffer,
                   policy.no_trade_band - 1e-12,  # rules.rebalance_test never passes below it
                   leverage_tolerance, stop_cooldown, policy.stop_reset_bars)


class PositionState:
    """Mutable state of one position (instrument indices into the price rows)."""

    __slots__ = ("main", "s", "stops_on", "bucket", "main_q", "hedge_q", "hinst", "hbeta",
                 "hr2", "h_cur", "entry", "stop", "cool_until", "pnl", "fees", "funding",
                 "traded", "trades", "liqs", "stops", "anchor_at", "switches", "forced")
    _SAVED = __slots__[3:]

    def __init__(self, main: int, side: str = "long", stops: bool = False) -> None:
        self.main = main
        self.s = 1.0 if side == "long" else -1.0
        self.stops_on = stops
        self.bucket = 0.0
        self.main_q = self.hedge_q = 0.0
        self.hinst, self.hbeta, self.hr2, self.h_cur = main, 1.0, 1.0, 0.0
        self.entry = 0.0
        self.stop = math.nan
        self.cool_until = 0
        self.pnl = self.fees = self.funding = self.traded = 0.0
        self.trades = 0
        self.liqs: list[int] = []
        self.stops: list[int] = []
        self.anchor_at = 0  # the bar from which the stop is re-anchored (stop_reset > 0)
        self.switches = 0  # trades that moved a held hedge to another instrument
        self.forced = 0    # trades that left a held proxy no longer qualifying

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (NaN stop as None)."""
        out = {k: getattr(self, k) for k in self._SAVED}
        out["stop"] = None if math.isnan(self.stop) else self.stop
        return out

    def load(self, raw: dict[str, Any]) -> PositionState:
        for key in self._SAVED:
            setattr(self, key, raw.get(key, getattr(self, key)))  # older states: defaults
        self.stop = math.nan if raw["stop"] is None else float(raw["stop"])
        self.liqs, self.stops = list(raw["liqs"]), list(raw["stops"])
        return self

    def flatten(self) -> None:
        self.bucket = 0.0
        self.main_q = self.hedge_q = 0.0
        self.stop = math.nan


def settle(ps: PositionState, i: int, o: Rows, hi: Rows, lo: Rows, cl: Rows, fr: Rows,
           tiers: list[Tiers], r: CoreRules) -> tuple[int, float, float, float]:
    """Bar ``i`` of a held position (see the module docstring): returns (``HELD``, ``STOPPED``
    or ``LIQUIDATED``; cash the bucket returns to the account; main and hedge fill prices of a
    stop)."""
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
        if eq_f > maintenance_margin(ps.main_q, fill, p0, tm) + \
                maintenance_margin(ps.hedge_q, hfill, h0, th):
            gross = ps.main_q * fill + ps.hedge_q * hfill
            cost = gross * r.cost_rate
            ps.traded += gross
            ps.fees += cost
            ps.pnl += pnl - cost
            ps.trades += 1
            ps.flatten()
            ps.stops.append(i)
            ps.cool_until = i + r.stop_cooldown
            return STOPPED, eq_f - cost, fill, hfill
        liquidated = True  # maintenance margin was reached before the stop price
    if liquidated is None:
        if same:
            long_q, short_q = (ps.main_q, ps.hedge_q) if s > 0 else (ps.hedge_q, ps.main_q)
            low, high = liquidation_bounds(long_q, short_q, ps.bucket, p0, tm)
            liquidated = lo[m][i] <= low or hi[m][i] >= high  # either side (a near-full hedge)
        else:
            liquidated = any(
                ps.bucket + s * ps.main_q * (xm - p0) - s * ps.hedge_q * (xh - h0)
                <= maintenance_margin(ps.main_q, xm, p0, tm)
                + maintenance_margin(ps.hedge_q, xh, h0, th)
                for xm, xh in ((lo[m][i], lo[j][i]), (hi[m][i], hi[j][i])))
    if liquidated:
        ps.liqs.append(i)
        ps.pnl -= ps.bucket
        ps.flatten()
        ps.cool_until = i + 1  # re-enters from the next bar (one order per leg and bar)
        return LIQUIDATED, 0.0, c, hc
    pnl = s * ps.main_q * (c - p0) - s * ps.hedge_q * (hc - h0)
    pay = -(funding_amount(s * ps.main_q, c, fr[m][i])
            + funding_amount(-s * ps.hedge_q, hc, fr[j][i]))
    ps.bucket += pnl - pay
    ps.funding += pay
    ps.pnl += pnl - pay
    return HELD, 0.0, c, hc


def position_equity(account: float, positions: int) -> float:
    """The equity one position's rules read in an account of ``positions`` positions: an equal
    slice (the slices sum to the account). Its margin bucket is ``margin_fraction`` of the
    slice, and its size cap and its stop's loss ``max_risk_fraction`` of it, so a book holds
    what as many one-position accounts of one slice each would (one position: the account).
    Read on the whole account instead, each of 21 positions could lose 2 % of the account on
    one (correlated) tail move, and its leverage cap, not its size cap, bound it."""
    return account / max(positions, 1)


def allocate(ps: PositionState, i: int, free: float, total: float, share: float) -> float:
    """A flat position past its cooldown takes its margin ``share`` of ``total`` (its equity,
    :func:`position_equity`); returns free cash."""
    if ps.main_q == 0.0 and ps.bucket <= 0.0 and i >= ps.cool_until and free > 0:
        take = min(total * share, free)
        ps.bucket += take
        free -= take
    return free


def instrument_switch(ps: PositionState, ti: int, held_ok: bool) -> bool:
    """Whether the held hedge must move to the decided instrument ``ti`` whatever the no-trade
    band says: it is held (a quantity) in a proxy other than ``ti`` that no longer qualifies
    (``held_ok``: ``rules.proxy_qualifies`` of the held proxy on this bar). Its R^2 is what
    sized the position's exposure and stop; below the policy's minimum that hedge is basis
    risk the policy did not accept. The same perp always qualifies, and a switch between two
    instruments that both do waits for the ratio's own trade: closing one hedge and opening
    another costs both legs' fees (twice the hedge's notional at equal betas) for a basis-risk
    change both R^2 already bound, and switching on every crossing of two R^2s would churn."""
    return not held_ok and ps.hedge_q > 0.0 and ps.hinst != ti and ps.hinst != ps.main


def rebalance(ps: PositionState, i: int, cl: Rows, tiers: list[Tiers], r: CoreRules,
              free: float, total: float, share: float, lt: float, ht: float, sig: float,
              prob: float, ti: int, tb: float, tr: float, lpn: float, nne: bool,
              held_ok: bool = False) -> float:
    """Apply the bar's targets at its close (leverage ``lt``, hedge ``ht`` in instrument ``ti``
    with beta ``tb`` and effectiveness ``tr``, loss per notional ``lpn`` for the size cap (NaN
    or <= 0: none), no new exposure ``nne``; ``sig``/``prob`` feed the benefit test), on the
    position's equity ``total`` (:func:`position_equity`) with margin ``share`` of it;
    ``held_ok``: the proxy the hedge is held in still qualifies (:func:`instrument_switch`;
    False, the default, when unknown: a proxy the decision no longer names is left). NaN
    targets keep the position. Returns free cash."""
    if r.stop_reset and ps.stops_on and ps.main_q > 0 and i >= ps.anchor_at:
        a = cl[ps.main][i]  # the holding window is over: the stop is measured from here
        ps.stop = stop_price(ps, tiers, a, r.f_risk * total, r.buffer, anchor=a)
        ps.anchor_at = i + r.stop_reset
    if not (ps.bucket > 0 and lt == lt and ht == ht and i >= ps.cool_until):
        return free
    m = ps.main
    c = cl[m][i]
    gross = ps.main_q * c
    n_cap = math.inf
    if lpn > 0:
        n_cap = r.f_risk * total / lpn
    if nne:
        n_cap = min(n_cap, gross)
    lt_eff = min(lt, n_cap / ps.bucket)
    cur_lev = gross / ps.bucket
    # one-sided: above the cap is never tolerated (only float rounding); below, the tolerance
    relever = (ps.main_q == 0.0 or cur_lev > lt_eff * (1.0 + _ROUNDING)
               or cur_lev < lt_eff * (1.0 - r.leverage_tolerance))
    switch = instrument_switch(ps, ti, held_ok)
    if not relever and not switch and abs(ht - ps.h_cur) < r.band:
        return free  # inside both no-trade bands: nothing trades (most bars)
    if ps.main_q == 0.0 or switch:  # a proxy that no longer qualifies: moved, band or not
        move_hedge = True
    elif abs(ht - ps.h_cur) < r.band:  # inside the no-trade band: the test fails
        move_hedge = False
    elif nne:  # failing safe: the benefit test does not apply (decide's rule)
        move_hedge = True
    else:
        move_hedge = bool(rules.rebalance_test(
            ht, ps.h_cur, sig, prob, max(gross, lt_eff * ps.bucket), tr, tb, r.policy)[0])
    if move_hedge:
        new_h, inst, beta, r2 = ht, ti, tb, tr
    else:
        new_h, inst, beta, r2 = ps.h_cur, ps.hinst, ps.hbeta, ps.hr2
    hc, old_hc, hq, mq = cl[inst][i], cl[ps.hinst][i], ps.hedge_q, ps.main_q

    def legs(q: float) -> tuple[float, float]:
        """The hedge quantity with main leg ``q``, and the notional both legs trade."""
        if move_hedge:
            qh = new_h * q * c * beta / hc
        elif relever:  # resize the held hedge with the main leg, same ratio
            qh = hq * q / mq
        else:
            qh = hq
        dh = abs(qh - hq) * hc if inst == ps.hinst else hq * old_hc + qh * hc
        return qh, abs(q - mq) * c + dh

    if relever:
        tot_here = ps.bucket + free
        target_bucket = min(total * share, tot_here)
        free, ps.bucket = tot_here - target_bucket, target_bucket
        # the trade's fee comes out of the bucket (and the equity): size the main leg net of
        # it, so the position sits at its cap after paying (each pass shrinks the error ~200x)
        cost = 0.0
        for _ in range(_FEE_PASSES):
            cap = lt * (ps.bucket - cost)
            if lpn > 0:
                cap = min(cap, r.f_risk * (total - cost) / lpn)
            if nne:
                cap = min(cap, gross)
            new_main = cap / c
            new_hedge, traded = legs(new_main)
            cost = traded * r.cost_rate
    else:
        new_main = mq
        new_hedge, traded = legs(new_main)
    if traded > 1e-9:
        cost = traded * r.cost_rate
        ps.bucket -= cost
        ps.fees += cost
        ps.pnl -= cost
        ps.traded += traded
        ps.trades += 1
        if new_hedge > 0.0 and hq > 0.0 and inst != ps.hinst:
            ps.switches += 1
        ps.forced += switch
        if new_main > ps.main_q:
            ps.entry = (ps.entry * ps.main_q + c * (new_main - ps.main_q)) / new_main
        elif new_main == 0.0:
            ps.entry = 0.0
        ps.main_q, ps.hedge_q = new_main, new_hedge
        ps.hinst, ps.hbeta, ps.hr2, ps.h_cur = inst, beta, r2, new_h
        anchor = c if r.stop_reset else None
        ps.stop = stop_price(ps, tiers, c, r.f_risk * total, r.buffer, anchor) \
            if ps.stops_on and new_main > 0 else math.nan
        ps.anchor_at = i + r.stop_reset
    return free


def stop_price(ps: PositionState, tiers: list[Tiers], c: float, max_loss: float,
               buffer: float, anchor: float | None = None) -> float:
    """The protective stop after a trade: ``rules.stop_distance`` from the entry price (or from
    ``anchor``, the close it is re-anchored at), with the bucket's liquidation price (the main
    leg alone for a proxy hedge: conservative)."""
    s = ps.s
    if ps.hinst == ps.main:
        long_q, short_q = (ps.main_q, ps.hedge_q) if s > 0 else (ps.hedge_q, ps.main_q)
    else:
        long_q, short_q = (ps.main_q, 0.0) if s > 0 else (0.0, ps.main_q)
    low, high = liquidation_bounds(long_q, short_q, ps.bucket, c, tiers[ps.main])
    x = low if s > 0 else high  # the adverse side: a near-full hedge has none on it
    a = ps.entry if anchor is None else anchor
    liq_dist = s * (a - x) / a if 0.0 < x < math.inf else math.inf
    exposure = 1.0 - ps.h_cur * ps.hr2
    notional = ps.main_q * a
    d = min(max_loss / (notional * exposure) if exposure > 0 else math.inf, buffer * liq_dist)
    if s > 0:
        return a * (1 - d) if d < 1 else math.nan
    return a * (1 + d) if d < math.inf else math.nan
