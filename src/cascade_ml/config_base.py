"""The strict pydantic base every configuration section derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are rejected by name, so a typo in a pipeline file never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)
