"""What happened to each ingest input, and the one place a source's frames are written.

Lives below ``ingest`` so every source (files, mapped tables, exchanges) can report and write
without importing the ingest module back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cascade_ml.data.sources.base import Loaded
from cascade_ml.data.store import ConflictRule, MarketStore, WriteResult
from cascade_ml.errors import CascadeError

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
