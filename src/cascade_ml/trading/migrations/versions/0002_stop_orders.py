"""Protective stops resting on the exchange (testnet / live): ``stop_orders``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

Plain SQLAlchemy types, as in 0001 (times naive UTC); runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _time(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "stop_orders", sa.Column("id", sa.Integer(), nullable=False), _str("symbol", 32),
        _str("leg", 8), _str("instrument", 32), _str("side", 4),
        sa.Column("qty", sa.Float(), nullable=False),
        sa.Column("trigger_price", sa.Float(), nullable=False), _str("order_type", 24),
        _str("position_side", 8, nullable=True), _str("client_order_id", 64),
        _str("exchange_order_id", 64, nullable=True), _str("state", 16),
        sa.Column("reason", sa.Text(), nullable=True), _str("fill_order_id", 64, nullable=True),
        _time("bar_ts"), _time("created_at"), _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stop_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_stop_orders_client_order_id")))
    op.create_index(op.f("ix_stop_orders_symbol"), "stop_orders", ["symbol"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_stop_orders_symbol"), table_name="stop_orders")
    op.drop_table("stop_orders")
