"""Reconciliation: the book against the exchange, at start and every cycle (testnet / live).

Every order the loop sends carries a client order id derived from (symbol, bar, leg, kind,
instrument) (``execution.client_order_id``), so the exchange can be asked what became of it:

1. At start, the exchange's recent orders (``fetch_orders`` since the book's last cycle, less a
   look-back) are read once: an order of ours the book does not hold was sent just before the
   process died. When its bar's cycle runs again (a restarted loop repeats the bar it was in),
   the executor books it from the exchange instead of sending it (``adopt``): an id is never
   sent twice.
2. Every cycle, each order the book holds as ``submitted`` (its answer was lost: a timeout or a
   5xx after it left, ``trading.retry``) is looked up by its client order id and booked as the
   exchange says (filled, partly filled, or never executed: failed).
3. Then the positions: for every instrument, the exchange's net position must equal the book's
   legs plus the orders of ours not yet booked: those sent before a restart, and the fills of
   the book's own stop orders that fired on the exchange (an order under the client id of a
   stop in the book's ``stop_orders``) while that stop is still live in the book, since the
   cycle books them (``ExchangeStops.fired``). A fired stop is never taken for an order sent
   before a restart, and once booked (or closed in the book) it explains nothing. A difference
   it cannot explain (a position changed by hand, an order the loop did not send) halts
   trading in every symbol with a leg in that instrument: its orders are refused and its
   decisions fail safe with the reason (``Executor.halt_reasons`` ->
   ``decide(..., monitor_reasons=...)``), until the two agree.

An order the loop did not send halts once, in the cycle that first reads it. The start-up scan
reads back ``LOOKBACK`` before the book's last cycle, so it skips the orders the book shows were
already judged by the process before the restart (``Judged``): those whose last change came
before the newest cycle that read the exchange, and those named by a halt the book recorded. One
made or filled later (while the process was down) still halts; so does any position difference,
whenever its orders were made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ccxt
import pandas as pd

from cascade_ml.data.sources.exchange import market_symbol
from cascade_ml.trading import retry
from cascade_ml.trading.book import LIVE_STOP_STATES, OrderOutcome, utc
from cascade_ml.trading.execution import UNREADABLE, parse_client_order_id
from cascade_ml.trading.orders import OrderIntent

if TYPE_CHECKING:
    from cascade_ml.trading.execution import Executor

log = logging.getLogger(__name__)
LOOKBACK = pd.Timedelta("2D")
"""How far before the book's last cycle the start-up scan reads the exchange's orders."""
_DONE = frozenset({"canceled", "expired", "rejected", "closed"})
_STRANGERS = "orders the loop did not send on"


def _stranger(order: dict) -> str:
    """How a halt names an order the loop did not send (``Judged`` finds it again by this)."""
    return (f"{order.get('clientOrderId') or order.get('id')} ({order.get('side')} "
            f"{float(order.get('filled') or order.get('amount') or 0):g}, {order.get('status')})")


@dataclass(frozen=True)
class Judged:
    """What the book shows the cycles before a restart judged of the orders the loop did not
    send: every order whose last change came before ``before_ms`` (the newest recorded cycle
    whose reconciliation read the exchange: it, or one before it, read them), and the orders
    named by the halts the book recorded (one made in that cycle's instant is told apart so)."""

    before_ms: int | None
    named: str

    @classmethod
    def from_decisions(cls, decisions: pd.DataFrame) -> Judged:
        if decisions.empty:
            return cls(None, "")
        reasons = decisions["reasons"].map(lambda rs: list(rs or []))
        read = decisions[~reasons.map(lambda rs: any(UNREADABLE in r for r in rs))]
        newest = pd.to_datetime(read["as_of"], utc=True).max() if len(read) else None
        halts = [r for rs in reasons for r in rs if _STRANGERS in r]
        return cls(None if newest is None or pd.isna(newest) else int(newest.value // 1_000_000),
                   "\n".join(halts))

    def __contains__(self, order: dict) -> bool:
        label = _stranger(order)  # named as it stands (an order filled since then is not)
        if f": {label}" in self.named or f", {label}" in self.named:
            return True
        times = [int(t) for k in ("timestamp", "lastTradeTimestamp", "lastUpdateTimestamp")
                 if (t := order.get(k)) is not None]
        return self.before_ms is not None and bool(times) and max(times) < self.before_ms


class Reconciler:
    """The book of ``executor`` against its exchange (see the module docstring)."""

    def __init__(self, executor: Executor, *, lookback: pd.Timedelta = LOOKBACK) -> None:
        self.executor = executor
        self.lookback = lookback
        self.sent: set[str] = set()                # ids this process sent
        self.unbooked: dict[str, dict] = {}        # ours on the exchange, not in the book
        self.fired: dict[str, dict] = {}           # the fills of the book's stops, by stop id
        self.halts: dict[str, str] = {}            # symbol -> why its trading is halted
        self.started = False
        self._scanned_ms: dict[str, int] = {}      # instrument -> orders read up to (ms)

    # ------------------------------------------------------------------ exchange calls
    @property
    def exchange(self) -> ccxt.Exchange:
        assert self.executor.exchange is not None
        return self.executor.exchange

    def _read(self, fn: Callable[..., Any], *args: object, **kwargs: object) -> Any:
        return retry.call(self.exchange, fn, *args, idempotent=True,
                          backoff=self.executor.backoff, sleep=self.executor.sleep, **kwargs)

    # ------------------------------------------------------------------ the executor's hooks
    def note_sent(self, cid: str) -> None:
        if cid in self.sent:  # the executor's own guard failed: refuse loudly, never resend
            raise RuntimeError(f"client order id {cid} was already sent by this process")
        self.sent.add(cid)

    def adopt(self, cid: str, intent: OrderIntent, ref: float) -> OrderOutcome | None:
        """The outcome of an order of this cycle that is already on the exchange (sent before a
        restart), taken from the exchange; None when it must be sent."""
        order = self.unbooked.pop(cid, None)
        if order is None and cid in self.sent:  # sent by this process, its cycle never booked
            market = market_symbol(self.exchange, intent.instrument)
            try:
                order = self._read(self.exchange.fetch_order, None, market,
                                   {"clientOrderId": cid})
            except ccxt.OrderNotFound:
                return OrderOutcome(intent, "failed", cid, ref_price=ref,
                                    reason="already sent once (not executed); an order is "
                                           "never sent twice")
        if order is None:
            return None
        amount = float(order.get("amount") or intent.qty)
        sent = OrderIntent(intent.leg, intent.instrument, order.get("side") or intent.side,
                           amount, intent.kind)
        outcome = self.executor.outcome_of(sent, cid, ref, order)
        note = "booked from the exchange: sent before a restart"
        return OrderOutcome(outcome.intent, outcome.status, cid,
                            reason=f"{note}; {outcome.reason}" if outcome.reason else note,
                            ref_price=ref, fill=outcome.fill,
                            fee_estimated=outcome.fee_estimated,
                            exchange_order_id=outcome.exchange_order_id)

    # ------------------------------------------------------------------ the cycle
    def reconcile(self, symbols: Sequence[str], instruments: Sequence[str],
                  now: datetime | pd.Timestamp) -> list[str]:
        """Steps 1-3 of the module docstring; returns the symbols whose book legs changed."""
        now = pd.Timestamp(utc(now))
        foreign = self._scan(instruments, now)
        changed = self._resolve_pending(now)
        self.halts = self._compare(symbols, instruments, foreign)
        for symbol, why in self.halts.items():
            log.error("trading in %s halted: %s", symbol, why)
        self.started = True
        return changed

    def _scan(self, instruments: Sequence[str], now: pd.Timestamp) -> dict[str, list[dict]]:
        """New orders on the exchange since the last scan: ours not in the book are kept as
        unbooked; returns, per instrument, the orders the loop did not make."""
        booked = self.executor.book.client_order_ids()
        stops = self.executor.book.stop_states()
        decisions = self.executor.book.frames()["decisions"]
        last = pd.to_datetime(decisions["as_of"], utc=True).max() if len(decisions) else None
        judged = None if self.started else Judged.from_decisions(decisions)
        start = int(((now if last is None or pd.isna(last) else last) - self.lookback).value
                    // 1_000_000)
        foreign: dict[str, list[dict]] = {}
        for instrument in instruments:
            market = market_symbol(self.exchange, instrument)
            since = self._scanned_ms.get(instrument, start)
            orders = self._read(self.exchange.fetch_orders, market, since)
            for order in orders:
                cid = order.get("clientOrderId") or ""
                if parse_client_order_id(cid) is None:
                    if float(order.get("filled") or 0) > 0 or order.get("status") == "open":
                        foreign.setdefault(instrument, []).append(order)
                elif cid not in booked and cid not in self.sent and self._filled(order):
                    (self.fired if cid in stops else self.unbooked)[cid] = order
            newest = max((int(o["timestamp"]) for o in orders if o.get("timestamp")),
                         default=since - 1)
            self._scanned_ms[instrument] = newest + 1
        return {i: kept for i, found in foreign.items()
                if (kept := [o for o in found if judged is None or o not in judged])}

    @staticmethod
    def _filled(order: dict) -> bool:
        return float(order.get("filled") or 0) > 0

    def _resolve_pending(self, now: pd.Timestamp) -> list[str]:
        """Book what the exchange says of every order whose answer was lost."""
        changed = []
        for row in self.executor.book.pending_orders().itertuples():
            market = market_symbol(self.exchange, row.instrument)
            try:
                order = self._read(self.exchange.fetch_order, None, market,
                                   {"clientOrderId": row.client_order_id})
            except ccxt.OrderNotFound:
                self.executor.book.resolve_order(
                    row.client_order_id, "failed", at=now,
                    reason=f"{row.reason}; not on the exchange: it was never executed")
                continue
            fill, estimated = self.executor.fill_of(row.side, float(row.ref_price or 0.0), order)
            if fill is None and order.get("status") not in _DONE:
                continue  # still working: asked again next cycle
            status = "filled" if fill is not None else "failed"
            note = (f"resolved from the exchange: {order.get('status')}, filled "
                    f"{float(order.get('filled') or 0):g} of {float(order.get('amount') or 0):g}")
            if self.executor.book.resolve_order(
                    row.client_order_id, status, at=now, fill=fill, fee_estimated=estimated,
                    exchange_order_id=None if order.get("id") is None else str(order["id"]),
                    reason=f"{row.reason}; {note}"):
                self.unbooked.pop(row.client_order_id, None)
                if fill is not None:
                    changed.append(row.symbol)
        return sorted(set(changed))

    def _compare(self, symbols: Sequence[str], instruments: Sequence[str],
                 foreign: dict[str, list[dict]]) -> dict[str, str]:
        """Per instrument, the exchange's net position against the book's legs plus our
        unbooked orders; the symbols each unexplained difference halts, with the reason."""
        markets = [market_symbol(self.exchange, i) for i in instruments]
        positions = self._read(self.exchange.fetch_positions, markets)
        held = {i: 0.0 for i in instruments}
        by_market = dict(zip(markets, instruments, strict=True))
        for p in positions:
            instrument = by_market.get(p.get("symbol"))
            if instrument is not None:
                sign = -1.0 if p.get("side") == "short" else 1.0
                held[instrument] += sign * float(p.get("contracts") or 0.0)
        legs = self.executor.book.state().legs
        ids, stops = self.executor.book.client_order_ids(), self.executor.book.stop_states()
        self.unbooked = {c: o for c, o in self.unbooked.items() if c not in ids}
        self.fired = {c: o for c, o in self.fired.items()  # booked or closed: explain nothing
                      if c not in ids and stops.get(c) in LIVE_STOP_STATES}
        halts: dict[str, list[str]] = {}
        for instrument, market in zip(instruments, markets, strict=True):
            booked = sum(v.qty for v in legs if v.instrument == instrument)
            pending = sum(self._signed(o) for o in self.unbooked.values()
                          if o.get("symbol") == market)
            fired = sum(self._signed(o) for o in self.fired.values()
                        if o.get("symbol") == market)
            step = float(self.exchange.markets[market]["precision"].get("amount") or 0.0)
            owners = {v.symbol for v in legs if v.instrument == instrument}
            owners |= {instrument} & set(symbols)
            reasons = []
            if abs(held[instrument] - booked - pending - fired) > max(step / 2, 1e-9):
                what = (f"the exchange holds {held[instrument]:+g} {instrument}, the book "
                        f"{booked:+g}")
                if pending:
                    what += f" and {pending:+g} sent before a restart"
                if fired:
                    what += f" and {fired:+g} by its stops that fired, not booked yet"
                reasons.append(f"{what}: a position changed outside the loop")
            strangers = [_stranger(o) for o in foreign.get(instrument, [])]
            if strangers:
                reasons.append(f"{_STRANGERS} {instrument}: {', '.join(strangers)}")
            for symbol in owners:
                halts.setdefault(symbol, []).extend(reasons)
        return {s: "; ".join(r) for s, r in halts.items() if r}

    @staticmethod
    def _signed(order: dict) -> float:
        filled = float(order.get("filled") or 0.0)
        return filled if order.get("side") == "buy" else -filled
