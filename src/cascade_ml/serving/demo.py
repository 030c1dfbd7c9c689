"""A tiny but real setup for examples, benchmarks and tests: synthetic hourly feature rows and a
bundle trained on them with the real estimators and exported by ``models.bundle.export_bundle``.

Nothing here is a forecast of any market; it exists so the service can be exercised end to end
without the full training pipeline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.data.store import MarketStore
from cascade_ml.serving.paths import features_relpath

DEMO_FEATURES = ["ret_1h", "rv_1h", "rv_24h", "rv_168h", "funding_z", "oi_change_24h"]


def last_closed_bar(interval: str = "1h") -> pd.Timestamp:
    """Open time of the newest bar that has closed (its forecast is less than one bar old)."""
    bar = pd.Timedelta(interval)
    return pd.Timestamp.now(tz="UTC").floor(bar) - bar


def synthetic_features(n: int, end: pd.Timestamp | None = None, seed: int = 0) -> pd.DataFrame:
    """Hourly feature rows ending at ``end`` (bar open time) with GARCH-like vol clustering."""
    end = last_closed_bar() if end is None else end
    rng = np.random.default_rng(seed)
    index = pd.date_range(end=end, periods=n, freq="1h", tz="UTC", name="timestamp")
    vol = np.empty(n)
    ret = np.empty(n)
    var = 1e-4
    for i in range(n):  # simple GARCH(1,1) so the volatility is forecastable
        vol[i] = np.sqrt(var)
        ret[i] = vol[i] * rng.standard_t(5) / np.sqrt(5 / 3)
        var = 2e-6 + 0.08 * ret[i] ** 2 + 0.9 * var
    rv1 = ret ** 2
    return pd.DataFrame({
        "ret_1h": ret,
        "rv_1h": rv1,
        "rv_24h": pd.Series(rv1).rolling(24, min_periods=1).sum().to_numpy(),
        "rv_168h": pd.Series(rv1).rolling(168, min_periods=1).sum().to_numpy(),
        "funding_z": rng.normal(0, 1, n),
        "oi_change_24h": rng.normal(0, 0.05, n),
    }, index=index)


def write_demo_features(store: MarketStore, symbol: str, frame: pd.DataFrame) -> Path:
    """Store a features table the way the features step does (atomic ``write_table``)."""
    return store.write_table(features_relpath(symbol), frame, {"symbol": symbol, "demo": True})


def make_demo_bundle(directory: str | Path, *, seed: int = 0, symbol: str = "NEAR",
                     horizon: int = 24, n_rows: int = 1500, n_estimators: int = 30,
                     features: list[str] | None = None, version: str | None = None,
                     frame: pd.DataFrame | None = None) -> str:
    """Train small real models on synthetic rows, export them as a bundle; return the version.

    ``features`` renames the feature columns (to build a bundle that does not match a store);
    ``frame`` trains on a given feature table instead (it needs ``rv_1h``; its last rows are used).
    """
    from cascade_ml.models.bundle import export_bundle
    from cascade_ml.models.estimators import CascadeClassifier, VolatilityForecaster

    if frame is None:
        frame = synthetic_features(n_rows + horizon, pd.Timestamp("2025-01-01", tz="UTC"),
                                   seed=seed)
    else:
        n_rows = min(n_rows, len(frame) - horizon)
        frame = frame.iloc[-(n_rows + horizon):]
    names = list(features) if features is not None else list(frame.columns)
    if len(names) != frame.shape[1]:
        frame = frame.iloc[:, : len(names)]
    rv1 = np.nan_to_num(frame["rv_1h"].to_numpy(dtype=float))
    fwd = np.array([rv1[i + 1: i + 1 + horizon].sum() for i in range(n_rows)]) + 1e-10
    x = frame.to_numpy(dtype=float)[:n_rows]
    cascade = (fwd > np.quantile(fwd, 0.9)).astype(int)
    anchor = list(frame.columns).index("rv_24h") if "rv_24h" in frame.columns else None
    vol = VolatilityForecaster(n_estimators=n_estimators, num_leaves=7, min_child_samples=20,
                               quantiles=(0.5, 0.9, 0.99), anchor=anchor,
                               anchor_scale=horizon / 24, random_state=seed, n_jobs=1)
    vol.fit(x, np.log(fwd))
    clf = CascadeClassifier(n_estimators=n_estimators, num_leaves=7, min_child_samples=20,
                            random_state=seed, n_jobs=1).fit(x, cascade)
    version = version or f"demo-{seed}"
    export_bundle(directory, vol, clf, version=version, symbol=symbol, horizon=horizon,
                  feature_names=names,
                  training_span={"start": str(frame.index[0]), "end": str(frame.index[n_rows - 1]),
                                 "rows": n_rows},
                  metrics={"demo": True, "cascade_rate": float(cascade.mean())},
                  config={"demo": True, "seed": seed})
    return version
