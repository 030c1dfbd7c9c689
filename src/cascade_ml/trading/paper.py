"""The reference path: the trading core driven one bar at a time, for the live paper book.

``PaperTrader`` holds the account the backtest engine simulates (free cash and one isolated
position per symbol, :class:`cascade_ml.trading.core.PositionState`) and applies, at each bar,
exactly the engine's functions: :meth:`settle` (the protective stop and liquidation from the
bar's high and low, marks and funding), then per symbol :meth:`rebalance` with the policy's
decision for that bar. What changed becomes orders (:mod:`cascade_ml.trading.orders`) that the
executor fills and the book records, so the book's equity is the engine's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cascade_ml.errors import CascadeError
from cascade_ml.policy import failsafe, rules
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.policy.schemas import CrossAsset, Decision, Position
from cascade_ml.trading import core
from cascade_ml.trading.config import TradingConfig
from cascade_ml.trading.margin import Tiers
from cascade_ml.trading.orders import Legs, OrderIntent, orders_between
from cascade_ml.trading.types import Side


@dataclass(frozen=True)
class BarPrices:
    """One instrument over one bar: the previous close, the bar's open, high, low and close,
    and the funding rate settling at its close (0 when none)."""

    prev_close: float
    open: float
    high: float
    low: float
    close: float
    funding_rate: float = 0.0


def funding_rate_at(rates: pd.Series | None, close: pd.Timestamp, bar: pd.Timedelta) -> float:
    """The rate settling at a bar's ``close``: settlement times snapped down to the bar grid, as
    the backtest aligns them (``backtest.data.funding_per_bar``); 0 when none."""
    if rates is None or rates.empty:
        return 0.0
    near = rates[(rates.index >= close) & (rates.index < close + bar)].dropna()
    return float(near.sum())


def bar_prices(bars: Mapping[str, pd.DataFrame], rates: Mapping[str, pd.Series],
               bar: pd.Timestamp, interval: pd.Timedelta,
               marks: Mapping[str, float]) -> dict[str, BarPrices]:
    """Every instrument's bar ``bar`` (its open time) from its candles, the close before it and
    the funding rate settling at its close; a missing candle is a flat bar at ``marks`` (the
    last close known)."""
    out = {}
    for name, frame in bars.items():
        if name not in marks:
            continue
        before = frame["close"][frame.index < bar].dropna()
        prev = float(before.iloc[-1]) if len(before) else float(marks[name])
        ohlc = (frame.loc[bar, ["open", "high", "low", "close"]].to_numpy(float)
                if bar in frame.index else np.full(4, np.nan))
        if not np.isfinite(ohlc).all():
            ohlc = np.full(4, float(marks[name]))
        out[name] = BarPrices(prev, *(float(v) for v in ohlc),
                              funding_rate_at(rates.get(name), bar + interval, interval))
    return out


@dataclass(frozen=True)
class Settlement:
    """What a bar did to one symbol's position before its close's decision."""

    symbol: str
    event: str                      # "flat", "held", "stop" or "liquidation"
    orders: tuple[OrderIntent, ...]  # the stop's or the liquidation's closing orders
    funding: bool                   # legs were held when the bar's funding settled

    @property
    def closed(self) -> bool:
        return self.event in ("stop", "liquidation")


@dataclass(frozen=True)
class Targets:
    """The decision of one bar in the core's terms."""

    leverage: float
    hedge: float
    instrument: str
    beta: float
    r2: float
    loss_per_notional: float
    no_new_exposure: bool
    sigma_h: float
    cascade_prob: float
    qualified: frozenset[str] = frozenset()  # BTC/ETH proxies that qualify on this bar


def targets_from_decision(decision: Decision, symbol: str, sigma_h: float | None,
                          cascade_prob: float | None, trading: TradingConfig,
                          policy: PolicyConfig, cross: CrossAsset | None = None) -> Targets:
    """The bot's targets from a decision, as the backtest reads its policy columns: leverage
    ``min(trading.leverage, leverage_cap)``, the hedge in its instrument, the risk-budget loss
    per notional (the fail-safe's at the worst sane forecast), no new exposure when failing
    safe, and the proxies that qualify by the decision's ``cross`` inputs
    (``rules.proxy_qualifies``; none when unknown: a held proxy hedge the decision no longer
    names is then moved, ``core.instrument_switch``)."""
    sig = sigma_h if sigma_h is not None and math.isfinite(sigma_h) else 0.0
    prob = cascade_prob if cascade_prob is not None and math.isfinite(cascade_prob) else 0.0
    r2 = decision.hedge_effectiveness
    # a held hedge (the move does not pay under the objective) stays where it is
    hedge = (decision.current_hedge_ratio if decision.binding.get("hedge") == "held"
             else decision.hedge_ratio)
    lpn = (failsafe.loss_per_notional(policy) if decision.fail_safe
           or decision.loss_per_notional is None else decision.loss_per_notional)
    instrument = symbol if decision.hedge_instrument == "same_perp" else decision.hedge_instrument
    qualified = frozenset() if cross is None else frozenset(
        p for p in rules.INSTRUMENTS[1:]
        if rules.proxy_qualifies(*(math.nan if v is None else v for v in cross.proxy(p.lower())),
                                 policy))
    return Targets(min(trading.leverage, decision.leverage_cap), hedge, instrument,
                   decision.hedge_beta, r2, lpn, decision.fail_safe, sig, prob, qualified)


def switch_note(old: str, new: str, symbol: str, forced: bool, policy: PolicyConfig) -> str:
    """The sentence a decision's reasons gain when the trading core moved the held hedge from
    ``old`` to ``new`` (``core.instrument_switch``)."""
    def name(n: str) -> str:
        return f"the same perp ({n})" if n == symbol else f"the {n} perp"

    why = (f"inside the no-trade band: {old} no longer qualifies as a proxy (beta not positive, "
           f"or R^2 below the {policy.min_cross_hedge_r2:.2f} minimum or the same perp's "
           f"{policy.same_perp_effectiveness:.2f}, or unknown)" if forced else
           "with the hedge ratio's own rebalance (a switch between two qualifying instruments "
           "waits for it)")
    return f"hedge moved from {name(old)} to {name(new)} {why}; both legs pay the fee"


class _Two:
    """A price row over two bars: index ``n`` is this bar, anything else the previous one."""

    __slots__ = ("cur", "n", "prev")

    def __init__(self, n: int, prev: float, cur: float) -> None:
        self.n, self.prev, self.cur = n, prev, cur

    def __getitem__(self, i: int) -> float:
        return self.cur if i == self.n else self.prev


class PaperTrader:
    """The account of the paper book (see the module docstring). ``instruments`` are every
    perp a leg may live in (the symbols and the hedge proxies); bars are numbered (``bar_no``:
    bar open time / bar length) so the stop's cooldown counts bars as the backtest does."""

    def __init__(self, symbols: Sequence[str], instruments: Sequence[str], side: Side,
                 trading: TradingConfig, policy: PolicyConfig) -> None:
        names = list(dict.fromkeys([*symbols, *instruments]))
        self.symbols, self.names = list(symbols), names
        self.index = {n: k for k, n in enumerate(names)}
        self.side, self.trading, self.policy = side, trading, policy
        self.tiers = [Tiers(policy.tiers_for(n)) for n in names]
        self.rules = core.CoreRules.of(policy, leverage_tolerance=trading.leverage_tolerance,
                                       stop_cooldown=trading.stop_cooldown_bars)
        self.share = trading.margin_fraction  # of each position's slice (position_equity)
        self.free = trading.initial_equity
        self.total = self.free
        self.last_bar: int | None = None
        self.positions = {s: core.PositionState(self.index[s], side, trading.stops)
                          for s in self.symbols}
        self.notes: dict[str, str] = {}  # symbol -> why its last rebalance moved the hedge's
        # instrument (none: it did not), for the decision's reasons (:meth:`explain`)

    # ------------------------------------------------------------------ views
    @property
    def equity(self) -> float:
        return self.free + sum(ps.bucket for ps in self.positions.values())

    @property
    def position_equity(self) -> float:
        """The equity each position's rules read (margin, size cap, stop): its slice of the
        account at the last settled close (:func:`core.position_equity`)."""
        return core.position_equity(self.total, len(self.symbols))

    def legs(self, symbol: str) -> dict[tuple[str, str], float]:
        """Signed quantities of the symbol's legs (long > 0)."""
        ps = self.positions[symbol]
        out: dict[tuple[str, str], float] = {}
        if ps.main_q > 0:
            out[("main", symbol)] = ps.s * ps.main_q
        if ps.hedge_q > 0:
            out[("hedge", self.names[ps.hinst])] = -ps.s * ps.hedge_q
        return out

    def policy_position(self, symbol: str, price: float) -> Position:
        """The position the policy is asked about: the bot's intended one (``trading.leverage``
        on its margin share at the starting equity, which picks the margin tier), as the
        backtest asks it, with the hedge ratio held now."""
        ps = self.positions[symbol]
        n = len(self.symbols)
        return Position(side=self.side, notional=self.trading.nominal_notional(n),
                        entry_price=price, mark_price=price, leverage=self.trading.leverage,
                        margin_mode="isolated",
                        hedge_ratio=min(ps.h_cur, 1.0) if ps.main_q > 0 else 0.0)

    # ------------------------------------------------------------------ the bar
    def settle(self, bar_no: int, prices: Mapping[str, BarPrices]) -> dict[str, Settlement]:
        """Bar ``bar_no`` from its open to its close for every held position: stop,
        liquidation, marks and funding (``core.settle``). Call once per bar, before the
        decisions at its close."""
        if self.last_bar is not None and bar_no <= self.last_bar:
            raise CascadeError(f"bar {bar_no} is not after the last one settled "
                               f"({self.last_bar})", "paper trader")
        rows = {k: self._rows(bar_no, prices.get(n)) for k, n in enumerate(self.names)}
        o, hi, lo, cl, fr = ([rows[k][j] for k in range(len(self.names))] for j in range(5))
        out = {}
        for symbol, ps in self.positions.items():
            if ps.main_q == 0.0:
                out[symbol] = Settlement(symbol, "flat", (), False)
                continue
            before = self.legs(symbol)
            m, j = ps.main, ps.hinst
            s = ps.s
            left = ps.bucket + s * ps.main_q * (cl[m][bar_no] - cl[m][bar_no - 1]) \
                - s * ps.hedge_q * (cl[j][bar_no] - cl[j][bar_no - 1])
            event, freed, fill, hfill = core.settle(ps, bar_no, o, hi, lo, cl, fr, self.tiers,
                                                    self.rules)
            self.free += freed
            if event == core.HELD:
                out[symbol] = Settlement(symbol, "held", (), True)
                continue
            kind = "stop" if event == core.STOPPED else "liquidation"
            at = {symbol: fill, self.names[j]: hfill}
            fees = None if kind == "stop" else {"main": left, "hedge": 0.0}
            out[symbol] = Settlement(symbol, kind, tuple(orders_between(
                before, {}, kind=kind, prices=at, fees=fees)), False)
        self.total = self.equity
        self.last_bar = bar_no
        return out

    def rebalance(self, symbol: str, bar_no: int, targets: Targets,
                  closes: Mapping[str, float]) -> list[OrderIntent]:
        """The decision at the close of ``bar_no`` applied to ``symbol``'s position
        (``core.allocate`` + ``core.rebalance``); returns the orders, at the closes."""
        if self.last_bar != bar_no:
            raise CascadeError(f"bar {bar_no} was not settled before its decision",
                               "paper trader")
        ps = self.positions[symbol]
        cl = [_Two(bar_no, math.nan, float(closes.get(n, math.nan))) for n in self.names]
        ti = self.index.get(targets.instrument)
        if ti is None:
            raise CascadeError(f"the hedge instrument {targets.instrument} has no prices",
                               f"paper trader {symbol}")
        before = self.legs(symbol)
        held, forced = ps.hinst if ps.hedge_q > 0 else None, ps.forced
        alloc = self.position_equity
        self.free = core.allocate(ps, bar_no, self.free, alloc, self.share)
        self.free = core.rebalance(
            ps, bar_no, cl, self.tiers, self.rules, self.free, alloc, self.share,
            targets.leverage, targets.hedge, targets.sigma_h, targets.cascade_prob, ti,
            targets.beta, targets.r2, targets.loss_per_notional, targets.no_new_exposure,
            self.names[ps.hinst] in targets.qualified)
        self.notes.pop(symbol, None)
        if held is not None and ps.hedge_q > 0 and ps.hinst != held:
            self.notes[symbol] = switch_note(self.names[held], self.names[ps.hinst], symbol,
                                             ps.forced > forced, self.policy)
        return orders_between(before, self.legs(symbol),
                              prices={n: float(closes.get(n, math.nan)) for n in self.names})

    def explain(self, symbol: str, decision: Decision) -> Decision:
        """``decision`` with the reason its last :meth:`rebalance` moved the hedge's instrument
        (:func:`switch_note`) appended; as it was when the instrument did not move."""
        note = self.notes.get(symbol)
        if note is None:
            return decision
        return decision.model_copy(update={"reasons": [*decision.reasons, note]})

    def adopt(self, symbol: str, legs: Legs) -> None:
        """Take the book's legs as held (orders that were refused or not filled, in testnet
        or live mode): quantities from the book, margin and stop as they are."""
        ps = self.positions[symbol]
        ps.main_q = abs(legs.get(("main", symbol), 0.0))
        hedges = {inst: q for (leg, inst), q in legs.items() if leg == "hedge" and abs(q) > 0}
        if hedges:
            inst, q = next(iter(hedges.items()))
            ps.hinst, ps.hedge_q = self.index.get(inst, ps.main), abs(q)
        else:
            ps.hedge_q = 0.0
        if ps.main_q == 0.0:
            ps.stop = math.nan

    @staticmethod
    def _rows(n: int, p: BarPrices | None) -> tuple[_Two, ...]:
        if p is None:
            nan = math.nan
            return (_Two(n, nan, nan),) * 4 + (_Two(n, 0.0, 0.0),)
        return (_Two(n, math.nan, p.open), _Two(n, math.nan, p.high), _Two(n, math.nan, p.low),
                _Two(n, p.prev_close, p.close), _Two(n, 0.0, p.funding_rate))

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"free": self.free, "total": self.total, "last_bar": self.last_bar,
                "positions": {s: ps.to_dict() for s, ps in self.positions.items()},
                "instruments": {s: self.names[ps.hinst] for s, ps in self.positions.items()}}

    def load(self, raw: dict[str, Any]) -> PaperTrader:
        """Restore a saved account (a symbol new to the task starts flat)."""
        self.free, self.total, self.last_bar = raw["free"], raw["total"], raw["last_bar"]
        for symbol, state in raw["positions"].items():
            if symbol in self.positions:
                ps = self.positions[symbol].load(state)
                ps.hinst = self.index[raw["instruments"][symbol]]
        return self
