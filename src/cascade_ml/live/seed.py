"""Setting up a replay: the history the replay exchange serves, and the loop's store as it stood
at the replay's start.

- ``source_store``: the raw files of ``live.replay.source`` ingested once into
  ``<replay dir>/source`` (again only when the files change);
- ``seed_store``: every record of that history already available at the start (a candle once
  closed, a daily value once its day ended, a settlement or snapshot once stamped) copied into the
  loop's store. From there the loop collects bar by bar through the replay exchange, so its
  incremental ingestion is the real one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from cascade_ml.atomic import read_json, write_json
from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.monitoring.staleness import available_at

log = logging.getLogger(__name__)
MARKER = "ingested.json"


def _signature(source: Path) -> dict[str, list[int]]:
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    return {str(p.relative_to(source) if source.is_dir() else p.name):
            [p.stat().st_size, int(p.stat().st_mtime)] for p in files}


def source_store(source: Path, root: Path) -> MarketStore:
    """The store of ``source``'s history under ``root`` (ingested when missing or changed)."""
    if not source.exists():
        raise CascadeError("replay source not found", str(source),
                           hint="set live.replay.source to a folder of raw data files")
    store = MarketStore(root)
    marker = root / MARKER
    signature = _signature(source)
    if (read_json(marker) or {}).get("files") == signature and store.partitions():
        return store
    log.info("ingesting the replay history %s into %s", source, root)
    report = ingest_path(store, source)
    if report.failed:
        raise CascadeError(f"{len(report.failed)} replay source file(s) failed to ingest",
                           str(source), hint=report.format())
    write_json(marker, {"source": str(source), "files": signature})
    return store


def seed_store(history: MarketStore, store: MarketStore, start: pd.Timestamp) -> int:
    """Copy into ``store`` every record of ``history`` available at ``start``; returns rows."""
    rows = 0
    for key in history.partitions():
        frame = history.read_partition(key)
        known = frame[available_at(key.dataset, key.interval, frame.index) <= start]
        if len(known):
            store.write(key, known, on_conflict="replace", source=f"replay seed <= {start}")
            rows += len(known)
    return rows
