"""Configuration of the `serving` pipeline section (the HTTP service only).

The bundle folder is ``models.models_dir`` (one fact, written by `train`), the freshness limit is
``policy.max_data_age_s`` and batch scoring has its own ``scoring`` section.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cascade_ml.config_base import StrictModel


class ServingConfig(StrictModel):
    """Where the service listens, how it authenticates, how often it re-reads its inputs.

    The token is never stored in the pipeline file: it is read from the environment variable
    ``token_env`` or, if that is unset, from ``token_file``.
    """

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    token_env: str = "CASCADE_ML_TOKEN"
    token_file: Path | None = None
    reload_interval_s: float = Field(5.0, gt=0)
    log_requests: bool = False
