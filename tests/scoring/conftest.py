"""Fixtures of the scoring tests: the small universe and its panel bundle."""

from __future__ import annotations

from panel_data import (  # noqa: F401 - the small universe's fixtures (tests/panel_data.py)
    panel_bundle_dir,
    panel_cfg,
    panel_store,
    panel_task,
    small_panel,
)
