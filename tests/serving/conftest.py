"""Fixtures for serving tests (helpers live in serving_helpers.py, importable by test modules)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from panel_data import (  # noqa: F401 - the small universe's fixtures (tests/panel_data.py)
    panel_bundle_dir,
    panel_cfg,
    panel_store,
    panel_task,
    small_panel,
)
from serving_helpers import Server


@pytest.fixture
def server_factory() -> Iterator:
    started: list[Server] = []

    def make(pipeline: Path, **kw) -> Server:
        server = Server(pipeline, **kw)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
