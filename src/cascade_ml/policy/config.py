"""Configuration of the `policy` pipeline section."""

from __future__ import annotations

from cascade_ml.config_base import StrictModel


class PolicyConfig(StrictModel):
    """Settings for policy (filled in by its module)."""
