"""Policy: forecasts and a position in, hedge ratio, leverage cap, size cap and action out."""

from cascade_ml.policy.config import PolicyConfig
from cascade_ml.policy.decide import decide
from cascade_ml.policy.schemas import Decision, PolicyInputs, Position

__all__ = ["Decision", "PolicyConfig", "PolicyInputs", "Position", "decide"]
