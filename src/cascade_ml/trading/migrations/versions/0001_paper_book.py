"""Paper book: account, decisions, orders, fills, positions, hedges, funding payments, equity.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Times are naive UTC ``DateTime`` columns (the models' ``UTCDateTime`` adds the zone back on
read); this script spells out plain SQLAlchemy types so it never changes when the models do.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _float(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Float(), nullable=nullable)


def _time(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "account", _id(), _float("initial_cash"), _str("quote", 16), _time("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")))
    op.create_table(
        "decisions", _id(), _str("symbol", 32), _time("bar_ts"), _time("as_of"),
        _str("mode", 8), _str("action", 16), _float("hedge_ratio"),
        _float("current_hedge_ratio"), _str("hedge_instrument", 32), _float("hedge_beta"),
        _float("hedge_notional"), _float("leverage_cap"), _float("size_cap_notional"),
        _float("risk_score", nullable=True), sa.Column("fail_safe", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False), _str("model_version", 64, nullable=True),
        _float("mark_price", nullable=True), _float("forecast_vol", nullable=True),
        _float("horizon_hours", nullable=True), _float("cascade_prob", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("symbol", "bar_ts", name=op.f("uq_decisions_symbol_bar_ts")))
    op.create_index(op.f("ix_decisions_bar_ts"), "decisions", ["bar_ts"], unique=False)
    op.create_table(
        "equity_snapshots", _id(), _time("bar_ts"), _time("as_of"), _float("cash"),
        _float("unrealised_pnl"), _float("equity"), _float("realised_pnl"), _float("fees"),
        _float("slippage"), _float("funding"), _float("gross_notional"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equity_snapshots")),
        sa.UniqueConstraint("bar_ts", name=op.f("uq_equity_snapshots_bar_ts")))
    op.create_table(
        "funding_payments", _id(), _str("symbol", 32), _str("leg", 8), _str("instrument", 32),
        _time("funding_ts"), _float("rate"), _float("qty"), _float("mark_price"),
        _float("amount"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funding_payments")),
        sa.UniqueConstraint("symbol", "leg", "instrument", "funding_ts",
                            name=op.f("uq_funding_payments_symbol_leg_instrument_funding_ts")))
    op.create_table(
        "hedges", _id(), _str("symbol", 32), _time("bar_ts"), _str("instrument", 32),
        _float("beta"), _float("target_ratio"), _float("actual_ratio"),
        _float("hedge_notional"), _float("main_notional"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hedges")),
        sa.UniqueConstraint("symbol", "bar_ts", name=op.f("uq_hedges_symbol_bar_ts")))
    op.create_table(
        "positions", _id(), _str("symbol", 32), _str("leg", 8), _str("instrument", 32),
        _float("qty"), _float("entry_price"), _float("mark_price"), _float("realised_pnl"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint("symbol", "leg", "instrument",
                            name=op.f("uq_positions_symbol_leg_instrument")))
    op.create_table(
        "orders", _id(), sa.Column("decision_id", sa.Integer(), nullable=False),
        _str("symbol", 32), _time("bar_ts"), _str("leg", 8), _str("instrument", 32),
        _str("side", 4), _float("qty"), _str("order_type", 8), _str("mode", 8),
        _str("status", 16), sa.Column("reason", sa.Text(), nullable=True),
        _str("client_order_id", 64), _str("exchange_order_id", 64, nullable=True),
        _float("ref_price", nullable=True), _time("created_at"),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"],
                                name=op.f("fk_orders_decision_id_decisions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
        sa.UniqueConstraint("symbol", "bar_ts", "leg", "instrument",
                            name=op.f("uq_orders_symbol_bar_ts_leg_instrument")))
    op.create_index(op.f("ix_orders_decision_id"), "orders", ["decision_id"], unique=False)
    op.create_table(
        "fills", _id(), sa.Column("order_id", sa.Integer(), nullable=False),
        _str("symbol", 32), _str("leg", 8), _str("instrument", 32), _str("side", 4),
        _float("qty"), _float("price"), _float("ref_price"), _float("fee"),
        sa.Column("fee_estimated", sa.Boolean(), nullable=False), _float("slippage"),
        _float("realised_pnl"), _time("filled_at"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"],
                                name=op.f("fk_fills_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("order_id", name=op.f("uq_fills_order_id")))


def downgrade() -> None:
    op.drop_table("fills")
    op.drop_index(op.f("ix_orders_decision_id"), table_name="orders")
    op.drop_table("orders")
    op.drop_table("positions")
    op.drop_table("hedges")
    op.drop_table("funding_payments")
    op.drop_table("equity_snapshots")
    op.drop_index(op.f("ix_decisions_bar_ts"), table_name="decisions")
    op.drop_table("decisions")
    op.drop_table("account")
