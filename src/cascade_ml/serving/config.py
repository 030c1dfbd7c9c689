"""Configuration of the `serving` pipeline section (batch scoring and the forecast service)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cascade_ml.config_base import StrictModel


class ServingConfig(StrictModel):
    """Where the service listens, how it authenticates, and when a forecast is too old to trust.

    The token is never stored in the pipeline file: it is read from the environment variable
    ``token_env`` or, if that is unset, from ``token_file``.
    """

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    token_env: str = "CASCADE_ML_TOKEN"
    token_file: Path | None = None
    bundle_dir: Path = Path("models")
    reload_interval_s: float = Field(5.0, gt=0)
    # Batch scoring scores the newest N feature rows each run (merged on the feature timestamp).
    score_rows: int = Field(24, ge=1)
    # Position the batch scorer's decision assumes (notional in quote currency, long).
    default_position_notional: float = Field(10_000.0, gt=0)
    log_requests: bool = False
