"""Configuration of the `labels` pipeline section."""

from __future__ import annotations

from pydantic import Field

from cascade_ml.config_base import StrictModel


class LabelConfig(StrictModel):
    """The cascade event definition; the horizon H and the side come from the task.

    A cascade (side ``long``) at row t: the lowest low in (t, t+H] is below close_t by more than
    ``max(cascade_k * sigma_t * sqrt(H), cascade_floor)``, sigma_t being the standard deviation of
    1-bar log returns over the ``sigma_window`` bars up to t. Side ``short`` mirrors it with the
    highest high (a short squeeze). Optional confirmations apply only where their data exist.
    """

    cascade_k: float = Field(2.5, gt=0)
    cascade_floor: float = Field(0.05, ge=0, lt=1)
    sigma_window: int = Field(168, ge=2)
    require_oi_drop: bool = False
    oi_drop_threshold: float = Field(0.05, gt=0, lt=1)
    require_liquidations: bool = False
    liquidation_z: float = 2.0
    liquidation_norm_periods: int = Field(30, ge=2)
    log_rv_floor: float = Field(1e-12, gt=0)
