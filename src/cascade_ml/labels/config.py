"""Configuration of the `labels` pipeline section."""

from __future__ import annotations

from cascade_ml.config_base import StrictModel


class LabelConfig(StrictModel):
    """Settings for labels (filled in by its module)."""
