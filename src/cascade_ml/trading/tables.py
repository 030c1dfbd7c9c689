"""Tables of the paper-trading book (SQLAlchemy 2.x ORM). The schema itself is created and
changed only by the Alembic migrations in ``trading/migrations``; a test checks that these classes
and the migrations describe the same schema.

Keys that make writes idempotent: a cycle is one (symbol, bar timestamp), so ``decisions``,
``orders`` and ``hedges`` are unique on it (plus leg and instrument for orders), funding payments
on (symbol, leg, instrument, settlement time) and equity snapshots on the bar timestamp.
``stop_orders`` holds the protective stops resting on the exchange (testnet / live), one row per
order placed, unique on its client order id. Times are stored as naive UTC and read back as
timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints, so later migrations (and SQLite batch mode) can refer to them.
NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_N_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
          "pk": "pk_%(table_name)s"}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, naive UTC stored (portable: SQLite keeps no offset), aware out."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict: JSON, list: JSON}


class Account(Base):
    """The paper account: its starting cash (one row)."""

    __tablename__ = "account"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    initial_cash: Mapped[float] = mapped_column(Float)
    quote: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class DecisionRow(Base):
    """The policy's decision of one cycle, with the forecast it came from."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("symbol", "bar_ts"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    bar_ts: Mapped[datetime] = mapped_column(index=True)
    as_of: Mapped[datetime]
    mode: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(16))
    hedge_ratio: Mapped[float] = mapped_column(Float)
    current_hedge_ratio: Mapped[float] = mapped_column(Float)
    hedge_instrument: Mapped[str] = mapped_column(String(32))
    hedge_beta: Mapped[float] = mapped_column(Float)
    hedge_notional: Mapped[float] = mapped_column(Float)
    leverage_cap: Mapped[float] = mapped_column(Float)
    size_cap_notional: Mapped[float] = mapped_column(Float)
    risk_score: Mapped[float | None] = mapped_column(Float)
    fail_safe: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list] = mapped_column(JSON)
    model_version: Mapped[str | None] = mapped_column(String(64))
    mark_price: Mapped[float | None] = mapped_column(Float)
    forecast_vol: Mapped[float | None] = mapped_column(Float)
    horizon_hours: Mapped[float | None] = mapped_column(Float)
    cascade_prob: Mapped[float | None] = mapped_column(Float)


class OrderRow(Base):
    """An order the cycle wanted: filled, submitted, refused (with the reason) or failed."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("symbol", "bar_ts", "leg", "instrument"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    bar_ts: Mapped[datetime]
    leg: Mapped[str] = mapped_column(String(8))
    instrument: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[float] = mapped_column(Float)
    order_type: Mapped[str] = mapped_column(String(8))
    mode: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(64))
    ref_price: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]


class FillRow(Base):
    """A fill: price, quantity, fee and slippage cost, and the P&L it realised."""

    __tablename__ = "fills"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    symbol: Mapped[str] = mapped_column(String(32))
    leg: Mapped[str] = mapped_column(String(8))
    instrument: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    ref_price: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float)
    fee_estimated: Mapped[bool] = mapped_column(Boolean)
    slippage: Mapped[float] = mapped_column(Float)
    realised_pnl: Mapped[float] = mapped_column(Float)
    filled_at: Mapped[datetime]


class PositionRow(Base):
    """A leg held now: signed quantity (long > 0), average entry, last mark, realised P&L."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("symbol", "leg", "instrument"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    leg: Mapped[str] = mapped_column(String(8))
    instrument: Mapped[str] = mapped_column(String(32))
    qty: Mapped[float] = mapped_column(Float)
    entry_price: Mapped[float] = mapped_column(Float)
    mark_price: Mapped[float] = mapped_column(Float)
    realised_pnl: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime]


class HedgeRow(Base):
    """The hedge after each cycle: target ratio (policy) vs the ratio actually held."""

    __tablename__ = "hedges"
    __table_args__ = (UniqueConstraint("symbol", "bar_ts"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    bar_ts: Mapped[datetime]
    instrument: Mapped[str] = mapped_column(String(32))
    beta: Mapped[float] = mapped_column(Float)
    target_ratio: Mapped[float] = mapped_column(Float)
    actual_ratio: Mapped[float] = mapped_column(Float)
    hedge_notional: Mapped[float] = mapped_column(Float)
    main_notional: Mapped[float] = mapped_column(Float)


class FundingPaymentRow(Base):
    """Funding settled on a held leg: ``amount`` > 0 received, < 0 paid."""

    __tablename__ = "funding_payments"
    __table_args__ = (UniqueConstraint("symbol", "leg", "instrument", "funding_ts"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    leg: Mapped[str] = mapped_column(String(8))
    instrument: Mapped[str] = mapped_column(String(32))
    funding_ts: Mapped[datetime]
    rate: Mapped[float] = mapped_column(Float)
    qty: Mapped[float] = mapped_column(Float)
    mark_price: Mapped[float] = mapped_column(Float)
    amount: Mapped[float] = mapped_column(Float)


class EquitySnapshotRow(Base):
    """Account equity after the cycles of a bar: cash + unrealised P&L, and the running costs."""

    __tablename__ = "equity_snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_ts: Mapped[datetime] = mapped_column(unique=True)
    as_of: Mapped[datetime]
    cash: Mapped[float] = mapped_column(Float)
    unrealised_pnl: Mapped[float] = mapped_column(Float)
    equity: Mapped[float] = mapped_column(Float)
    realised_pnl: Mapped[float] = mapped_column(Float)
    fees: Mapped[float] = mapped_column(Float)
    slippage: Mapped[float] = mapped_column(Float)
    funding: Mapped[float] = mapped_column(Float)
    gross_notional: Mapped[float] = mapped_column(Float)


class StopOrderRow(Base):
    """A protective stop resting on the exchange (``trading.stops``): ``pending`` before it is
    sent (write-ahead), then ``open``, and at the end ``cancelled``, ``fired`` (its fill is in
    ``orders``/``fills`` under the same client order id) or ``failed``."""

    __tablename__ = "stop_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    leg: Mapped[str] = mapped_column(String(8))
    instrument: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[float] = mapped_column(Float)
    trigger_price: Mapped[float] = mapped_column(Float)
    order_type: Mapped[str] = mapped_column(String(24))
    position_side: Mapped[str | None] = mapped_column(String(8))
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    fill_order_id: Mapped[str | None] = mapped_column(String(64))
    bar_ts: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
