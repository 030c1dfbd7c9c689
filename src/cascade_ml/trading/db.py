"""Database plumbing of the paper book: engines from a URL, and Alembic migrations run in code.

SQLite (the default, a file under ``data/paper``) gets three settings on every connection:
foreign keys on, a busy timeout, and SQLAlchemy's documented "BEGIN on begin" recipe so that a
transaction really starts with its first statement and a cycle's reads and writes are atomic.
That recipe also makes SQLite's DDL transactional: a migration killed half-way leaves the schema
as it was (the file may exist, empty), and the next open migrates again. Migrations start with
``BEGIN IMMEDIATE`` so two processes opening a new book migrate one after the other.

PostgreSQL (``postgresql://user@host/db``; psycopg, SQLAlchemy's default driver for it, is a
dependency) gets the same one-writer-at-a-time rule SQLite has: every transaction of the book
starts by taking a transaction-scoped advisory lock (``pg_advisory_xact_lock``, waited for at most
``LOCK_TIMEOUT_S`` like SQLite's busy timeout), so two loops writing one book never interleave a
cycle (the equity snapshot of a bar is computed over every symbol's fills) and two processes
opening a new book migrate one after the other. Other SQLAlchemy URLs work without that lock.
"""

from __future__ import annotations

import logging
from pathlib import Path

# The book migrates on every open: Alembic's INFO lines (at import and per run) are noise there.
logging.getLogger("alembic").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402
from sqlalchemy import Engine, create_engine, event  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError  # noqa: E402

from cascade_ml.errors import CascadeError  # noqa: E402
from cascade_ml.sqlstore import advisory_key, safe_url, sqlite_path  # noqa: E402

DEFAULT_DB_URL = "sqlite:///data/paper/book.db"
"""The book of a pipeline that names none: a SQLite file beside the store."""
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_TIMEOUT_S = 10  # SQLite's busy timeout below, and PostgreSQL's wait for the book's lock
BOOK_LOCK = advisory_key("cascade_ml.paper_book")


def make_engine(url: str, *, create_dirs: bool = True) -> Engine:
    """An engine for ``url``; bad URLs and missing drivers are a CascadeError naming the URL."""
    try:
        parsed = make_url(url)
        path = sqlite_path(url)
        if path is not None and create_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise CascadeError(f"cannot open database {safe_url(url)}: {exc}", "paper book",
                           hint=f"use a SQLAlchemy URL such as {DEFAULT_DB_URL}") from exc
    if engine.dialect.name == "sqlite":
        _sqlite_settings(engine)
    elif engine.dialect.name == "postgresql":
        _postgres_settings(engine)
    return engine


def _sqlite_settings(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API objects
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # noqa: ANN001 - a SQLAlchemy Connection
        immediate = conn.get_execution_options().get("migrating", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _postgres_settings(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API objects
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'")
        cursor.close()
        dbapi_connection.commit()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # noqa: ANN001 - a SQLAlchemy Connection
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({BOOK_LOCK})")


def alembic_config() -> Config:
    """Alembic's configuration built in code: the migration scripts shipped in the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise CascadeError("no paper-book migrations found", str(MIGRATIONS))
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest) in one transaction."""
    cfg = alembic_config()
    try:
        with engine.connect() as conn, conn.execution_options(migrating=True).begin():
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except SQLAlchemyError as exc:
        raise CascadeError(f"migrating the paper book failed: {exc}",
                           safe_url(str(engine.url))) from exc


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (``"base"`` drops every table of the book)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
