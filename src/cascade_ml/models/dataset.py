"""The modelling table of one symbol and horizon: features, labels, usable rows, input hashes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import CASCADE, CORE_FEATURES, FWD_LOG_RV, FWD_RV, LABELS
from cascade_ml.contracts.layout import features_path, labels_path, manifest_path
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError


@dataclass
class Dataset:
    """Everything a train run reads. ``rows`` are the rows with complete labels and core inputs."""

    symbol: str
    horizon: int
    features: pd.DataFrame
    labels: pd.DataFrame
    rows: pd.DatetimeIndex
    feature_names: list[str]
    hashes: dict[str, str] = field(default_factory=dict)
    interval: str = ""
    """Bar interval of the features table (its manifest's ``bars.interval``)."""

    def X(self, index: pd.Index | None = None) -> np.ndarray:
        frame = self.features.loc[self.rows if index is None else index, self.feature_names]
        return frame.to_numpy(dtype=float, na_value=np.nan)

    @property
    def span(self) -> tuple[str, str]:
        return str(self.rows[0]), str(self.rows[-1])


def select_features(features: pd.DataFrame, include: list[str] | None,
                    exclude: list[str]) -> list[str]:
    """Numeric feature columns in table order (or exactly ``include``), minus ``exclude``."""
    if include is not None:
        missing = [c for c in include if c not in features.columns]
        if missing:
            raise CascadeError(f"configured feature(s) {missing} are not in the feature table")
        names = list(include)
    else:
        names = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    names = [c for c in names if c not in exclude and c not in LABELS]
    if not names:
        raise CascadeError("no numeric feature columns to train on")
    return names


def make_dataset(symbol: str, horizon: int, features: pd.DataFrame, labels: pd.DataFrame,
                 include: list[str] | None = None, exclude: list[str] | None = None,
                 hashes: dict[str, str] | None = None) -> Dataset:
    """Align labels to features and keep rows where the labels and the HAR inputs are known."""
    missing = [c for c in CORE_FEATURES if c not in features.columns]
    if missing:
        raise CascadeError(f"feature table of {symbol} lacks required column(s) {missing}")
    missing = [c for c in (FWD_RV, CASCADE) if c not in labels.columns]
    if missing:
        raise CascadeError(f"labels of {symbol} h={horizon} lack column(s) {missing}")
    features = features.sort_index()
    labels = labels.reindex(features.index)
    if FWD_LOG_RV not in labels.columns:
        labels = labels.assign(**{FWD_LOG_RV: np.log(labels[FWD_RV])})
    ok = labels[[FWD_RV, CASCADE]].notna().all(axis=1) & (labels[FWD_RV] > 0)
    ok &= features[list(CORE_FEATURES)].notna().all(axis=1)
    rows = features.index[ok.to_numpy()]
    names = select_features(features, include, exclude or [])
    return Dataset(symbol, horizon, features, labels, pd.DatetimeIndex(rows), names, hashes or {})


def _file_hash(store: MarketStore, relpath: str) -> str:
    """sha256 of the table's manifest when present (it records the inputs), else of the file."""
    path = store.root / relpath
    manifest = path.parent / "manifest.json"
    digest = hashlib.sha256()
    if manifest.exists():
        try:
            meta = json.loads(manifest.read_text())
        except json.JSONDecodeError as exc:
            raise CascadeError(f"unreadable manifest ({exc})", str(manifest)) from exc
        digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
    digest.update(path.read_bytes())
    return digest.hexdigest()


def bars_interval(store: MarketStore, symbol: str, features: pd.DataFrame) -> str:
    """The bar interval the features table was built on: its manifest's ``bars.interval``, else
    (a table written without the features step) the most common spacing of its rows."""
    manifest = store.root / manifest_path(features_path(symbol))
    if manifest.exists():
        interval = (json.loads(manifest.read_text()).get("bars") or {}).get("interval")
        if interval:
            return str(interval)
    steps = pd.Series(features.index).diff().dropna()
    if steps.empty:
        raise CascadeError("cannot tell the bar interval of a one-row features table",
                           features_path(symbol))
    seconds = int(steps.mode().iloc[0].total_seconds())
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def load_dataset(store: MarketStore, symbol: str, horizon: int, include: list[str] | None = None,
                 exclude: list[str] | None = None) -> Dataset:
    """Read the features and labels the other layers wrote for ``symbol`` at horizon H."""
    fpath, lpath = features_path(symbol), labels_path(symbol, horizon)
    features = store.read_table(fpath)
    labels = store.read_table(lpath)
    hashes = {"features_sha256": _file_hash(store, fpath),
              "labels_sha256": _file_hash(store, lpath)}
    ds = make_dataset(symbol, horizon, features, labels, include, exclude, hashes)
    ds.interval = bars_interval(store, symbol, features)
    return ds
