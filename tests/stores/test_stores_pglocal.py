"""``cascade_ml.pglocal``, the local server the store tests and ``soak_live.py --postgres``
share, and the replay's book URL (``live.replay.db_url``) that the soak points at it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from cascade_ml.live.config import ReplayConfig
from cascade_ml.live.run import replay_book_url
from cascade_ml.pglocal import create_database, drop_database


def test_a_database_kept_with_exist_ok_keeps_its_rows(pg_server) -> None:  # noqa: ANN001
    """A restarted soak (or ``--report-only``) reopens the book it wrote, never a new one."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server, name)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE decisions (id int)"))
            conn.execute(text("INSERT INTO decisions VALUES (1), (2)"))
        assert create_database(pg_server, name, exist_ok=True) == url
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM decisions")).scalar_one() == 2
        with pytest.raises(ProgrammingError, match="already exists"):
            create_database(pg_server, name)
    finally:
        engine.dispose()
        drop_database(pg_server, name)
    with pytest.raises(OperationalError, match=f'database "{name}" does not exist'):
        create_engine(url).connect()  # dropped


def test_the_replay_book_is_its_db_url_else_the_file_in_its_folder(tmp_path: Path) -> None:
    assert replay_book_url(ReplayConfig(dir=tmp_path)) == f"sqlite:///{tmp_path / 'book.db'}"
    url = "postgresql://postgres@/book?host=/tmp/x"
    assert replay_book_url(ReplayConfig(dir=tmp_path, db_url=url)) == url
