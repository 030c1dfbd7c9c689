"""Ingest raw files (and exchanges) into the store, with a report of what happened to each file.

Every file is read and validated completely before anything is written, so a bad file never
changes the store. Loaded files are written in order of their last timestamp (ties by path): a
file that reaches further was collected later, so on overlapping rows its values win under the
default ``replace`` rule (e.g. the final candle replaces a snapshot taken while it was open).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cascade_ml.data.sources import (
    binance_dump,
    coinalyze,
    freqtrade,
    hyperliquid,
    sentiment,
    varanus,
)
from cascade_ml.data.sources.base import Loaded, SkipFile
from cascade_ml.data.store import ConflictRule, MarketStore, WriteResult
from cascade_ml.errors import CascadeError, DataValidationError

if TYPE_CHECKING:
    from cascade_ml.data.config import SourceConfig

DATA_SUFFIXES = {".csv", ".parquet", ".feather", ".json"}
Status = Literal["loaded", "skipped", "failed"]


@dataclass
class FileOutcome:
    """What happened to one input (a file, or an exchange fetch)."""

    path: str
    status: Status
    reason: str = ""
    writes: list[WriteResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    """Per-input outcomes of one ingest run."""

    outcomes: list[FileOutcome] = field(default_factory=list)

    def _with(self, status: Status) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def loaded(self) -> list[FileOutcome]:
        return self._with("loaded")

    @property
    def skipped(self) -> list[FileOutcome]:
        return self._with("skipped")

    @property
    def failed(self) -> list[FileOutcome]:
        return self._with("failed")

    @property
    def writes(self) -> list[WriteResult]:
        return [w for o in self.outcomes for w in o.writes]

    def extend(self, other: IngestReport) -> None:
        self.outcomes.extend(other.outcomes)

    def format(self) -> str:
        """A short human report: one line per write, skip and failure, then the totals."""
        lines = []
        for o in self.loaded:
            for w in o.writes:
                lines.append(f"loaded   {str(w.key):<40} +{w.added} added, {w.replaced} replaced, "
                             f"{w.unchanged} unchanged ({w.rows_total} rows)  <- {o.path}")
            lines.extend(f"         note: {n}" for n in o.notes)
        lines.extend(f"skipped  {o.path}: {o.reason}" for o in self.skipped)
        lines.extend(f"FAILED   {o.path}: {o.reason}" for o in self.failed)
        lines.append(f"{len(self.outcomes)} input(s): {len(self.loaded)} loaded, "
                     f"{len(self.skipped)} skipped, {len(self.failed)} failed")
        return "\n".join(lines)


def _header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        first = handle.readline().strip()
    return [c.strip() for c in first.split(",")] if first else []


def _csv_loader(path: Path) -> Callable[[str | None], list[Loaded]] | None:
    header = _header(path)
    if not header:
        raise DataValidationError("empty file", str(path))
    folder = path.parent.name
    dump_folder = (folder == "funding" or binance_dump.TF.match(folder)
                   or binance_dump.OI_TF.match(folder))
    if dump_folder and binance_dump.NAME.match(path.name):
        kind = binance_dump.kind_from_folder(folder)
        return lambda venue: binance_dump.load(path, kind, venue)
    kind = binance_dump.kind_of(path, header)
    if kind:
        return lambda venue: binance_dump.load(path, kind, venue)
    kind = coinalyze.kind_of(header)
    if kind:
        return lambda venue: coinalyze.load(path, kind, venue)
    kind = sentiment.kind_of(header)
    if kind:
        return lambda venue: sentiment.load(path, kind, venue)
    return None


def detect(path: Path) -> Callable[[str | None], list[Loaded]] | None:
    """The loader for a file, recognised by its name and content, or None when unknown."""
    suffix = path.suffix.lower()
    if suffix == ".feather" and freqtrade.matches(path):
        return lambda venue: freqtrade.load(path, venue)
    if suffix == ".parquet" and varanus.matches(path):
        return lambda venue: varanus.load(path, venue)
    if suffix == ".json" and path.stat().st_size and hyperliquid.matches(path):
        return lambda venue: hyperliquid.load(path, venue)
    if suffix == ".csv":
        return _csv_loader(path)
    return None


def load_file(path: Path, venue: str | None = None) -> list[Loaded]:
    """Read and validate one file completely (no writes). Raises SkipFile or CascadeError."""
    loader = detect(path)
    if loader is None:
        raise SkipFile(f"format not recognised (header {_header(path)[:6]})"
                       if path.suffix.lower() == ".csv" else "format not recognised")
    return loader(venue)


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


def write_loaded(store: MarketStore, outcome: FileOutcome, loaded: list[Loaded],
                 on_conflict: ConflictRule) -> None:
    """Write a file's frames; a refused write (conflict rule 'error') marks the file failed."""
    for item in loaded:
        try:
            outcome.writes.append(store.write(item.key, item.frame, on_conflict=on_conflict,
                                              source=item.source))
        except CascadeError as exc:
            outcome.status = "failed"
            outcome.reason = exc.message
            return


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
