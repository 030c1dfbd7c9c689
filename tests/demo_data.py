"""A tiny but real setup for scoring and serving tests (and the serving/scoring benchmarks):
synthetic hourly feature rows with the columns the policy reads (triggers, betas, correlations),
and a bundle trained on them with the real estimators, exported by ``models.bundle``.

Nothing here is a forecast of any market; it exists so scoring and the service can be exercised
end to end without the full training pipeline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cascade_ml.config import load_pipeline
from cascade_ml.contracts.columns import TRIGGER_COLUMNS, beta_column, corr_column
from cascade_ml.contracts.layout import features_path
from cascade_ml.data.store import MarketStore
from cascade_ml.scoring.score import ScoreResult, score

SYMBOL = "NEAR"
REFERENCES = ("BTC", "ETH")
WINDOWS = (168, 720)  # the default features.corr_windows
TRAILING = 720  # the default policy.vol_reference_window


def last_closed_bar(interval: str = "1h") -> pd.Timestamp:
    """Open time of the newest bar that has closed (its forecast is less than one bar old)."""
    bar = pd.Timedelta(interval)
    return pd.Timestamp.now(tz="UTC").floor(bar) - bar


def fresh_end() -> pd.Timestamp:
    """The open time of the last closed 1h bar: its forecast is under an hour old, not stale."""
    return last_closed_bar("1h")


def synthetic_features(n: int, end: pd.Timestamp | None = None, seed: int = 0) -> pd.DataFrame:
    """Hourly feature rows ending at ``end`` (bar open time) with GARCH-like vol clustering,
    triggers that fire on about a quarter of the rows (NaN on a tenth), and betas/correlations
    to BTC and ETH at both corr windows, high enough on some rows for a proxy hedge."""
    end = last_closed_bar() if end is None else end
    rng = np.random.default_rng(seed)
    index = pd.date_range(end=end, periods=n, freq="1h", tz="UTC", name="timestamp")
    warm = 168  # bars simulated before the first row, so every rolling sum is complete
    ret = np.empty(n + warm)
    var = 1e-4
    for i in range(n + warm):  # simple GARCH(1,1) so the volatility is forecastable
        ret[i] = np.sqrt(var) * rng.standard_t(5) / np.sqrt(5 / 3)
        var = 2e-6 + 0.08 * ret[i] ** 2 + 0.9 * var
    rv1 = pd.Series(ret ** 2)
    # older returns (their own generator, so the rows above stay as they were) fill the 720-bar
    # realised variance the policy's trailing vol reference reads (policy.vol_reference_window)
    older = np.random.default_rng([seed, TRAILING]).standard_t(5, TRAILING) * 0.01 / np.sqrt(5 / 3)
    rv_long = pd.Series(np.concatenate([older, ret]) ** 2).rolling(TRAILING).sum()
    frame = pd.DataFrame({
        "ret_1h": ret[warm:],
        "rv_1h": rv1.to_numpy()[warm:],
        "rv_24h": rv1.rolling(24).sum().to_numpy()[warm:],
        "rv_168h": rv1.rolling(168).sum().to_numpy()[warm:],
        f"rv_{TRAILING}h": rv_long.to_numpy()[TRAILING + warm:],
        "funding_z": rng.normal(0, 1, n),
        "oi_change_24h": rng.normal(0, 0.05, n),
    }, index=index)
    for column in TRIGGER_COLUMNS:
        fired = (rng.random(n) < 0.25).astype(float)
        fired[rng.random(n) < 0.1] = np.nan
        frame[column] = fired
    for window in WINDOWS:
        for ref in REFERENCES:
            frame[beta_column(ref, window)] = rng.uniform(-0.2, 1.8, n)
            frame[corr_column(ref, window)] = rng.uniform(0.3, 0.99, n)
    return frame


def store_features(store: MarketStore, symbol: str, frame: pd.DataFrame) -> Path:
    """Store a features table the way the features step does (atomic ``write_table``)."""
    return store.write_table(features_path(symbol), frame, {"symbol": symbol, "demo": True})


def write_features(tmp: Path, frame: pd.DataFrame, symbol: str = SYMBOL) -> Path:
    """``store_features`` into the store of a ``write_pipeline`` file in ``tmp``."""
    return store_features(MarketStore(tmp / "store"), symbol, frame)


def make_demo_bundle(directory: str | Path, *, seed: int = 0, symbol: str = "NEAR",
                     horizon: int = 24, n_rows: int = 1500, n_estimators: int = 30,
                     features: list[str] | None = None, version: str | None = None,
                     frame: pd.DataFrame | None = None) -> str:
    """Train small real models on synthetic rows, export them as a bundle; return the version.

    ``features`` renames the feature columns (to build a bundle that does not match a store);
    ``frame`` trains on a given feature table instead (it needs ``rv_1h``; its last rows are used).
    """
    from cascade_ml.models.bundle import export_bundle
    from cascade_ml.models.config import LgbmParams, ModelConfig
    from cascade_ml.models.evaluate import make_models

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
    small = LgbmParams(n_estimators=n_estimators, min_child_samples=20)
    # the pipeline's own estimators, small; HAR needs rv_720h, which the synthetic rows lack
    cfg = ModelConfig(lgbm=small, cascade_lgbm=small, quantiles=[0.5, 0.9, 0.99], seed=seed,
                      num_threads=1, anchor="rv_24h", har_offset="rv_720h" in names,
                      cascade_features=None)
    vol, clf = make_models(cfg, names, horizon)
    vol.fit(x, np.log(fwd))
    clf.fit(x, cascade)
    version = version or f"demo-{seed}"
    export_bundle(directory, vol, clf, version=version, symbol=symbol, horizon=horizon,
                  interval="1h",
                  feature_names=names,
                  training_span={"start": str(frame.index[0]), "end": str(frame.index[n_rows - 1]),
                                 "rows": n_rows},
                  metrics={"demo": True, "cascade_rate": float(cascade.mean())},
                  config={"demo": True, "seed": seed})
    return version


def make_bundle(directory: Path, seed: int = 0, features: list[str] | None = None,
                symbol: str = SYMBOL) -> str:
    """A test-sized real bundle of ``symbol`` (600 rows, 15 trees per booster)."""
    return make_demo_bundle(directory, seed=seed, features=features, n_rows=600, n_estimators=15,
                            symbol=symbol)


def write_pipeline(tmp: Path, *, max_age_s: float = 7200, reload_s: float = 0.2,
                   symbols: tuple[str, ...] = (SYMBOL,), references: tuple[str, ...] = (),
                   policy: dict | None = None, score_rows: int = 12,
                   name: str = "pipeline.yaml") -> Path:
    """A pipeline file pointing the store and the bundle folder (models.models_dir) into
    ``tmp``."""
    cfg = {
        "store": {"root": str(tmp / "store")},
        "task": {"symbols": list(symbols), "references": list(references)},
        "models": {"models_dir": str(tmp / "models")},
        "policy": {"max_data_age_s": max_age_s, **(policy or {})},
        "scoring": {"score_rows": score_rows},
        "serving": {"reload_interval_s": reload_s},
        "steps": ["score"],
    }
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_score(pipeline: Path, symbols: list[str] | None = None) -> list[ScoreResult]:
    """The scoring layer on a pipeline file's sections (what the score step calls)."""
    config = load_pipeline(pipeline)
    return score(MarketStore(config.store.root), config.task, config.scoring, config.policy,
                 config.models.models_dir, symbols)
