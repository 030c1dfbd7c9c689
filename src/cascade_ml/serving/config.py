"""Configuration of the `serving` pipeline section."""

from __future__ import annotations

from cascade_ml.config_base import StrictModel


class ServingConfig(StrictModel):
    """Settings for serving (filled in by its module)."""
