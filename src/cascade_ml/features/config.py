"""Configuration of the `features` pipeline section."""

from __future__ import annotations

from cascade_ml.config_base import StrictModel


class FeatureConfig(StrictModel):
    """Settings for features (filled in by its module)."""
