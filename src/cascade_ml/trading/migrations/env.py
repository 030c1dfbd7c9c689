"""Alembic environment of the paper book, run programmatically by ``cascade_ml.trading.db``.

The caller hands over an open connection in ``config.attributes["connection"]`` (so the URL is
never parsed by configparser and one transaction covers the upgrade); the ``alembic`` command
line works too when ``sqlalchemy.url`` is set. SQLite uses batch mode so later migrations can
alter tables.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from cascade_ml.trading.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # noqa: ANN001 - a SQLAlchemy Connection
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
