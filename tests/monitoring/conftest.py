"""Fixtures of the monitoring tests: the real NEAR feature table, built once."""

from __future__ import annotations

import pandas as pd
import pytest

from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.features.build import build_features
from cascade_ml.features.config import FeatureConfig


@pytest.fixture(scope="session")
def near_features(sample_store: MarketStore) -> pd.DataFrame:
    """NEAR's real feature table built from data/sample (read-only)."""
    return build_features(sample_store, "NEAR", TaskConfig(), FeatureConfig())
