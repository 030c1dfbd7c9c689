"""A real PostgreSQL server for the store tests (``cascade_ml.pglocal``, from the ``pgserver``
package): one per test session (per xdist worker), its data folder a temp folder.

The folder is not under pytest's ``/tmp/pytest-of-<user>`` (see ``pglocal``: a later pytest
session closes that folder again and the server loses its data folder). It is named like the
project's temps (``atomic.temp_prefix``), so the folder of a killed session is swept by the next
one, and its orphaned server stops by itself once its lock file is gone.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cascade_ml.atomic import sweep_temps, temp_prefix
from cascade_ml.pglocal import create_database, drop_database, start_server


@pytest.fixture(scope="session")
def pg_server():  # noqa: ANN201 - pgserver.PostgresServer
    sweep_temps(tempfile.gettempdir())  # data folders of killed sessions
    folder = Path(tempfile.mkdtemp(prefix=f"{temp_prefix()}postgres-"))
    server = start_server(folder / "data")
    yield server
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server) -> Iterator[str]:  # noqa: ANN001
    """A new, empty database on the session's server, as a ``postgresql://`` URL (psycopg)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield create_database(pg_server, name)
    drop_database(pg_server, name)
