"""Fixtures for the models layer: a feature/label table built from real NEAR hourly candles.

Built here (not by the features/labels layers) so these unit tests do not depend on them; the
column names follow docs/architecture.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cascade_ml.contracts.layout import features_path, labels_path
from cascade_ml.data.store import MarketStore
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.dataset import Dataset, make_dataset

# the repository's shipped real sample (byte-identical to the team's raw file; see its PROVENANCE)
RAW = (Path(__file__).resolve().parents[2] / "data" / "sample"
       / "yagokhan-varanus-neo-flow-hybrid-extended" / "data" / "NEARUSDT_1h.parquet")
H = 24


def build_frames(candles: pd.DataFrame, horizon: int = H) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features (only data known at each bar's close) and forward labels over t+1..t+H."""
    close = candles["close"]
    r = np.log(close).diff()
    r2 = r**2
    f = pd.DataFrame(index=candles.index)
    f["ret_1h"] = r
    for n in (1, 24, 168, 720):
        f[f"rv_{n}h"] = r2.rolling(n, min_periods=n).sum()
    f["ret_24h"] = np.log(close).diff(24)
    f["range_1h"] = np.log(candles["high"] / candles["low"])
    f["range_24h"] = f["range_1h"].rolling(24).mean()
    logv = np.log1p(candles["volume"])
    f["volume_z_168h"] = (logv - logv.rolling(168).mean()) / logv.rolling(168).std()
    f["drawdown_168h"] = np.log(close / close.rolling(168).max())
    f["hour"] = candles.index.hour.astype(float)
    f["trigger_funding_divergence"] = np.nan  # no funding in this fixture: missing, not zero
    f["trigger_sentiment_spike"] = np.nan
    breakdown = (f["volume_z_168h"] > 2) & (f["ret_24h"] < -0.03)
    f["trigger_volume_breakdown"] = breakdown.astype(float)
    f.loc[f["volume_z_168h"].isna(), "trigger_volume_breakdown"] = np.nan
    fwd = sum(r2.shift(-k) for k in range(1, horizon + 1))
    low = candles["low"]
    fwd_min = np.log(pd.concat([low.shift(-k) for k in range(1, horizon + 1)], axis=1).min(axis=1)
                     / close)
    complete = pd.Series(np.arange(len(close)) < len(close) - horizon, index=close.index)
    lab = pd.DataFrame(index=candles.index)
    lab["fwd_rv"] = fwd.where(complete)
    lab["fwd_log_rv"] = np.log(lab["fwd_rv"])
    lab["fwd_min_return"] = fwd_min.where(complete)
    lab["cascade"] = (lab["fwd_min_return"] < -0.08).astype(float).where(complete)
    return f, lab


def near_store(root: Path, n_rows: int) -> MarketStore:
    """A store under ``root`` holding NEAR's features and 24 h labels (:func:`build_frames`)
    from the first ``n_rows`` sample candles, where the training step reads them."""
    store = MarketStore(root / "store")
    features, labels = build_frames(pd.read_parquet(RAW).iloc[:n_rows])
    store.write_table(features_path("NEAR"), features)
    store.write_table(labels_path("NEAR", H), labels)
    return store


def near_dataset(n_rows: int, horizon: int = H, offset: int = 0) -> Dataset:
    candles = pd.read_parquet(RAW).iloc[offset: offset + n_rows]
    features, labels = build_frames(candles, horizon)
    return make_dataset("NEAR", horizon, features, labels)


@pytest.fixture(scope="session")
def near_small() -> Dataset:
    """About 4 months of NEAR (3,000 hourly bars, 2023), a few percent cascade rows."""
    return near_dataset(3000)


@pytest.fixture()
def fast_config() -> ModelConfig:
    """Settings small enough for unit tests (seconds, not minutes)."""
    return ModelConfig(n_folds=3, lgbm={"n_estimators": 40, "num_leaves": 7,
                                        "min_child_samples": 20},
                       quantiles=[0.9], garch_window=800, num_threads=1, shap_sample=50)
