"""Any CSV or Parquet table whose columns the user maps to canonical names.

``mapping`` is ``{canonical_name: source_column}`` (``timestamp`` included); unmapped canonical
columns are looked up under their own name. A mapping to a column the file lacks is an error
naming both. The dataset, symbol, venue and interval come from the caller (a pipeline source).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from cascade_ml.data.outcome import FileOutcome, IngestReport, write_loaded
from cascade_ml.data.schemas import SPECS
from cascade_ml.data.sources.base import Loaded, read_csv
from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.sources.varanus import read_parquet
from cascade_ml.data.store import ConflictRule, MarketStore, PartitionKey
from cascade_ml.data.validate import to_canonical
from cascade_ml.errors import CascadeError, DataValidationError

if TYPE_CHECKING:
    from cascade_ml.data.config import TableSourceConfig


def read_table_file(path: Path) -> pd.DataFrame:
    """CSV or Parquet by extension; a DatetimeIndex becomes a ``timestamp`` column."""
    if path.suffix.lower() == ".parquet":
        frame = read_parquet(path)
        if isinstance(frame.index, pd.DatetimeIndex):
            frame = frame.rename_axis(frame.index.name or "timestamp").reset_index()
        if frame.empty:
            raise DataValidationError("no rows", str(path))
        return frame
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    raise DataValidationError(f"unsupported table format {path.suffix!r}; use .csv or .parquet",
                              str(path))


def load_table(path: Path, *, dataset: str, symbol: str, venue: str, interval: str,
               mapping: dict[str, str] | None = None, naive_is_utc: bool = False) -> list[Loaded]:
    """Load one mapped table into one partition."""
    where = str(path)
    if dataset not in SPECS:
        raise DataValidationError(f"unknown dataset {dataset!r}; expected one of {list(SPECS)}",
                                  where)
    mapping = dict(mapping or {})
    unknown = [c for c in mapping if c != "timestamp" and c not in SPECS[dataset].columns]
    if unknown:
        raise DataValidationError(
            f"mapping names unknown {dataset} column(s) {unknown}; known: "
            f"{['timestamp', *SPECS[dataset].columns]}", where)
    frame = read_table_file(path)
    missing = {canon: src for canon, src in mapping.items() if src not in frame.columns}
    if missing:
        detail = ", ".join(f"{canon} -> {src!r}" for canon, src in missing.items())
        raise DataValidationError(f"mapped column(s) not in the file: {detail}; columns are "
                                  f"{list(frame.columns)}", where)
    renamed = frame.rename(columns={src: canon for canon, src in mapping.items()})
    canon = to_canonical(renamed, dataset, where, naive_is_utc=naive_is_utc)
    key = PartitionKey(dataset, venue, normalize_symbol(symbol), interval)
    return [Loaded(key, canon, where)]


def ingest_table(store: MarketStore, source: TableSourceConfig, *,
                 on_conflict: ConflictRule = "replace") -> IngestReport:
    """Ingest a ``TableSourceConfig`` (a file or every .csv/.parquet in a folder)."""
    root = Path(source.path)
    if not root.exists():
        raise CascadeError("path not found", str(root))
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.suffix.lower() in (".csv", ".parquet"))
    report = IngestReport()
    for file in files:
        try:
            loaded = load_table(file, dataset=source.dataset, symbol=source.symbol,
                                venue=source.venue, interval=source.interval,
                                mapping=source.mapping, naive_is_utc=source.naive_is_utc)
        except CascadeError as exc:
            report.outcomes.append(FileOutcome(str(file), "failed", exc.message))
            continue
        outcome = FileOutcome(str(file), "loaded")
        report.outcomes.append(outcome)
        write_loaded(store, outcome, loaded, on_conflict)
    return report
