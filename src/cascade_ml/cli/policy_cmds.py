"""Commands for this area (filled in by its module's work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach this area's commands to the top-level app."""
