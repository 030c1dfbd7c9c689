"""The paper-trading book: decisions, orders, fills, positions, hedges, funding and equity in a
real database (SQLite by default, any SQLAlchemy URL), its schema kept by Alembic migrations.

Accounting (a USD-M perp account in hedge mode, every leg its own position):

- ``cash`` = initial cash + realised P&L of all fills - fees + funding received (paid < 0);
- ``unrealised`` = sum over legs of ``qty x (mark - entry)`` (qty signed, long > 0);
- ``equity`` = cash + unrealised. Slippage is already inside fill prices; it is also recorded
  per fill as a cost so reports can show it.
- A fill on the same side adds to the leg at a quantity-weighted entry; on the other side it
  closes at most the held quantity (realising ``closed x (price - entry) x sign``) and any
  remainder opens the other way at the fill price.
- Funding settling at ``t`` is charged on the legs held at ``t``: legs change only at cycles, so
  a cycle charges the settlements in (previous cycle's ``as_of``, this ``as_of``] on the legs as
  they were before its own fills (``trading.funding.funding_amount``: ``-qty x mark x rate``).
- What to trade, at what price and cost is the trading core's (``cascade_ml.trading``): the
  book records the orders and fills it is given, including the protective stop's and a
  liquidation's closing orders (order types ``stop`` and ``liq``).

Protective stops resting on the exchange (testnet / live, ``cascade_ml.trading.stops``) are kept
in ``stop_orders`` (``add_stop`` before sending, ``update_stop`` after each answer); a stop that
fired is booked as an order of type ``stop`` under the stop's own client order id.

Idempotence and atomicity: a cycle is one (symbol, bar timestamp). ``record_cycle`` writes the
whole cycle in one transaction (a killed process leaves all of it or none) and does nothing
when that cycle is already in the book, so a restart that replays a bar adds no duplicate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from cascade_ml.errors import CascadeError
from cascade_ml.policy.schemas import Decision, Forecast
from cascade_ml.trading import db
from cascade_ml.trading.costs import Fill
from cascade_ml.trading.funding import funding_amount
from cascade_ml.trading.orders import FLAT as _FLAT
from cascade_ml.trading.orders import OrderIntent, position_after_fill
from cascade_ml.trading.tables import (
    Account,
    DecisionRow,
    EquitySnapshotRow,
    FillRow,
    FundingPaymentRow,
    HedgeRow,
    OrderRow,
    PositionRow,
    StopOrderRow,
)
from cascade_ml.trading.types import LegName, Mode, OrderKind

OrderStatus = Literal["filled", "submitted", "refused", "failed"]
ORDER_TYPES: dict[OrderKind, str] = {"trade": "market", "stop": "stop", "liquidation": "liq"}
"""The book's ``order_type`` of each kind of order (the column holds 8 characters)."""


def utc(value: datetime | pd.Timestamp | str) -> datetime:
    """An aware UTC ``datetime`` (naive input is read as UTC)."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def hedge_instrument(decision: Decision, symbol: str) -> str:
    """The instrument the hedge lives in: the symbol itself for ``same_perp``, else BTC/ETH."""
    return symbol if decision.hedge_instrument == "same_perp" else decision.hedge_instrument


# ---------------------------------------------------------------------------- value objects
@dataclass(frozen=True)
class FundingEvent:
    """A funding settlement of ``instrument`` at ``timestamp``, priced at ``mark_price``."""

    instrument: str
    timestamp: datetime
    rate: float
    mark_price: float


def funding_events(instrument: str, rates: pd.Series, closes: pd.Series, since: datetime,
                   until: datetime | pd.Timestamp, bar: pd.Timedelta) -> list[FundingEvent]:
    """The settlements of ``instrument`` in (``since``, ``until``], each priced at the close of
    the bar ending at the settlement (``closes`` indexed by bar open time)."""
    rates = rates[(rates.index > since) & (rates.index <= until)].dropna()
    events = []
    for ts, rate in rates.items():
        known = closes[closes.index + bar <= ts]
        if len(known):
            events.append(FundingEvent(instrument, utc(ts), float(rate), float(known.iloc[-1])))
    return events


@dataclass(frozen=True)
class OrderOutcome:
    """What became of an intent; ``fill`` is set when (part of) it filled."""

    intent: OrderIntent
    status: OrderStatus
    client_order_id: str
    reason: str | None = None
    ref_price: float | None = None
    fill: Fill | None = None
    fee_estimated: bool = False
    exchange_order_id: str | None = None


@dataclass(frozen=True)
class CycleRecord:
    """Everything one cycle writes to the book."""

    symbol: str
    bar_ts: datetime
    as_of: datetime
    mode: Mode
    decision: Decision
    marks: Mapping[str, float]
    outcomes: Sequence[OrderOutcome] = ()
    funding: Sequence[FundingEvent] = ()
    model_version: str | None = None
    forecast: Forecast | None = None


@dataclass(frozen=True)
class CycleResult:
    """What ``record_cycle`` did; ``written`` is False when the cycle was already in the book."""

    symbol: str
    bar_ts: datetime
    written: bool
    equity: float
    cash: float
    unrealised_pnl: float
    orders: int = 0
    fills: int = 0
    refused: int = 0
    funding: float = 0.0
    stops_fired: int = 0  # legs closed by exchange stops that fired, booked by this cycle


StopState = Literal["pending", "open", "cancelled", "fired", "failed"]
LIVE_STOP_STATES: tuple[StopState, ...] = ("pending", "open")


@dataclass(frozen=True)
class StopRecord:
    """One protective stop order on the exchange, as the book keeps it (``stop_orders``)."""

    symbol: str
    leg: LegName
    instrument: str
    side: str
    qty: float
    trigger_price: float
    order_type: str
    position_side: str | None
    client_order_id: str
    bar_ts: datetime
    state: StopState = "pending"
    exchange_order_id: str | None = None
    reason: str | None = None
    fill_order_id: str | None = None


@dataclass(frozen=True)
class LegView:
    """One held leg, as read from the book."""

    symbol: str
    leg: LegName
    instrument: str
    qty: float
    entry_price: float
    mark_price: float
    realised_pnl: float

    @property
    def notional(self) -> float:
        return abs(self.qty) * self.mark_price

    @property
    def unrealised(self) -> float:
        return self.qty * (self.mark_price - self.entry_price)


@dataclass(frozen=True)
class BookState:
    """Cash and legs at a moment; equity at the legs' marks."""

    initial_cash: float
    cash: float
    legs: tuple[LegView, ...] = field(default_factory=tuple)

    @property
    def unrealised(self) -> float:
        return sum(leg.unrealised for leg in self.legs)

    @property
    def equity(self) -> float:
        return self.cash + self.unrealised

    def with_marks(self, marks: Mapping[str, float]) -> BookState:
        legs = tuple(replace(leg, mark_price=float(marks[leg.instrument]))
                     if leg.instrument in marks else leg for leg in self.legs)
        return replace(self, legs=legs)

    def qty(self, symbol: str, leg: LegName, instrument: str) -> float:
        return sum(v.qty for v in self.legs
                   if (v.symbol, v.leg, v.instrument) == (symbol, leg, instrument))

    def legs_of(self, symbol: str, leg: LegName | None = None) -> list[LegView]:
        return [v for v in self.legs if v.symbol == symbol and (leg is None or v.leg == leg)
                and abs(v.qty) > _FLAT]

    def hedge_ratio(self, symbol: str, beta: float = 1.0) -> float:
        """Hedge notional over beta x main notional (0 when there is no main leg)."""
        main = sum(v.notional for v in self.legs_of(symbol, "main"))
        hedge = sum(v.notional for v in self.legs_of(symbol, "hedge"))
        return hedge / (beta * main) if main > 0 and beta > 0 else 0.0


# ---------------------------------------------------------------------------- the book
class PaperBook:
    """The book in the database at ``url``; the schema is migrated to the newest revision.

    ``initial_cash`` is recorded when the book is created; opening an existing book with a
    different figure is refused (its history was computed from the first one).
    """

    def __init__(self, url: str = db.DEFAULT_DB_URL, *, initial_cash: float | None = None,
                 quote: str = "USDT", migrate: bool = True) -> None:
        self.url = url
        if not migrate:
            path = db.sqlite_path(url)
            if path is not None and not path.exists():
                raise CascadeError(f"no paper book at {path}", "paper book",
                                   hint="run the paper loop first, or check the database URL")
        self.engine = db.make_engine(url, create_dirs=migrate)
        if migrate:
            db.upgrade(self.engine)
        else:
            try:
                have, head = db.current_revision(self.engine), db.head_revision()
            except SQLAlchemyError as exc:
                self.engine.dispose()
                raise CascadeError(f"cannot read the paper book: {exc}", db.safe_url(url)) from exc
            if have != head:
                self.engine.dispose()
                raise CascadeError(f"the paper book schema is at {have}, not {head}",
                                   db.safe_url(url), hint="open it once with migrations on")
        self.initial_cash = self._account(initial_cash, quote)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> PaperBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _account(self, initial_cash: float | None, quote: str) -> float:
        if initial_cash is not None and not (initial_cash > 0 and math.isfinite(initial_cash)):
            raise CascadeError(f"initial cash must be positive, got {initial_cash}")
        with Session(self.engine) as s, s.begin():
            account = s.scalar(select(Account).where(Account.id == 1))
            if account is None:
                account = Account(id=1, initial_cash=initial_cash or 10_000.0, quote=quote,
                                  created_at=datetime.now(UTC))
                s.add(account)
            elif initial_cash is not None and not math.isclose(account.initial_cash,
                                                               initial_cash):
                raise CascadeError(
                    f"this book started with {account.initial_cash:,.2f} {account.quote}, not "
                    f"{initial_cash:,.2f}", db.safe_url(self.url),
                    hint="use a new database URL for a new starting balance")
            return float(account.initial_cash)

    # ------------------------------------------------------------------ reading
    def has_cycle(self, symbol: str, bar_ts: datetime | pd.Timestamp | str) -> bool:
        with Session(self.engine) as s:
            return _decision(s, symbol, utc(bar_ts)) is not None

    def state(self, marks: Mapping[str, float] | None = None) -> BookState:
        """Cash and legs now (legs marked at ``marks`` where given, else their last mark)."""
        with Session(self.engine) as s:
            state = _state(s, self.initial_cash)
        return state.with_marks(marks) if marks else state

    def last_as_of(self, symbol: str) -> datetime | None:
        """The clock time of the symbol's newest recorded cycle."""
        with Session(self.engine) as s:
            return s.scalar(select(func.max(DecisionRow.as_of))
                            .where(DecisionRow.symbol == symbol))

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table of the book as a DataFrame (for reports)."""
        tables = {"decisions": DecisionRow, "orders": OrderRow, "fills": FillRow,
                  "positions": PositionRow, "hedges": HedgeRow,
                  "funding_payments": FundingPaymentRow, "equity_snapshots": EquitySnapshotRow,
                  "stop_orders": StopOrderRow}
        out = {}
        with Session(self.engine) as s:
            for name, model in tables.items():
                cols = [c.key for c in model.__table__.columns]
                rows = s.execute(select(*[getattr(model, c) for c in cols])
                                 .order_by(model.id)).all()
                out[name] = pd.DataFrame([tuple(r) for r in rows], columns=cols)
        return out

    def has_order(self, client_order_id: str) -> bool:
        """Whether an order with this client order id is booked (a fired stop is booked once)."""
        with Session(self.engine) as s:
            return s.scalar(select(OrderRow.id).where(
                OrderRow.client_order_id == client_order_id)) is not None

    def live_stops(self, symbol: str) -> list[StopRecord]:
        """The symbol's stop orders that may rest on the exchange (pending or open), oldest
        first."""
        with Session(self.engine) as s:
            rows = s.scalars(select(StopOrderRow).where(
                StopOrderRow.symbol == symbol, StopOrderRow.state.in_(LIVE_STOP_STATES))
                .order_by(StopOrderRow.id))
            return [_stop_record(r) for r in rows]

    # ------------------------------------------------------------------ writing
    def add_stop(self, stop: StopRecord) -> None:
        """Record a stop order before it is sent (``pending``): a process killed after sending
        leaves a row the next cycle resolves by its client order id."""
        now = datetime.now(UTC)
        with Session(self.engine) as s, s.begin():
            s.add(StopOrderRow(
                symbol=stop.symbol, leg=stop.leg, instrument=stop.instrument, side=stop.side,
                qty=stop.qty, trigger_price=stop.trigger_price, order_type=stop.order_type,
                position_side=stop.position_side, client_order_id=stop.client_order_id,
                exchange_order_id=stop.exchange_order_id, state=stop.state, reason=stop.reason,
                fill_order_id=stop.fill_order_id, bar_ts=utc(stop.bar_ts), created_at=now,
                updated_at=now))

    def update_stop(self, client_order_id: str, state: StopState, *,
                    exchange_order_id: str | None = None, reason: str | None = None,
                    fill_order_id: str | None = None) -> None:
        """Move a stop order to ``state`` (ids and reason kept when not given)."""
        with Session(self.engine) as s, s.begin():
            row = s.scalar(select(StopOrderRow).where(
                StopOrderRow.client_order_id == client_order_id))
            if row is None:
                raise CascadeError(f"no stop order {client_order_id} in the book", "paper book")
            row.state = state
            row.exchange_order_id = exchange_order_id or row.exchange_order_id
            row.reason = reason or row.reason
            row.fill_order_id = fill_order_id or row.fill_order_id
            row.updated_at = datetime.now(UTC)

    def record_cycle(self, record: CycleRecord) -> CycleResult:
        """Write one cycle atomically; a cycle already in the book is left as it is."""
        bar_ts, as_of = utc(record.bar_ts), utc(record.as_of)
        try:
            with Session(self.engine) as s, s.begin():
                if _decision(s, record.symbol, bar_ts) is not None:
                    return _result(s, self.initial_cash, record.symbol, bar_ts, written=False)
                prev = s.scalar(select(func.max(DecisionRow.as_of))
                                .where(DecisionRow.symbol == record.symbol))
                decision = _decision_row(record, bar_ts, as_of)
                s.add(decision)
                s.flush()
                _mark_positions(s, record.marks, as_of)
                paid = _charge_funding(s, record, prev, as_of)
                fills = 0
                for outcome in record.outcomes:
                    fills += _write_order(s, record, decision.id, outcome, bar_ts, as_of)
                _hedge_snapshot(s, record, bar_ts)
                _equity_snapshot(s, self.initial_cash, bar_ts, as_of)
                s.flush()
                result = _result(s, self.initial_cash, record.symbol, bar_ts, written=True)
                return replace(result, orders=len(record.outcomes), fills=fills,
                               refused=sum(o.status == "refused" for o in record.outcomes),
                               funding=paid)
        except IntegrityError:  # another writer recorded the same cycle first
            with Session(self.engine) as s:
                if _decision(s, record.symbol, bar_ts) is None:
                    raise
                return _result(s, self.initial_cash, record.symbol, bar_ts, written=False)

    # ------------------------------------------------------------------ reconciliation
    def pending_orders(self) -> pd.DataFrame:
        """Orders sent whose answer is not known yet (status ``submitted``)."""
        orders = self.frames()["orders"]
        return orders[orders["status"] == "submitted"]

    def client_order_ids(self) -> set[str]:
        """Every client order id the book holds."""
        with Session(self.engine) as s:
            return set(s.scalars(select(OrderRow.client_order_id)))

    def stop_states(self) -> dict[str, StopState]:
        """Every stop order's state by client order id: an exchange order under one of these
        ids is that stop fired, booked by the cycle (``ExchangeStops.fired``) while it is live."""
        with Session(self.engine) as s:
            return {cid: state for cid, state in s.execute(
                select(StopOrderRow.client_order_id, StopOrderRow.state))}

    def resolve_order(self, client_order_id: str, status: OrderStatus, *, at: datetime,
                      fill: Fill | None = None, fee_estimated: bool = False,
                      exchange_order_id: str | None = None, reason: str | None = None) -> bool:
        """Book what the exchange says became of a ``submitted`` order (its fill, if any), in
        one transaction; False when the order is not pending (already resolved)."""
        with Session(self.engine) as s, s.begin():
            order = s.scalar(select(OrderRow).where(
                OrderRow.client_order_id == client_order_id))
            if order is None or order.status != "submitted":
                return False
            order.status, order.reason = status, reason
            order.exchange_order_id = exchange_order_id or order.exchange_order_id
            if fill is not None:
                _apply_fill(s, order, fill, fee_estimated, None, utc(at))
            return True


# ---------------------------------------------------------------------------- helpers
def _decision(s: Session, symbol: str, bar_ts: datetime) -> DecisionRow | None:
    return s.scalar(select(DecisionRow).where(DecisionRow.symbol == symbol,
                                              DecisionRow.bar_ts == bar_ts))


def _stop_record(r: StopOrderRow) -> StopRecord:
    return StopRecord(symbol=r.symbol, leg=r.leg, instrument=r.instrument,  # type: ignore[arg-type]
                      side=r.side, qty=r.qty, trigger_price=r.trigger_price,
                      order_type=r.order_type, position_side=r.position_side,
                      client_order_id=r.client_order_id, bar_ts=r.bar_ts,
                      state=r.state, exchange_order_id=r.exchange_order_id,  # type: ignore[arg-type]
                      reason=r.reason, fill_order_id=r.fill_order_id)


def _ledger(s: Session) -> dict[str, float]:
    fills = s.execute(select(func.coalesce(func.sum(FillRow.realised_pnl), 0.0),
                             func.coalesce(func.sum(FillRow.fee), 0.0),
                             func.coalesce(func.sum(FillRow.slippage), 0.0))).one()
    funding = s.scalar(select(func.coalesce(func.sum(FundingPaymentRow.amount), 0.0)))
    return {"realised": float(fills[0]), "fees": float(fills[1]), "slippage": float(fills[2]),
            "funding": float(funding or 0.0)}


def _state(s: Session, initial_cash: float) -> BookState:
    led = _ledger(s)
    cash = initial_cash + led["realised"] - led["fees"] + led["funding"]
    legs = tuple(LegView(r.symbol, r.leg, r.instrument, r.qty, r.entry_price,  # type: ignore[arg-type]
                         r.mark_price, r.realised_pnl)
                 for r in s.scalars(select(PositionRow).order_by(PositionRow.id)))
    return BookState(initial_cash=initial_cash, cash=cash, legs=legs)


def _result(s: Session, initial_cash: float, symbol: str, bar_ts: datetime, *,
            written: bool) -> CycleResult:
    state = _state(s, initial_cash)
    return CycleResult(symbol=symbol, bar_ts=bar_ts, written=written, equity=state.equity,
                       cash=state.cash, unrealised_pnl=state.unrealised)


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _decision_row(record: CycleRecord, bar_ts: datetime, as_of: datetime) -> DecisionRow:
    d, f = record.decision, record.forecast
    return DecisionRow(
        symbol=record.symbol, bar_ts=bar_ts, as_of=as_of, mode=record.mode, action=d.action,
        hedge_ratio=d.hedge_ratio, current_hedge_ratio=d.current_hedge_ratio,
        hedge_instrument=hedge_instrument(d, record.symbol), hedge_beta=d.hedge_beta,
        hedge_notional=d.hedge_notional, leverage_cap=d.leverage_cap,
        size_cap_notional=d.size_cap_notional, risk_score=_finite_or_none(d.risk_score),
        fail_safe=d.fail_safe, reasons=list(d.reasons), model_version=record.model_version,
        mark_price=_finite_or_none(record.marks.get(record.symbol)),
        forecast_vol=_finite_or_none(f.sigma_h) if f else None,
        horizon_hours=f.horizon_hours if f else None,
        cascade_prob=_finite_or_none(f.cascade_prob) if f else None)


def _mark_positions(s: Session, marks: Mapping[str, float], as_of: datetime) -> None:
    for row in s.scalars(select(PositionRow)):
        if row.instrument in marks:
            row.mark_price = float(marks[row.instrument])
            row.updated_at = as_of


def _charge_funding(s: Session, record: CycleRecord, prev: datetime | None,
                    as_of: datetime) -> float:
    """Funding settled since the previous cycle on this symbol's legs as they stood."""
    if prev is None:
        return 0.0  # no earlier cycle: no leg was held
    total = 0.0
    legs = list(s.scalars(select(PositionRow).where(PositionRow.symbol == record.symbol)))
    for event in record.funding:
        when = utc(event.timestamp)
        if not prev < when <= as_of:
            continue
        for row in legs:
            if row.instrument != event.instrument or abs(row.qty) <= _FLAT:
                continue
            exists = s.scalar(select(FundingPaymentRow.id).where(
                FundingPaymentRow.symbol == row.symbol, FundingPaymentRow.leg == row.leg,
                FundingPaymentRow.instrument == row.instrument,
                FundingPaymentRow.funding_ts == when))
            if exists is not None:
                continue
            amount = funding_amount(row.qty, event.mark_price, event.rate)
            s.add(FundingPaymentRow(symbol=row.symbol, leg=row.leg, instrument=row.instrument,
                                    funding_ts=when, rate=event.rate, qty=row.qty,
                                    mark_price=event.mark_price, amount=amount))
            total += amount
    return total


def _write_order(s: Session, record: CycleRecord, decision_id: int, outcome: OrderOutcome,
                 bar_ts: datetime, as_of: datetime) -> int:
    """The order row, and for a fill its fill row and the leg it moves; returns fills written."""
    intent = outcome.intent
    order = OrderRow(decision_id=decision_id, symbol=record.symbol, bar_ts=bar_ts,
                     leg=intent.leg, instrument=intent.instrument, side=intent.side,
                     qty=intent.qty, order_type=ORDER_TYPES[intent.kind], mode=record.mode,
                     status=outcome.status, reason=outcome.reason,
                     client_order_id=outcome.client_order_id,
                     exchange_order_id=outcome.exchange_order_id,
                     ref_price=outcome.ref_price, created_at=as_of)
    s.add(order)
    s.flush()
    if outcome.fill is None:
        return 0
    _apply_fill(s, order, outcome.fill, outcome.fee_estimated,
                record.marks.get(intent.instrument), as_of)
    return 1


def _apply_fill(s: Session, order: OrderRow, fill: Fill, fee_estimated: bool,
                mark: float | None, at: datetime) -> None:
    """The fill row of ``order`` and the leg it moves."""
    row = s.scalar(select(PositionRow).where(PositionRow.symbol == order.symbol,
                                             PositionRow.leg == order.leg,
                                             PositionRow.instrument == order.instrument))
    if row is None:
        row = PositionRow(symbol=order.symbol, leg=order.leg, instrument=order.instrument,
                          qty=0.0, entry_price=0.0, mark_price=fill.price, realised_pnl=0.0,
                          updated_at=at)
        s.add(row)
    dq = fill.qty if fill.side == "buy" else -fill.qty
    row.qty, row.entry_price, realised = position_after_fill(row.qty, row.entry_price, dq,
                                                             fill.price)
    row.realised_pnl += realised
    row.mark_price = float(mark if mark is not None else row.mark_price)
    row.updated_at = at
    s.add(FillRow(order_id=order.id, symbol=order.symbol, leg=order.leg,
                  instrument=order.instrument, side=fill.side, qty=fill.qty, price=fill.price,
                  ref_price=fill.ref_price, fee=fill.fee, fee_estimated=fee_estimated,
                  slippage=fill.slippage, realised_pnl=realised, filled_at=at))
    s.flush()


def _hedge_snapshot(s: Session, record: CycleRecord, bar_ts: datetime) -> None:
    state = _state(s, 0.0)
    d = record.decision
    main = sum(v.notional for v in state.legs_of(record.symbol, "main"))
    hedge = sum(v.notional for v in state.legs_of(record.symbol, "hedge"))
    s.add(HedgeRow(symbol=record.symbol, bar_ts=bar_ts,
                   instrument=hedge_instrument(d, record.symbol), beta=d.hedge_beta,
                   target_ratio=d.hedge_ratio,
                   actual_ratio=state.hedge_ratio(record.symbol, d.hedge_beta),
                   hedge_notional=hedge, main_notional=main))


def _equity_snapshot(s: Session, initial_cash: float, bar_ts: datetime,
                     as_of: datetime) -> None:
    """Account equity after this cycle; the bar's row is updated by its later cycles."""
    s.flush()
    led = _ledger(s)
    state = _state(s, initial_cash)
    values = {"as_of": as_of, "cash": state.cash, "unrealised_pnl": state.unrealised,
              "equity": state.equity, "realised_pnl": led["realised"], "fees": led["fees"],
              "slippage": led["slippage"], "funding": led["funding"],
              "gross_notional": sum(v.notional for v in state.legs)}
    row = s.scalar(select(EquitySnapshotRow).where(EquitySnapshotRow.bar_ts == bar_ts))
    if row is None:
        s.add(EquitySnapshotRow(bar_ts=bar_ts, **values))
    else:
        for key, value in values.items():
            setattr(row, key, value)
