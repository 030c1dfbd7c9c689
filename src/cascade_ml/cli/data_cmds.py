"""`cascade-ml ingest`, `cascade-ml data summary` (filled in by the data work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the data commands to the top-level app."""
