"""Execution: the trading core's orders -> fills, written to the book per cycle.

- What to trade is decided by the trading core (``cascade_ml.trading.paper.PaperTrader``: the
  decision applied to the position, the protective stop and liquidation inside the bar); the
  executor only carries the orders out.
- ``Executor.run_cycle`` checks every order against the decision's caps before anything is
  sent: an order that would take a leg above the size cap or above leverage cap x equity is
  refused and the refusal, with its reason, is written to the book. Orders that only reduce a
  leg are always allowed (cutting risk must never be blocked).
- Modes: ``paper`` (default) fills each order at the price the trading core traded at (the bar
  close; the stop or the gapped open for a stop) moved half the spread against us, paying the
  policy's fee (``cascade_ml.trading.costs``), so the book is the backtest's; ``testnet`` and
  ``live`` send market orders with ccxt ``create_order``, and only when API keys are set in the
  environment (``CASCADE_ML_TESTNET_API_KEY`` / ``..._SECRET`` or ``CASCADE_ML_LIVE_...``;
  separate names so testnet runs can never pick up live keys). Testnet turns on ccxt's sandbox
  mode (Binance futures: its demo-trading venue, see ``route_to``); live turns both off.
- A cycle already in the book sends nothing (restart safety). Client order ids are derived
  from (symbol, bar, kind and leg, instrument), so reconciliation (``trading.reconcile``, at
  start and every cycle in testnet / live) finds an order that reached the exchange when the
  process died before the book's commit, and books it instead of sending it again. An order
  is sent once: only a 429/418 refusal is retried (``trading.retry``); a lost answer (timeout,
  5xx) is booked ``submitted`` and resolved from the exchange. A symbol whose book and
  exchange disagree beyond explanation is halted: its orders are refused with the reason.
- Protective stops (testnet / live, ``cascade_ml.trading.stops``): ``run_cycle(..., stop=...)``
  takes the trading core's stop price after the cycle (``PositionState.stop``); the executor
  keeps one reduce-only stop order per leg resting on the exchange at that price (moved beyond a
  small tolerance, cancelled when the leg goes flat). Before each cycle's orders it looks its
  stops up: a stop that fired is booked from the exchange's fill, once, and no closing order is
  sent for that leg. In paper mode the core fires the same stop inside the bar; nothing is sent,
  and the same stop orders are kept in the book's ``stop_orders`` (``stops.PaperStops``).
"""

from __future__ import annotations

import logging
import math
import os
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import ccxt
import pandas as pd

from cascade_ml.data.sources.exchange import make_exchange, market_symbol
from cascade_ml.errors import CascadeError
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.policy.schemas import Decision, Forecast
from cascade_ml.trading import retry
from cascade_ml.trading.book import (
    CycleRecord,
    CycleResult,
    FundingEvent,
    OrderOutcome,
    PaperBook,
    utc,
)
from cascade_ml.trading.costs import Fill, fee_rate, simulate_fill
from cascade_ml.trading.orders import OrderIntent
from cascade_ml.trading.stops import ExchangeStops, PaperStops, step_amount
from cascade_ml.trading.types import LegName, Mode, OrderKind, OrderSide

if typing.TYPE_CHECKING:
    from cascade_ml.trading.reconcile import Reconciler

log = logging.getLogger(__name__)

MODES: tuple[Mode, ...] = typing.get_args(Mode)
KEY_ENV = {"testnet": ("CASCADE_ML_TESTNET_API_KEY", "CASCADE_ML_TESTNET_API_SECRET"),
           "live": ("CASCADE_ML_LIVE_API_KEY", "CASCADE_ML_LIVE_API_SECRET")}
# Ask for the final state of a market order so its fill comes back with the answer.
ORDER_PARAMS = {"binanceusdm": {"newOrderRespType": "RESULT"}}
DEMO_INSTEAD_OF_SANDBOX = frozenset({"binance", "binanceusdm", "binancecoinm"})
_TOL = 1e-9
UNREADABLE = "the exchange could not be read to reconcile the book"
"""The halt of a cycle whose reconciliation failed (it judged nothing on the exchange)."""

PriceSource = Callable[[str], float]


def route_to(exchange: ccxt.Exchange, mode: Mode) -> None:
    """Point the exchange at its test venue for ``testnet`` and at production for ``live``.

    Testnet is ccxt's sandbox mode, except on Binance futures, where ccxt refuses private calls
    to the retired futures testnet and offers Binance's demo-trading venue instead.
    """
    demo = exchange.id in DEMO_INSTEAD_OF_SANDBOX
    if mode == "testnet":
        if demo:
            exchange.enable_demo_trading(True)
        else:
            exchange.set_sandbox_mode(True)
        return
    if demo and exchange.options.get("enableDemoTrading"):
        exchange.enable_demo_trading(False)
    if exchange.isSandboxModeEnabled:
        exchange.set_sandbox_mode(False)


_ID_CODE = {("trade", "main"): "m", ("trade", "hedge"): "h", ("stop", "main"): "s",
            ("stop", "hedge"): "t", ("liquidation", "main"): "x", ("liquidation", "hedge"): "y",
            ("resting", "main"): "p", ("resting", "hedge"): "q"}


def client_order_id(symbol: str, bar_ts: datetime | pd.Timestamp, leg: LegName,
                    instrument: str, kind: OrderKind | typing.Literal["resting"] = "trade") -> str:
    """A deterministic id (<= 36 characters, Binance's limit) for one order of one cycle; one
    letter names the leg and why the order exists (m/h: rebalance of the main/hedge leg, s/t:
    the protective stop's close by the cycle, x/y: a liquidation, p/q: the stop order resting on
    the exchange placed at that cycle)."""
    ms = int(pd.Timestamp(utc(bar_ts)).value // 1_000_000)
    return f"cml-{symbol[:8]}-{ms}-{_ID_CODE[(kind, leg)]}-{instrument[:8]}"


def _resting_id(symbol: str, bar_ts: datetime, leg: LegName, instrument: str) -> str:
    """The client id of a stop order resting on the exchange (or simulated so in paper)."""
    return client_order_id(symbol, bar_ts, leg, instrument, "resting")


def parse_client_order_id(cid: str) -> tuple[str, pd.Timestamp, str] | None:
    """(symbol prefix, bar, leg/kind letter) of an id made by :func:`client_order_id`; None
    for an id the loop did not make (an order placed by hand or by another program)."""
    parts = cid.split("-")
    if len(parts) != 5 or parts[0] != "cml" or not parts[2].isdigit():
        return None
    return parts[1], pd.Timestamp(int(parts[2]), unit="ms", tz="UTC"), parts[3]


def only_reduces(held: float, dq: float) -> bool:
    """Whether a trade of signed ``dq`` only reduces a position ``held`` (never crosses
    zero): the orders a one-way account sends ``reduceOnly``."""
    return abs(held) > _TOL and (held > 0) != (dq > 0) and abs(dq) <= abs(held) * (1 + _TOL)


def cap_violation(symbol: str, intent: OrderIntent, decision: Decision, held: float,
                  price: float, equity: float) -> str | None:
    """Why ``intent`` breaks the decision's caps, or None when it may go.

    ``held`` is the leg's signed quantity before the order; ``price`` marks the notional.
    """
    after = held + intent.signed_qty
    reduces = abs(after) <= abs(held) + _TOL and (abs(after) <= _TOL or (after > 0) == (held > 0))
    if reduces:
        return None
    notional = abs(after) * price
    what = (f"{intent.leg} {intent.side} {intent.qty:.6g} {intent.instrument} would take the "
            f"{intent.leg} leg of {symbol} to {notional:,.2f} notional")
    if notional > decision.size_cap_notional * (1 + _TOL):
        return f"{what}, above the size cap {decision.size_cap_notional:,.2f}"
    if equity <= 0:
        return f"{what} while the book's equity is {equity:,.2f}"
    if notional / equity > decision.leverage_cap * (1 + _TOL):
        return (f"{what} = {notional / equity:.2f}x equity {equity:,.2f}, above the leverage cap "
                f"{decision.leverage_cap:.2f}x")
    return None


class Executor:
    """Runs a cycle's orders in one mode and records the cycle in the book."""

    def __init__(self, book: PaperBook, *, mode: Mode = "paper",
                 policy: PolicyConfig | None = None, prices: PriceSource | None = None,
                 exchange: ccxt.Exchange | None = None, exchange_name: str = "binanceusdm",
                 env: Mapping[str, str] | None = None, hedge_mode: bool = False) -> None:
        if mode not in MODES:
            raise CascadeError(f"unknown execution mode {mode!r}; use one of {list(MODES)}")
        self.book = book
        self.mode = mode
        self.policy = policy or PolicyConfig()  # the fee and spread model
        self.prices = prices
        self.hedge_mode = hedge_mode
        self.stops: ExchangeStops | None = None
        # testnet / live: retries of exchange calls and the reconciler (trading.reconcile)
        self.backoff: retry.Backoff | None = None
        self.sleep: Callable[[float], None] = time.sleep
        self.reconciler: Reconciler | None = None
        if mode == "paper":
            self.exchange = exchange
            self.stops = PaperStops(book, hedge_mode=hedge_mode, client_id=_resting_id)
            return
        env = os.environ if env is None else env
        key_name, secret_name = KEY_ENV[mode]
        key, secret = env.get(key_name, ""), env.get(secret_name, "")
        if not key or not secret:
            raise CascadeError(f"{mode} trading needs the API key and secret in {key_name} and "
                               f"{secret_name}; none were set, so no order is sent", "execution",
                               hint="export them, or run in paper mode")
        self.exchange = exchange if exchange is not None else make_exchange(exchange_name)
        self.exchange.apiKey = key
        self.exchange.secret = secret
        # Orders need the markets only; with keys set ccxt would also load the wallet's coin
        # list (Binance: a signed /sapi call), one more private request that can fail.
        self.exchange.options["fetchCurrencies"] = False
        route_to(self.exchange, mode)
        self.stops = ExchangeStops(self.exchange, book, hedge_mode=hedge_mode, fee_of=self._fee,
                                   client_id=_resting_id, call=self._call)
        from cascade_ml.trading.reconcile import Reconciler

        self.reconciler = Reconciler(self)

    def _call(self, fn: Callable[..., object], *args: object, idempotent: bool) -> object:
        """An exchange call with this executor's retries (``trading.retry``)."""
        return retry.call(self.exchange, fn, *args, idempotent=idempotent,
                          backoff=self.backoff, sleep=self.sleep)

    # ------------------------------------------------------------------ prices
    def reference_price(self, instrument: str) -> float:
        """The next price: the price source's, else the exchange's last traded price."""
        if self.prices is None and self.exchange is None:
            raise CascadeError(f"no price for {instrument}: give the order its price, or the "
                               "executor a price source or an exchange", "execution")
        if self.prices is not None:
            price = float(self.prices(instrument))
        else:
            assert self.exchange is not None
            market = market_symbol(self.exchange, instrument)
            try:
                price = float(self.exchange.fetch_ticker(market)["last"])
            except (ccxt.BaseError, TypeError) as exc:
                raise CascadeError(f"no last price for {market}: {exc}", "execution") from exc
        if not (price > 0 and math.isfinite(price)):
            raise CascadeError(f"bad reference price {price} for {instrument}", "execution")
        return price

    # ------------------------------------------------------------------ the cycle
    def run_cycle(self, symbol: str, bar_ts: datetime | pd.Timestamp | str, decision: Decision,
                  intents: Sequence[OrderIntent], *, marks: Mapping[str, float],
                  as_of: datetime | pd.Timestamp | str, funding: Sequence[FundingEvent] = (),
                  model_version: str | None = None, forecast: Forecast | None = None,
                  stop: float | None = None) -> CycleResult:
        """Check, execute and record one cycle; a cycle already in the book sends nothing.

        ``stop``: the trading core's protective stop price after the cycle (None or NaN: none),
        kept resting on the exchange in testnet / live mode (``trading.stops``)."""
        bar = utc(bar_ts)
        keys = [(i.kind, i.leg, i.instrument) for i in intents]
        if len(set(keys)) != len(keys):
            raise CascadeError(f"several orders for the same leg in one cycle: {keys}",
                               f"{symbol} {bar}")
        if self.book.has_cycle(symbol, bar):
            state = self.book.state()
            self._sync_stops(symbol, bar, stop)  # a restart may have died before it
            return CycleResult(symbol=symbol, bar_ts=bar, written=False, equity=state.equity,
                               cash=state.cash, unrealised_pnl=state.unrealised)
        state = self.book.state(marks)
        held = {(v.leg, v.instrument): v.qty for v in state.legs if v.symbol == symbol}
        others: dict[str, float] = {}  # the other symbols' legs: with ours, the net per perp
        for v in state.legs:
            if v.symbol != symbol:
                others[v.instrument] = others.get(v.instrument, 0.0) + v.qty
        fired = self.stops.fired(symbol, held) if self.stops is not None else {}
        outcomes = list(fired.values())
        for key, done in fired.items():
            assert done.fill is not None
            held[key] += done.fill.qty if done.fill.side == "buy" else -done.fill.qty
        for intent in intents:
            if (intent.leg, intent.instrument) in fired:  # the exchange's stop closed it
                log.warning("%s %s %s not sent: the exchange's stop closed the leg", symbol,
                            intent.leg, intent.instrument)
                continue
            cid = client_order_id(symbol, bar, intent.leg, intent.instrument, intent.kind)
            ref = intent.ref_price or self.reference_price(intent.instrument)
            mark = marks.get(intent.instrument) or ref
            before = held.get((intent.leg, intent.instrument), 0.0)
            why = cap_violation(symbol, intent, decision, before, mark, state.equity)
            known = self.reconciler.adopt(cid, intent, ref) if self.reconciler else None
            if known is not None:  # sent before a restart: booked from the exchange, not resent
                outcomes.append(known)
                if known.fill is not None:
                    dq = known.fill.qty if known.fill.side == "buy" else -known.fill.qty
                    held[(intent.leg, intent.instrument)] = before + dq
                continue
            if self.reconciler is not None and symbol in self.reconciler.halts:
                why = f"trading in {symbol} is halted: {self.reconciler.halts[symbol]}"
            if why is not None:
                log.warning("refused: %s", why)
                outcomes.append(OrderOutcome(intent, "refused", cid, reason=f"refused: {why}",
                                             ref_price=ref))
                continue
            net = others.get(intent.instrument, 0.0) + sum(
                q for (_, inst), q in held.items() if inst == intent.instrument)
            outcome = (self._paper(intent, cid, ref) if self.mode == "paper"
                       else self._send(intent, cid, ref, before, net))
            outcomes.append(outcome)
            if outcome.fill is not None:
                dq = outcome.fill.qty if outcome.fill.side == "buy" else -outcome.fill.qty
                held[(intent.leg, intent.instrument)] = before + dq
        result = self.book.record_cycle(CycleRecord(
            symbol=symbol, bar_ts=bar, as_of=utc(as_of), mode=self.mode, decision=decision,
            marks=dict(marks), outcomes=outcomes, funding=list(funding),
            model_version=model_version, forecast=forecast))
        if self.stops is not None:
            self.stops.mark_fired(fired)
            self.stops.booked(symbol, outcomes)
            self._sync_stops(symbol, bar, stop)
        return replace(result, stops_fired=len(fired))

    def _sync_stops(self, symbol: str, bar: datetime, stop: float | None) -> None:
        """The resting stops (simulated in paper) made the core's ``stop`` on the book's legs."""
        if self.stops is not None:
            legs = {(v.leg, v.instrument): v.qty for v in self.book.state().legs_of(symbol)}
            self.stops.sync(symbol, bar, stop, legs)

    # ------------------------------------------------------------------ reconciliation
    def reconcile(self, symbols: Sequence[str], instruments: Sequence[str],
                  now: datetime | pd.Timestamp) -> list[str]:
        """Testnet / live: the book against the exchange (``trading.reconcile``); returns the
        symbols whose legs in the book changed. Paper: nothing to reconcile."""
        if self.reconciler is None:
            return []
        try:
            return self.reconciler.reconcile(symbols, instruments, now)
        except ccxt.BaseError as exc:  # the exchange cannot be read: nothing trades blind
            log.error("reconciliation failed: %s", exc)
            self.reconciler.halts = {s: f"{UNREADABLE} ({type(exc).__name__}: {exc})"
                                     for s in symbols}
            return []

    def halt_reasons(self, symbol: str) -> list[str]:
        """Why trading in ``symbol`` is halted (fail-safe reasons for its decisions)."""
        if self.reconciler is None or symbol not in self.reconciler.halts:
            return []
        return [f"reconciliation: {self.reconciler.halts[symbol]}; trading in {symbol} halted"]

    def _paper(self, intent: OrderIntent, cid: str, ref: float) -> OrderOutcome:
        fill = simulate_fill(intent.side, intent.qty, ref, self.policy, fee=intent.fee)
        return OrderOutcome(intent, "filled", cid, ref_price=ref, fill=fill)

    def _send(self, intent: OrderIntent, cid: str, ref: float, held: float,
              net: float) -> OrderOutcome:
        """A market order through ccxt; its answer becomes the outcome (never raises).

        ``held``: the leg's signed quantity in the book; ``net``: the book's net position in
        the perp (every leg in it), what a one-way account holds. In one-way mode an order that
        only reduces ``net`` goes ``reduceOnly``: if the exchange's stop closed the position
        first, the exchange cuts or rejects it instead of opening the opposite position. The
        quantity goes on the market's amount step (``stops.step_amount``), so closing a booked
        leg sends all of it, not one step less."""
        ex = self.exchange
        assert ex is not None
        try:
            market = market_symbol(ex, intent.instrument)
            amount = step_amount(ex, market, intent.qty)
        except (ccxt.BaseError, CascadeError) as exc:
            return OrderOutcome(intent, "refused", cid, ref_price=ref,
                                reason=f"refused: {intent.qty:.6g} {intent.instrument} cannot "
                                       f"be ordered on {ex.id}: {exc}")
        if amount <= 0:
            return OrderOutcome(intent, "refused", cid, ref_price=ref,
                                reason=f"refused: {intent.qty:.6g} {intent.instrument} rounds "
                                       f"to nothing at {ex.id}'s amount step")
        sent = OrderIntent(intent.leg, intent.instrument, intent.side, amount, intent.kind)
        params: dict = {**ORDER_PARAMS.get(ex.id, {}), "clientOrderId": cid}
        if self.hedge_mode:
            direction = held if held != 0 else sent.signed_qty
            params["positionSide"] = "LONG" if direction > 0 else "SHORT"
        elif only_reduces(net, sent.signed_qty):
            params["reduceOnly"] = True
        if self.reconciler is not None:
            self.reconciler.note_sent(cid)
        try:  # an order is never retried once it may have left (trading.retry)
            order = retry.call(ex, ex.create_order, market, "market", sent.side, amount, None,
                               params, idempotent=False, backoff=self.backoff,
                               sleep=self.sleep)
        except retry.AnswerLost as lost:
            log.error("order %s: the answer was lost (%s); reconciliation resolves it", cid, lost)
            return OrderOutcome(sent, "submitted", cid, ref_price=ref,
                                reason=f"answer lost ({lost}); resolved by reconciliation by "
                                       "its client order id, never sent again")
        except ccxt.BaseError as exc:
            log.error("order %s failed: %s", cid, exc)
            return OrderOutcome(sent, "failed", cid, ref_price=ref,
                                reason=f"{type(exc).__name__}: {exc}")
        return self.outcome_of(sent, cid, ref, order)

    def outcome_of(self, sent: OrderIntent, cid: str, ref: float, order: dict) -> OrderOutcome:
        """The outcome of ``sent`` from the exchange's order (ccxt's unified structure)."""
        ex = self.exchange
        assert ex is not None
        order_id = None if order.get("id") is None else str(order["id"])
        fill, estimated = self.fill_of(sent.side, ref, order)
        if fill is None:
            return OrderOutcome(sent, "submitted", cid, ref_price=ref, exchange_order_id=order_id,
                                reason=f"accepted by {ex.id} as {order.get('status')}; no fill "
                                       "reported yet")
        amount = float(order.get("amount") or sent.qty)
        note = (None if fill.qty >= amount - _TOL
                else f"partially filled: {fill.qty:g} of {amount:g}")
        return OrderOutcome(sent, "filled", cid, reason=note, ref_price=ref, fill=fill,
                            fee_estimated=estimated, exchange_order_id=order_id)

    def fill_of(self, side: OrderSide, ref: float, order: dict) -> tuple[Fill | None, bool]:
        """The fill an exchange order reports (None: nothing filled), and whether its fee is
        estimated."""
        filled = float(order.get("filled") or 0.0)
        price = order.get("average") or order.get("price")
        if filled <= 0 or not price:
            return None, False
        price = float(price)
        fee, estimated = self._fee(order, filled, price)
        cost = filled * (price - ref) if side == "buy" else filled * (ref - price)
        return Fill(side=side, qty=filled, price=price, ref_price=ref, fee=fee,
                    slippage=cost), estimated

    def _fee(self, order: dict, filled: float, price: float) -> tuple[float, bool]:
        """The exchange's fee when it reports one in the quote currency, else the taker rate."""
        fee = order.get("fee") or {}
        market = self.exchange.market(order["symbol"]) if order.get("symbol") else {}
        if fee.get("cost") is not None and fee.get("currency") in (None, market.get("quote")):
            return float(fee["cost"]), False
        return fee_rate(self.policy) * filled * price, True
