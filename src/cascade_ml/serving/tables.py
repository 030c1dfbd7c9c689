"""Store tables re-read only when their file changes: the one mtime cache of the service (the
poller's latest rows and the as-of lookup's full history both read through it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cascade_ml.data.store import MarketStore


def mtime(path: Path) -> int | None:
    """The file's modification time in ns, None when there is no file."""
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def read_if_changed(store: MarketStore, cache: dict, rel: str, convert: Callable[[Any], Any],
                    read: Callable[[str], Any] | None = None) -> Any:
    """``convert(read(rel))`` (default: the store table at ``rel``), cached in ``cache`` per file
    modification time (None when there is no file)."""
    stamp = mtime(store.root / rel)
    cached = cache.get(rel)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    read = read or store.read_table
    value = convert(read(rel)) if stamp is not None else None
    cache[rel] = (stamp, value)
    return value
