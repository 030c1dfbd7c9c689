"""The small real panel (NEAR, BTC, ETH, ADA, SEI) and its fixtures: see tests/panel_data.py."""

from __future__ import annotations

from panel_data import (  # noqa: F401 - fixtures
    REPO,
    SMALL,
    SYMBOLS,
    UNIVERSE,
    panel_bundle_dir,
    panel_cfg,
    panel_store,
    panel_task,
    small_panel,
)
