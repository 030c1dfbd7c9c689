"""Small synthetic feature frames for the monitoring tests (a plain module, imported by name)."""

from __future__ import annotations

import numpy as np
import pandas as pd

TRAIN_SPAN = (pd.Timestamp("2023-01-31", tz="UTC"), pd.Timestamp("2025-11-17 03:00", tz="UTC"))
"""The training span recorded in the shipped NEAR bundle (models/NEAR/bundle.json)."""
SAMPLE_NOW = pd.Timestamp("2026-05-18 12:00", tz="UTC")
"""Close of NEAR's last bar in data/sample."""


def synthetic_features(n: int = 2400, seed: int = 0) -> pd.DataFrame:
    """Hourly frame: two stationary volatility inputs, one sentiment input, and 'dead'
    (sentiment) that is NaN everywhere, as a source the model never had."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    return pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                         "y1": rng.exponential(size=n), "dead": np.full(n, np.nan)}, index=idx)


FAMILIES = {"x1": "volatility", "x2": "volatility", "y1": "sentiment", "dead": "sentiment"}
