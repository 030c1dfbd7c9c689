"""The local Parquet market-data store.

Layout (hive-style, one file per partition, so one symbol's history reads without touching
others)::

    <root>/<dataset>/venue=<venue>/symbol=<SYMBOL>/interval=<interval>/part.parquet

Writes merge with what is stored on the timestamp, are idempotent (the same rows twice change
nothing) and atomic (a temporary file in the same folder is fsynced, then renamed over the old
one, so a killed process leaves either the old partition or the new one, never half of one).

Conflict rule: when an incoming row has the same timestamp as a stored row but different values,
``on_conflict`` decides: ``"replace"`` (default; the latest ingest wins, e.g. a partial candle
replaced by the final one), ``"keep"`` (stored rows win) or ``"error"`` (refuse the whole write).
The number of conflicting rows is always reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cascade_ml.atomic import atomic_file, sweep_once
from cascade_ml.data.schemas import DATASETS
from cascade_ml.data.validate import validate_frame
from cascade_ml.errors import CascadeError, DataValidationError

ConflictRule = Literal["replace", "keep", "error"]
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_META_KEY = b"cascade_ml"
PART_FILE = "part.parquet"


@dataclass(frozen=True, order=True)
class PartitionKey:
    """Which partition a frame belongs to."""

    dataset: str
    venue: str
    symbol: str
    interval: str

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise CascadeError(f"unknown dataset {self.dataset!r}; "
                               f"expected one of {list(DATASETS)}")
        for field in ("venue", "symbol", "interval"):
            value = getattr(self, field)
            if not _NAME.match(value):
                raise CascadeError(f"invalid {field} {value!r}: use letters, digits, '.', '_', '-'")

    def relpath(self) -> Path:
        return (Path(self.dataset) / f"venue={self.venue}" / f"symbol={self.symbol}"
                / f"interval={self.interval}" / PART_FILE)

    def __str__(self) -> str:
        return f"{self.dataset}/{self.venue}/{self.symbol}/{self.interval}"


@dataclass(frozen=True)
class WriteResult:
    """What a write did: rows added, rows whose values changed, rows left as they were."""

    key: PartitionKey
    added: int
    replaced: int
    unchanged: int
    conflicts: int
    rows_total: int

    @property
    def changed(self) -> bool:
        return self.added > 0 or self.replaced > 0


def to_utc(value: pd.Timestamp | str) -> pd.Timestamp:
    """A timestamp in UTC; a naive one is read as UTC (used for user-given range bounds only)."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def _rows_equal(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Row-wise equality of two aligned frames; NaN == NaN and tiny float noise count as equal."""
    cols = sorted(set(a.columns) | set(b.columns))
    a = a.reindex(columns=cols)
    b = b.reindex(columns=cols)
    av, bv = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    same = np.isclose(av, bv, rtol=1e-9, atol=0.0) | (np.isnan(av) & np.isnan(bv))
    return same.all(axis=1)


class MarketStore:
    """Read and write canonical datasets under one root folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        sweep_once(self.root)  # temp files of writes killed in an earlier process

    # ------------------------------------------------------------------ listing
    def partitions(self, dataset: str | None = None, symbol: str | None = None,
                   venue: str | None = None) -> list[PartitionKey]:
        """All stored partitions, optionally filtered."""
        keys = []
        if not self.root.exists():
            return keys
        for path in self.root.glob(f"*/venue=*/symbol=*/interval=*/{PART_FILE}"):
            parts = path.relative_to(self.root).parts
            key = PartitionKey(parts[0], parts[1][6:], parts[2][7:], parts[3][9:])
            if ((dataset is None or key.dataset == dataset)
                    and (symbol is None or key.symbol == symbol)
                    and (venue is None or key.venue == venue)):
                keys.append(key)
        return sorted(keys)

    def symbols(self, dataset: str = "ohlcv") -> list[str]:
        return sorted({k.symbol for k in self.partitions(dataset)})

    def resolve(self, dataset: str, symbol: str, venue: str | None = None,
                interval: str | None = None) -> PartitionKey:
        """Find the one partition matching the filters, or say which ones exist."""
        keys = [k for k in self.partitions(dataset, symbol, venue)
                if interval is None or k.interval == interval]
        if len(keys) == 1:
            return keys[0]
        wanted = f"{dataset} for {symbol}" + (f" on {venue}" if venue else "") + (
            f" at {interval}" if interval else "")
        if not keys:
            have = sorted({k.symbol for k in self.partitions(dataset)})
            raise CascadeError(f"no {wanted} in the store at {self.root}",
                               hint=f"symbols with {dataset}: {have or 'none'}")
        raise CascadeError(f"several partitions match {wanted}: {[str(k) for k in keys]}",
                           hint="name the venue and/or interval")

    # ------------------------------------------------------------------ reading
    def read(self, dataset: str, symbol: str, *, venue: str | None = None,
             interval: str | None = None, start: pd.Timestamp | str | None = None,
             end: pd.Timestamp | str | None = None) -> pd.DataFrame:
        """A symbol's dataset over [start, end] with a UTC DatetimeIndex named ``timestamp``."""
        key = self.resolve(dataset, symbol, venue, interval)
        frame = self.read_partition(key)
        if start is not None:
            frame = frame[frame.index >= to_utc(start)]
        if end is not None:
            frame = frame[frame.index <= to_utc(end)]
        return frame

    def read_partition(self, key: PartitionKey) -> pd.DataFrame:
        path = self.root / key.relpath()
        if not path.exists():
            raise CascadeError(f"no partition {key} in the store at {self.root}")
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise CascadeError(f"unreadable store partition ({exc})", str(path)) from exc
        frame = table.to_pandas()
        frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC").as_unit("ns")
        frame.index.name = "timestamp"
        frame.attrs = self.metadata(key)
        return frame

    def metadata(self, key: PartitionKey) -> dict:
        """The partition's recorded provenance (dataset, venue, symbol, interval, sources)."""
        path = self.root / key.relpath()
        meta = pq.read_schema(path).metadata or {}
        raw = meta.get(_META_KEY)
        return json.loads(raw) if raw else {}

    # ------------------------------------------------------------------ writing
    def write(self, key: PartitionKey, frame: pd.DataFrame, *,
              on_conflict: ConflictRule = "replace",
              source: str | None = None) -> WriteResult:
        """Merge a canonical frame into its partition, atomically."""
        if on_conflict not in ("replace", "keep", "error"):
            raise CascadeError(f"unknown conflict rule {on_conflict!r}")
        incoming = validate_frame(frame, key.dataset, source or str(key))
        path = self.root / key.relpath()
        stored = self.read_partition(key) if path.exists() else incoming.iloc[0:0]
        meta = self.metadata(key) if path.exists() else {}

        overlap = incoming.index.intersection(stored.index)
        same = _rows_equal(incoming.loc[overlap], stored.loc[overlap])
        conflicts = int((~same).sum())
        if conflicts and on_conflict == "error":
            bad = overlap[~same][:5]
            raise DataValidationError(
                f"{conflicts} row(s) conflict with stored values in {key} at {list(map(str, bad))}",
                source, hint="use on_conflict 'replace' or 'keep'")
        new_rows = incoming.index.difference(stored.index)
        replaced = conflicts if on_conflict == "replace" else 0
        result = WriteResult(key, added=len(new_rows), replaced=replaced,
                             unchanged=len(overlap) - replaced, conflicts=conflicts,
                             rows_total=len(stored) + len(new_rows))
        if not result.changed:
            return result

        if on_conflict == "replace":
            merged = pd.concat([stored.drop(index=overlap[~same]),
                                incoming.drop(index=overlap[same])])
        else:
            merged = pd.concat([stored, incoming.loc[new_rows]])
        merged = merged.sort_index(kind="stable")
        merged = validate_frame(merged, key.dataset, str(key))
        sources = list(dict.fromkeys([*meta.get("sources", []), *([source] if source else [])]))
        new_meta = {"dataset": key.dataset, "venue": key.venue, "symbol": key.symbol,
                    "interval": key.interval, "sources": sources}
        self._atomic_write(path, merged, new_meta)
        return result

    def write_table(self, relpath: str | Path, frame: pd.DataFrame,
                    meta: dict | None = None) -> Path:
        """Atomically write a derived table (features, labels, scores) under the store root."""
        path = self.root / relpath
        self._atomic_write(path, frame, meta or {})
        return path

    def read_table(self, relpath: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
        """A stored table; ``columns``: only those of them it has (and its index), so a wide
        table costs what its needed columns cost."""
        path = self.root / relpath
        if not path.exists():
            raise CascadeError(f"no table {relpath} in the store at {self.root}")
        if columns is not None:
            names = set(pq.read_schema(path).names)
            columns = [c for c in columns if c in names]
        frame = pq.read_table(path, columns=columns, use_pandas_metadata=True).to_pandas()
        raw = (pq.read_schema(path).metadata or {}).get(_META_KEY)
        frame.attrs = json.loads(raw) if raw else {}
        return frame

    @staticmethod
    def _atomic_write(path: Path, frame: pd.DataFrame, meta: dict) -> None:
        frame = frame.copy()
        frame.attrs = {}
        table = pa.Table.from_pandas(frame, preserve_index=True)
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[_META_KEY] = json.dumps(meta, default=str).encode()
        table = table.replace_schema_metadata(schema_meta)
        with atomic_file(path, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
