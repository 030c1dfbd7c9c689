"""A PostgreSQL server on this machine, started from the ``pgserver`` package (a dev dependency
that ships the server's binaries): the one the PostgreSQL tests and the soak's ``--postgres``
run share, so a book, MLflow or Optuna URL can be tried against a real server with nothing
installed by hand. Not for production: a deployment points ``live.db_url`` at its own server.

The server listens only on a unix socket inside its data folder (no TCP port). As root,
``pgserver`` runs it as a system user ``pgserver`` it creates (PostgreSQL refuses to run as root)
and opens the data folder's parents to that user (``o+rx``); a later ``chmod 700`` of a parent
(pytest closes ``/tmp/pytest-of-<user>`` again) takes the data folder away and the server shuts
down, so the folder should not live there.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text

if TYPE_CHECKING:
    from pgserver import PostgresServer


def start_server(pgdata: Path, *, stop_at_exit: bool = True) -> PostgresServer:
    """The server of the data folder ``pgdata`` (created and initialised if new; started if it is
    not running; an already running one is reused). ``stop_at_exit``: stop it when the last
    process holding it exits (the data stay); otherwise it keeps running."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

        return pgserver.get_server(Path(pgdata), cleanup_mode="stop" if stop_at_exit else None)


def database_url(server: PostgresServer, name: str) -> str:
    """The SQLAlchemy URL (``postgresql://``, psycopg) of database ``name`` on ``server``."""
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{name}?host={socket_dir}"


def _admin(server: PostgresServer):  # noqa: ANN202 - sqlalchemy Engine
    return create_engine(database_url(server, "postgres"), isolation_level="AUTOCOMMIT")


def create_database(server: PostgresServer, name: str, *, exist_ok: bool = False) -> str:
    """Create database ``name`` (kept if it exists and ``exist_ok``); returns its URL."""
    admin = _admin(server)
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": name}).first() is not None
            if not (exists and exist_ok):
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return database_url(server, name)


def drop_database(server: PostgresServer, name: str) -> None:
    """Drop database ``name`` if it exists, closing the connections still open to it."""
    admin = _admin(server)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
