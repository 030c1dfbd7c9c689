"""Configuration of the `models` pipeline section."""

from __future__ import annotations

from cascade_ml.config_base import StrictModel


class ModelConfig(StrictModel):
    """Settings for models (filled in by its module)."""
