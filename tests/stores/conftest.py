"""A real PostgreSQL server for the store tests, started from the ``pgserver`` package (a dev
dependency that ships the server's binaries): one per test session (per xdist worker), its data
folder a temp folder, reachable only through a unix socket in that folder.

As root, ``pgserver`` runs the server as a system user ``pgserver`` it creates (PostgreSQL
refuses to run as root) and opens the data folder's parents to that user (``o+rx``). The folder
is therefore not under pytest's ``/tmp/pytest-of-<user>``: any later pytest session closes that
folder again (``chmod 700``), the server loses its data folder and shuts down. It is named like
the project's temps (``atomic.temp_prefix``), so the folder of a killed session is swept by the
next one, and its orphaned server stops by itself once its lock file is gone.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from cascade_ml.atomic import sweep_temps, temp_prefix


@pytest.fixture(scope="session")
def pg_server():  # noqa: ANN201 - pgserver.PostgresServer
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

    sweep_temps(tempfile.gettempdir())  # data folders of killed sessions
    folder = Path(tempfile.mkdtemp(prefix=f"{temp_prefix()}postgres-"))
    server = pgserver.get_server(folder / "data", cleanup_mode="delete")
    yield server
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server) -> Iterator[str]:  # noqa: ANN001
    """A new, empty database on the session's server, as a ``postgresql://`` URL (psycopg2)."""
    from sqlalchemy import create_engine, text

    socket_dir = Path(pg_server.get_postmaster_info().socket_dir)
    admin = create_engine(f"postgresql://postgres@/postgres?host={socket_dir}",
                          isolation_level="AUTOCOMMIT")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"postgresql://postgres@/{name}?host={socket_dir}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
