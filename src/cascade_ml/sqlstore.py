"""Databases the project creates (MLflow's tracking store, Optuna's studies): built whole or
not at all, and locked while a schema is built, on SQLite and on a server. (The paper book
needs neither on SQLite: its migrations run in one transaction, see ``live.db``.)

SQLite, the embedded default: a new database is built in a temp file beside its path (named by
``atomic.temp_prefix``, so a killed build is swept like any other temp) and hard-linked into
place only once its schema is complete. A link never replaces a file, and the build runs under a
lock on the folder, so two processes starting at once build it once; a reader finds no file or a
whole database, never a half-migrated one.

A server (PostgreSQL): DDL is transactional there, but two processes creating the same schema at
once collide (``duplicate key value violates unique constraint "pg_type_typname_nsp_index"``);
``schema_lock`` holds a PostgreSQL advisory lock (scoped to the database), keyed by the store's
name, around that work.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from cascade_ml.atomic import sweep_temps, temp_prefix

SQLITE_COMPANIONS = ("-journal", "-wal", "-shm")


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages and reports."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def sqlite_path(url: str) -> Path | None:
    """The file of a file-backed SQLite URL, else None (memory, another database, bad URL)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def is_postgres(url: str) -> bool:
    try:
        return make_url(url).get_backend_name() == "postgresql"
    except ArgumentError:
        return False


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the folder itself (nothing is left behind), released when the
    block ends or the process dies."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link(tmp: Path, path: Path) -> bool:
    """Put ``tmp`` at ``path`` unless a file is there (a hard link never replaces one; on a
    file system without hard links, a rename checked under the folder lock)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:
        if path.exists():
            return False
        os.replace(tmp, path)
    return True


def create_sqlite(path: str | Path, build: Callable[[str], None], *,
                  replace_if: Callable[[Path], bool] | None = None) -> bool:
    """Make the SQLite database at ``path`` whole: when it is missing (or ``replace_if(path)``
    says the one there must go), ``build(url)`` creates the schema in a temp file beside it,
    which then takes its place. Returns True when a new database was put there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(path.parent):
        sweep_temps(path.parent)
        replace = path.exists() and replace_if is not None and replace_if(path)
        if path.exists() and not replace:
            return False
        tmp = path.parent / f"{temp_prefix()}{secrets.token_hex(4)}{path.suffix or '.db'}"
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # umask applies
        try:
            build(f"sqlite:///{tmp}")
            _fsync(tmp)
            if replace:
                os.replace(tmp, path)
            elif not _link(tmp, path):
                return False  # made meanwhile by a process that does not take the lock
            _fsync(path.parent)
        finally:
            for leftover in (tmp, *(Path(f"{tmp}{end}") for end in SQLITE_COMPANIONS)):
                leftover.unlink(missing_ok=True)
    return True


def scratch_engine(url: str) -> Engine:
    """An engine for building a schema in ``create_sqlite``'s temp file: no journal file and no
    fsync per statement (the file is thrown away if the build dies, and synced once before it
    takes its place), so a schema of many migrations builds in memory time."""
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API objects
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()

    return engine


def advisory_key(name: str) -> int:
    """A signed 64-bit PostgreSQL advisory-lock key for ``name`` (stable across processes)."""
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def schema_lock(url: str, name: str) -> Iterator[None]:
    """Hold the database's advisory lock ``name`` while a store's schema is built; a
    no-op for SQLite (``create_sqlite`` covers it) and databases other than PostgreSQL."""
    if not is_postgres(url):
        yield
        return
    engine = create_engine(make_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": advisory_key(name)})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"),
                             {"key": advisory_key(name)})
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------- Optuna
def rdb_storage(url: str):  # noqa: ANN201 - optuna.storages.RDBStorage (imported lazily)
    """The Optuna storage at ``url`` (``models.optuna_storage``, ``panel.optuna_storage``),
    its schema built whole: a new SQLite file in a temp file put in place by
    ``create_sqlite``, a server's under ``schema_lock``. SQLite waits up to 60 s for a lock
    instead of failing when workers collide."""
    import optuna

    path = sqlite_path(url)
    if path is not None:
        create_sqlite(path, lambda tmp: optuna.storages.RDBStorage(tmp).engine.dispose())
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    with schema_lock(url, "optuna"):
        return optuna.storages.RDBStorage(url)
