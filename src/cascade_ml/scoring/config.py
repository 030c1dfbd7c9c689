"""Configuration of the `scoring` pipeline section (the batch `score` step)."""

from __future__ import annotations

from pydantic import Field

from cascade_ml.config_base import StrictModel


class ScoringConfig(StrictModel):
    """How many bars each run scores and which position its stored decision assumes."""

    score_rows: int = Field(24, ge=1, description="Newest feature rows scored per run (merged "
                            "into the scores table on the feature timestamp).")
    default_position_notional: float = Field(
        10_000.0, gt=0, description="Notional (quote) of the position behind the stored "
        "decisions: the task's side at 1x, unhedged, equity = notional.")
