"""Protective stops on the exchange (testnet / live): the trading core's stop as resting orders.

The trading core (:mod:`cascade_ml.trading.core`) holds each position's protective stop
(``PositionState.stop``, computed once by ``core.stop_price``) and, in paper mode, in a replay
and in the backtest, fires it inside the bar when the bar's adverse extreme reaches it. In
testnet and live mode the same price rests on the exchange, so the position stays protected
while the process is down:

- **What is sent** (:func:`wanted_stops`): the stop triggers on the position's own perp. In
  hedge mode (``positionSide``; Binance refuses ``reduceOnly`` there) each leg held in that perp
  gets its own order: the main leg a ``STOP_MARKET`` (a long's sell when the price falls to the
  stop), a same-perp hedge a ``TAKE_PROFIT_MARKET`` closing it at the same trigger (a short's
  buy as the price falls), as the core closes both legs at the stop. In one-way mode the legs net
  on the exchange: one ``reduceOnly`` order closes the net quantity. A proxy hedge (BTC, ETH)
  has no exchange order: no order on one perp can trigger on another's price, so it is closed
  by the next cycle (the core closes it at the stop's moment: they may differ by up to a bar).
  Orders go through ccxt's unified ``create_order(symbol, "market", side, qty, None,
  {"stopLossPrice" | "takeProfitPrice": trigger, "reduceOnly" | "positionSide", "workingType":
  "CONTRACT_PRICE", "clientOrderId"})``; ccxt routes Binance USD-M conditional orders to the
  Algo Order API (``POST /fapi/v1/algoOrder``, ``triggerPrice``, ``clientAlgoId``).
  ``CONTRACT_PRICE`` triggers on the last trade price, the price the core's candles are made of.
- **The price** (:func:`safe_trigger`): the core's stop rounded to the market's tick by ccxt's
  ``price_to_precision``, and when that rounding moved it away from the entry, one tick back:
  a long's sell stop rounds up, a short's buy stop down, so the exchange never lets the position
  lose more than the policy's ``max_risk_fraction`` (the stop may fire up to one tick earlier
  than the core's; on a tick-aligned price they agree exactly).
- **Moved, not churned** (:meth:`ExchangeStops.sync`, after each cycle's fills): a stop is
  cancelled and a new one placed only when the wanted trigger differs from the resting one by
  more than ``MOVE_TOLERANCE`` (relative), or the quantity, side or order type changed; it is
  cancelled when its leg goes flat. A replacement is sent only after the old order's cancel was
  acknowledged, so a leg never has two live stops.
- **Write-ahead**: a stop is written to the book (``stop_orders``, ``pending``) before it is
  sent and marked ``open`` with the exchange's id after; a process killed in between leaves a
  ``pending`` row that the next cycle resolves by its client order id.
- **Fired** (:meth:`ExchangeStops.fired`, before each cycle's orders): every live stop is
  looked up; a triggered one is booked from the exchange's answer (the fill of the market order
  the trigger spawned: its average price and executed quantity), once (an order booked under
  the stop's client id is not booked again), and the cycle sends no closing order for that leg.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import ccxt

from cascade_ml.data.sources.exchange import market_symbol
from cascade_ml.trading import retry
from cascade_ml.trading.book import OrderOutcome, PaperBook, StopRecord
from cascade_ml.trading.costs import Fill
from cascade_ml.trading.orders import FLAT, Legs, OrderIntent
from cascade_ml.trading.types import LegName, OrderSide

log = logging.getLogger(__name__)

MOVE_TOLERANCE = 1e-3
"""A resting stop is moved when the wanted trigger differs from it by more than this fraction."""
_STEP_NOISE = 1e-6  # a quantity this near a step multiple (in steps) is float noise off it
WORKING_TYPE = "CONTRACT_PRICE"
STOP_MARKET, TAKE_PROFIT_MARKET = "STOP_MARKET", "TAKE_PROFIT_MARKET"

ClientId = Callable[[str, datetime, LegName, str], str]
Call = Callable[..., Any]  # retry.call(exchange, ...) bound to the executor's exchange
FeeOf = Callable[[dict, float, float], tuple[float, bool]]


@dataclass(frozen=True)
class StopSpec:
    """One resting stop order wanted: close ``qty`` of ``instrument`` by ``side`` when the
    price reaches ``trigger`` (the core's price, before rounding to the tick)."""

    leg: LegName
    instrument: str
    side: OrderSide
    qty: float
    trigger: float
    order_type: str
    position_side: str | None


def wanted_stops(symbol: str, legs: Legs, stop: float | None, *,
                 hedge_mode: bool) -> list[StopSpec]:
    """The stop orders that protect ``symbol``'s legs (signed quantities per (leg,
    instrument)) at the core's ``stop`` (None or NaN: none); see the module docstring."""
    main = legs.get(("main", symbol), 0.0)
    if stop is None or not math.isfinite(stop) or stop <= 0 or abs(main) <= FLAT:
        return []
    falls = main > 0  # the stop of a long triggers on a fall, a short's on a rise
    here = [(leg, q) for (leg, inst), q in sorted(legs.items(), key=lambda kv: kv[0][0] != "main")
            if inst == symbol and abs(q) > FLAT]

    def spec(leg: LegName, qty: float, position_side: str | None) -> StopSpec:
        side: OrderSide = "sell" if qty > 0 else "buy"
        kind = STOP_MARKET if (side == "sell") == falls else TAKE_PROFIT_MARKET
        return StopSpec(leg, symbol, side, abs(qty), float(stop), kind, position_side)

    if hedge_mode:
        return [spec(leg, q, "LONG" if q > 0 else "SHORT") for leg, q in here]
    net = sum(q for _, q in here)
    return [spec("main", net, None)] if abs(net) > FLAT else []


def safe_trigger(exchange: ccxt.Exchange, market: str, price: float, *, long: bool) -> float:
    """``price`` on the market's tick (ccxt ``price_to_precision``), one tick nearer the
    entry when rounding to the nearest tick moved it away: up for a long's stop, down for a
    short's, so the loss at the stop stays within the policy's maximum."""
    rounded = float(exchange.price_to_precision(market, price))
    if (rounded < price) if long else (rounded > price):
        tick = float(exchange.market(market)["precision"]["price"])
        rounded = float(exchange.price_to_precision(market, rounded + (tick if long else -tick)))
    return rounded


def step_amount(exchange: ccxt.Exchange, market: str, qty: float) -> float:
    """``qty`` on the market's amount step (ccxt ``amount_to_precision``, which truncates),
    float noise first snapped to the nearest step: a book leg is a float sum of step-multiple
    fills (``1338.756 - 1290.575`` holds 48.18099999999981 NEAR), and truncating it would send
    one step less than the exchange holds, leaving that step behind as a leg no order can
    close (0.000999... truncates to nothing). A quantity farther from a step than ``1e-6`` of
    one is truncated as before (never more than asked)."""
    step = exchange.market(market)["precision"].get("amount")
    if step:
        size = float(step) if exchange.precisionMode == ccxt.TICK_SIZE else 10.0 ** -float(step)
        n = round(qty / size)
        if n > 0 and abs(qty / size - n) < _STEP_NOISE:
            qty = float(Decimal(n) * Decimal(repr(size)))  # exactly n steps, no new noise
    return float(exchange.amount_to_precision(market, qty))


class ExchangeStops:
    """The resting stops of one executor (testnet / live): looks them up, books the ones that
    fired and keeps one per leg at the core's price (see the module docstring). ``call`` makes
    the exchange calls with the executor's retries (``trading.retry.call``'s signature without
    the exchange): a look-up is asked again, a placement or a cancel whose answer was lost is
    not, and is resolved by the next look-up by its client id."""

    def __init__(self, exchange: ccxt.Exchange, book: PaperBook, *, hedge_mode: bool,
                 client_id: ClientId, fee_of: FeeOf, call: Call | None = None) -> None:
        self.exchange, self.book, self.hedge_mode = exchange, book, hedge_mode
        self.client_id, self.fee_of = client_id, fee_of
        self.call: Call = call or (lambda fn, *args, idempotent: fn(*args))

    # ------------------------------------------------------------------ fired stops
    def fired(self, symbol: str, legs: Legs) -> dict[tuple[LegName, str], OrderOutcome]:
        """The fills of the symbol's stops that fired on the exchange and are not booked yet,
        per (leg, instrument) of the book's ``legs`` they closed. Stops found cancelled,
        expired or never sent are closed in ``stop_orders``; nothing here sends an order."""
        out: dict[tuple[LegName, str], OrderOutcome] = {}
        for stop in self.book.live_stops(symbol):
            order = self._lookup(stop)
            if order is None:
                continue
            status = order.get("status")
            if status == "open":
                if stop.state == "pending":
                    self.book.update_stop(stop.client_order_id, "open",
                                          exchange_order_id=_id(order))
                continue
            if status != "closed":  # canceled, expired, rejected
                self.book.update_stop(stop.client_order_id, "cancelled",
                                      exchange_order_id=_id(order),
                                      reason=f"{self.exchange.id} reports it {status}")
                continue
            if self.book.has_order(stop.client_order_id):  # booked before a restart
                self.book.update_stop(stop.client_order_id, "fired")
                continue
            out.update(self._booked_fill(stop, order, legs))
        return out

    def mark_fired(self, outcomes: Mapping[tuple[LegName, str], OrderOutcome]) -> None:
        """After the cycle that booked them: their stop orders are ``fired``."""
        for outcome in outcomes.values():
            if "/" not in outcome.client_order_id:  # the stop's own leg (one per stop)
                self.book.update_stop(outcome.client_order_id, "fired",
                                      fill_order_id=outcome.exchange_order_id)

    def _lookup(self, stop: StopRecord) -> dict | None:
        """The exchange's view of one stop order (by its id, or its client id while pending);
        None when the exchange cannot answer now (tried again next cycle)."""
        market = market_symbol(self.exchange, stop.instrument)
        params: dict = {"trigger": True}
        if stop.exchange_order_id is None:
            params["clientOrderId"] = stop.client_order_id
        try:
            return self.call(self.exchange.fetch_order, stop.exchange_order_id, market, params,
                             idempotent=True)
        except ccxt.OrderNotFound:
            if stop.state == "pending":  # the process died before the order reached it
                self.book.update_stop(stop.client_order_id, "failed",
                                      reason=f"never reached {self.exchange.id}")
            else:
                log.error("stop %s is open in the book but unknown to %s", stop.client_order_id,
                          self.exchange.id)
            return None
        except ccxt.BaseError as exc:
            log.error("looking up stop %s failed: %s", stop.client_order_id, exc)
            return None

    def _booked_fill(self, stop: StopRecord, order: dict,
                     legs: Legs) -> dict[tuple[LegName, str], OrderOutcome]:
        """The fill of a triggered stop: the market order it spawned (``actualOrderId``),
        booked on the legs it closed: a same-perp hedge in full, the main leg by the fill plus
        that hedge (see below)."""
        info = order.get("info") or {}
        actual = info.get("actualOrderId")
        if actual in (None, "", "0", 0):
            log.warning("stop %s triggered; its order is not placed yet", stop.client_order_id)
            return {}
        market = market_symbol(self.exchange, stop.instrument)
        try:
            spawned = self.call(self.exchange.fetch_order, str(actual), market,
                                idempotent=True)
        except ccxt.BaseError as exc:
            log.error("fetching the order of fired stop %s failed: %s", stop.client_order_id, exc)
            return {}
        filled = float(spawned.get("filled") or 0.0)
        price = spawned.get("average") or spawned.get("price")
        if filled <= 0 or not price:
            return {}  # triggered, not filled yet: booked at a later cycle
        price = float(price)
        fee, estimated = self.fee_of(spawned, filled, price)
        covers = [(leg, legs.get((leg, stop.instrument), 0.0))
                  for leg in (("main", "hedge") if stop.leg == "main" and not self.hedge_mode
                              else (stop.leg,))]
        covers = [(leg, q) for leg, q in covers if abs(q) > FLAT]
        total = sum(abs(q) for _, q in covers)
        if total <= 0:  # the book closed the leg already: the exchange disagrees with it
            why = (f"fired ({filled:g} at {price:g}, order {actual}) while the book holds no "
                   f"{stop.instrument} leg it protects: left to reconciliation")
            log.error("stop %s %s", stop.client_order_id, why)
            self.book.update_stop(stop.client_order_id, "fired", fill_order_id=str(actual),
                                  reason=why)
            return {}
        # what each leg closes: the fill reduces the net position the legs hold now (the
        # stop's own size may be stale: an order whose answer was lost can have filled since).
        # Legs against the net (a same-perp hedge) close in full, the legs along it take the
        # fill plus those, so every booked quantity stays on the exchange's amount grid and the
        # venue's remainder is left on the main leg, not spread as dust over both
        net = sum(q for _, q in covers)
        sign = 1.0 if net > 0 else -1.0
        against = sum(abs(q) for _, q in covers if q * sign < 0)
        along = sum(abs(q) for _, q in covers if q * sign > 0)
        rest = min(filled + against, along)
        closes = {leg: abs(q) if q * sign < 0 else rest * abs(q) / along
                  for leg, q in covers}
        closed = sum(closes.values())
        out = {}
        for leg, q in covers:
            qty = closes[leg]
            share = qty / closed  # of the one venue order's fee
            side: OrderSide = "sell" if q > 0 else "buy"
            cost = qty * (stop.trigger_price - price) if side == "sell" \
                else qty * (price - stop.trigger_price)
            fill = Fill(side=side, qty=qty, price=price, ref_price=stop.trigger_price,
                        fee=fee * share, slippage=cost)
            # the book's client ids are unique: a netted hedge leg's share gets a suffix
            cid = stop.client_order_id if leg == stop.leg else f"{stop.client_order_id}/{leg}"
            out[(leg, stop.instrument)] = OrderOutcome(
                OrderIntent(leg, stop.instrument, side, qty, "stop", stop.trigger_price),
                "filled", cid, reason=f"the exchange's stop fired "
                f"({stop.order_type} at {stop.trigger_price:g})", ref_price=stop.trigger_price,
                fill=fill, fee_estimated=estimated, exchange_order_id=str(actual))
        return out

    # ------------------------------------------------------------------ keeping them
    def sync(self, symbol: str, bar: datetime, stop: float | None, legs: Legs) -> None:
        """Make the resting stops those :func:`wanted_stops` asks for at the core's ``stop``
        after this cycle (cancel, move beyond ``MOVE_TOLERANCE``, place); never raises."""
        wanted = {}
        main = legs.get(("main", symbol), 0.0)
        for spec in wanted_stops(symbol, legs, stop, hedge_mode=self.hedge_mode):
            terms = self._terms(spec, long=main > 0)
            if terms is not None and terms[0] > 0:
                wanted[(spec.leg, spec.instrument)] = (spec, *terms)
        for rest in self.book.live_stops(symbol):
            want = wanted.get((rest.leg, rest.instrument))
            if want is not None and not _moved(rest, *want):
                wanted.pop((rest.leg, rest.instrument))
                continue
            if not self._cancel(rest):
                wanted.pop((rest.leg, rest.instrument), None)  # never two live stops
        for spec, qty, trigger in wanted.values():
            self._place(symbol, bar, spec, qty, trigger)

    def booked(self, symbol: str, outcomes: Sequence[OrderOutcome]) -> None:
        """After the cycle's record: nothing here (a fired exchange stop is ``mark_fired``)."""

    def _terms(self, spec: StopSpec, *, long: bool) -> tuple[float, float] | None:
        """(quantity, trigger) as the exchange takes them: its amount step, its tick rounded
        the safe way (:func:`safe_trigger`); None when the market cannot say."""
        market = market_symbol(self.exchange, spec.instrument)
        try:
            return (step_amount(self.exchange, market, spec.qty),
                    safe_trigger(self.exchange, market, spec.trigger, long=long))
        except ccxt.BaseError as exc:
            log.error("no stop for %s %s: %s", spec.instrument, spec.leg, exc)
            return None

    def _cancel(self, rest: StopRecord) -> bool:
        if rest.exchange_order_id is None:
            return False  # pending: resolved by the next look-up first
        market = market_symbol(self.exchange, rest.instrument)
        try:
            self.call(self.exchange.cancel_order, rest.exchange_order_id, market,
                      {"trigger": True}, idempotent=False)
        except (ccxt.BaseError, retry.AnswerLost) as exc:  # fired, gone or answer lost: the
            # next look-up books it, closes it or finds it still open
            log.error("cancelling stop %s failed: %s", rest.client_order_id, exc)
            return False
        self.book.update_stop(rest.client_order_id, "cancelled")
        return True

    def _place(self, symbol: str, bar: datetime, spec: StopSpec, qty: float,
               trigger: float) -> None:
        market = market_symbol(self.exchange, spec.instrument)
        cid = self.client_id(symbol, bar, spec.leg, spec.instrument)
        self.book.add_stop(StopRecord(symbol, spec.leg, spec.instrument, spec.side, qty, trigger,
                                      spec.order_type, spec.position_side, cid, bar))
        price_key = "stopLossPrice" if spec.order_type == STOP_MARKET else "takeProfitPrice"
        params: dict = {price_key: trigger, "workingType": WORKING_TYPE, "clientOrderId": cid}
        if spec.position_side is None:
            params["reduceOnly"] = True
        else:
            params["positionSide"] = spec.position_side
        try:
            order = self.call(self.exchange.create_order, market, "market", spec.side, qty,
                              None, params, idempotent=False)
        except retry.AnswerLost as lost:  # placed or not: the next look-up resolves it
            log.error("stop %s: the answer was lost (%s); left pending for the next look-up",
                      cid, lost)
            return
        except ccxt.BaseError as exc:
            log.error("stop %s refused: %s", cid, exc)
            self.book.update_stop(cid, "failed", reason=f"{type(exc).__name__}: {exc}")
            return
        self.book.update_stop(cid, "open", exchange_order_id=_id(order))


class PaperStops(ExchangeStops):
    """Paper mode and a replay without a venue: the same stop orders, kept in ``stop_orders``
    as they would rest on the exchange (same legs, quantities and client ids; the core's price,
    no tick), and fired by the trading core inside the bar (``core.settle``: the bar's low or
    high reaches the stop, filled at it or at the open the bar gapped to), so the book says when
    a stop fired in every mode and a backtest, a replay and the exchange agree on it. Nothing
    is sent: a stop is ``open`` from the cycle that sets it."""

    def __init__(self, book: PaperBook, *, hedge_mode: bool, client_id: ClientId) -> None:
        super().__init__(None, book, hedge_mode=hedge_mode, client_id=client_id,  # type: ignore[arg-type]
                         fee_of=lambda order, qty, price: (0.0, True))

    def fired(self, symbol: str, legs: Legs) -> dict[tuple[LegName, str], OrderOutcome]:
        """None from outside: the core fires the stop, its closing orders are the cycle's."""
        return {}

    def booked(self, symbol: str, outcomes: Sequence[OrderOutcome]) -> None:
        """The cycle booked the core's stop close (orders of kind ``stop``): the symbol's live
        stop orders fired, filled by the main leg's close."""
        closes = [o for o in outcomes if o.intent.kind == "stop" and o.fill is not None]
        if not closes:
            return
        main = next((o for o in closes if o.intent.leg == "main"), closes[0])
        for rest in self.book.live_stops(symbol):
            self.book.update_stop(rest.client_order_id, "fired",
                                  fill_order_id=main.client_order_id,
                                  reason=f"the bar reached {rest.trigger_price:g}: the trading "
                                  f"core closed the legs at {main.fill.price:g}")

    def _terms(self, spec: StopSpec, *, long: bool) -> tuple[float, float] | None:
        return spec.qty, spec.trigger

    def _cancel(self, rest: StopRecord) -> bool:
        self.book.update_stop(rest.client_order_id, "cancelled")
        return True

    def _place(self, symbol: str, bar: datetime, spec: StopSpec, qty: float,
               trigger: float) -> None:
        self.book.add_stop(StopRecord(
            symbol, spec.leg, spec.instrument, spec.side, qty, trigger, spec.order_type,
            spec.position_side, self.client_id(symbol, bar, spec.leg, spec.instrument), bar,
            state="open"))


def _moved(rest: StopRecord, spec: StopSpec, qty: float, trigger: float) -> bool:
    """Whether the resting stop must be replaced to be the wanted one."""
    return (abs(trigger - rest.trigger_price) > MOVE_TOLERANCE * rest.trigger_price
            or not math.isclose(qty, rest.qty, rel_tol=1e-9) or spec.side != rest.side
            or spec.order_type != rest.order_type or spec.position_side != rest.position_side)


def _id(order: dict) -> str | None:
    return None if order.get("id") is None else str(order["id"])
