"""Ingest raw files (and exchanges) into the store, with a report of what happened to each file.

Every file is read and validated completely before anything is written, so a bad file never
changes the store. Loaded files are written in order of their last timestamp (ties by path): a
file that reaches further was collected later, so on overlapping rows its values win under the
default ``replace`` rule (e.g. the final candle replaces a snapshot taken while it was open).

Which formats exist is decided in one place, ``cascade_ml.data.sources.registry``: each file goes
to the first registered source that accepts it. The report types live in
``cascade_ml.data.outcome`` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cascade_ml.data.outcome import FileOutcome, IngestReport, Status, write_loaded
from cascade_ml.data.sources.base import FileSource, Loaded, SkipFile, csv_header
from cascade_ml.data.sources.registry import FILE_SOURCES, data_suffixes, find_source
from cascade_ml.data.store import ConflictRule, MarketStore
from cascade_ml.errors import CascadeError

if TYPE_CHECKING:
    from cascade_ml.data.config import SourceConfig

__all__ = ["DATA_SUFFIXES", "FILE_SOURCES", "FileOutcome", "IngestReport", "detect",
           "ingest_path", "ingest_sources", "load_file", "write_loaded"]

DATA_SUFFIXES = data_suffixes()


def detect(path: Path) -> FileSource | None:
    """The registered source that reads ``path`` (the first that accepts it), or None."""
    return find_source(path)


def _unknown(path: Path) -> SkipFile:
    if path.suffix.lower() != ".csv":
        return SkipFile("format not recognised")
    return SkipFile(f"format not recognised (header {csv_header(path)[:6]})")


def load_file(path: Path, venue: str | None = None) -> list[Loaded]:
    """Read and validate one file completely (no writes). Raises SkipFile or CascadeError."""
    source = detect(path)
    if source is None:
        raise _unknown(path)
    return source.load(path, venue)


def _reason(exc: CascadeError, file: Path) -> str:
    """The error message without the file path the report already shows."""
    text = exc.message
    return text[len(str(file)):].lstrip(": ") if text.startswith(str(file)) else text


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in DATA_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def ingest_path(store: MarketStore, path: str | Path, *, venue: str | None = None,
                on_conflict: ConflictRule = "replace") -> IngestReport:
    """Ingest a file or every recognised file under a folder; see the module docstring."""
    root = Path(path)
    if not root.exists():
        raise CascadeError("path not found", str(root))
    single = root.is_file()
    report = IngestReport()
    pending: list[tuple[FileOutcome, list[Loaded]]] = []
    for file in _files(root):
        name = str(file if single else file.relative_to(root))
        try:
            loaded = load_file(file, venue)
        except SkipFile as skip:
            unknown = str(skip).startswith("format not")
            status: Status = "failed" if single and unknown else "skipped"
            report.outcomes.append(FileOutcome(name, status, str(skip)))
            continue
        except CascadeError as exc:
            report.outcomes.append(FileOutcome(name, "failed", _reason(exc, file)))
            continue
        notes = list(dict.fromkeys(n for item in loaded for n in item.notes))
        pending.append((FileOutcome(name, "loaded", notes=notes), loaded))
    pending.sort(key=lambda item: (max(x.frame.index.max() for x in item[1]), item[0].path))
    for outcome, loaded in pending:  # the report lists loaded files in the order written
        write_loaded(store, outcome, loaded, on_conflict)
        report.outcomes.append(outcome)
    return report


def ingest_sources(store: MarketStore, sources: Sequence[SourceConfig], symbols: list[str],
                   on_conflict: ConflictRule, *, progress: bool = False) -> IngestReport:
    """Ingest every source of a pipeline (files, mapped tables, exchanges) into ``store``.

    ``symbols`` are fetched from exchanges whose source names none of its own.
    """
    from cascade_ml.data.config import ExchangeSourceConfig, FileSourceConfig

    rule = on_conflict
    report = IngestReport()
    for source in sources:
        if isinstance(source, FileSourceConfig):
            report.extend(ingest_path(store, source.path, venue=source.venue, on_conflict=rule))
        elif isinstance(source, ExchangeSourceConfig):
            from cascade_ml.data.sources.exchange import ingest_exchange

            report.extend(ingest_exchange(store, source, source.symbols or symbols,
                                          on_conflict=rule,
                                          progress=progress))
        else:
            from cascade_ml.data.sources.table import ingest_table

            report.extend(ingest_table(store, source, on_conflict=rule))
    return report
