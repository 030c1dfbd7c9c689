"""A ``MarketStore`` that remembers the partitions it read until their file changes.

A cycle reads the same partitions many times (incremental ingestion asks for each partition's
newest stamp, the features, the monitor and the book's marks read them again) and changes only a
few. Every write goes through write-then-rename, so a file's (inode, mtime, size) changes with
its content; reads of an unchanged file come from memory. Each caller gets its own copy. The list
of partitions is kept until this store writes or ``refresh`` is called (the loop does at the
start of every cycle, so a partition another process adds is seen within a cycle).
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from cascade_ml.data.store import MarketStore, PartitionKey, WriteResult


class CachedMarketStore(MarketStore):
    """``MarketStore`` with ``read_partition`` cached on the file's identity."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__(root)
        self._cache: dict[PartitionKey, tuple[tuple[int, int, int], pd.DataFrame]] = {}
        self._keys: list[PartitionKey] | None = None

    def refresh(self) -> None:
        """Forget the list of partitions (frames stay cached on their files' identity)."""
        self._keys = None

    def partitions(self, dataset: str | None = None, symbol: str | None = None,
                   venue: str | None = None) -> list[PartitionKey]:
        if self._keys is None:
            self._keys = super().partitions()
        return [k for k in self._keys if (dataset is None or k.dataset == dataset)
                and (symbol is None or k.symbol == symbol) and (venue is None or k.venue == venue)]

    def write(self, key: PartitionKey, frame: pd.DataFrame, **kwargs: Any) -> WriteResult:
        self._keys = None
        return super().write(key, frame, **kwargs)

    def read_partition(self, key: PartitionKey) -> pd.DataFrame:
        path = self.root / key.relpath()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._cache.pop(key, None)
            return super().read_partition(key)  # raises the store's own error
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        hit = self._cache.get(key)
        if hit is None or hit[0] != stamp:
            hit = (stamp, super().read_partition(key))
            self._cache[key] = hit
        frame = hit[1].copy()
        frame.attrs = dict(hit[1].attrs)
        return frame
