"""The interface every file source implements, what it returns, and the helpers they share.

A ``FileSource`` recognises its files (``detect``, by name and a cheap look at the content) and
turns one raw file into one or more ``Loaded`` frames (canonical, validated by
``cascade_ml.data.validate.to_canonical``) plus the partition each belongs to. A file that is
recognised but deliberately not stored raises ``SkipFile`` with the reason, so the ingest report
can say why instead of silently dropping it. Sources are listed, in priority order, in
``cascade_ml.data.sources.registry``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from cascade_ml.data.store import PartitionKey
from cascade_ml.errors import DataValidationError


@dataclass
class Loaded:
    """A canonical frame ready for the store, with where it came from and what was dropped."""

    key: PartitionKey
    frame: pd.DataFrame
    source: str
    notes: list[str] = field(default_factory=list)


class SkipFile(Exception):  # a control-flow signal, not an error
    """A recognised file that is intentionally not ingested (the message says why)."""


class FileSource(ABC):
    """One raw-file format: recognise a file, then read and validate it completely (no writes).

    ``suffixes`` (lower case) is a cheap pre-filter the registry applies before ``detect``.
    ``detect`` looks only at the name and at most the first line; it may raise ``CascadeError``
    for a file that is broken whatever its format (an empty CSV). ``load`` raises ``SkipFile``
    or ``CascadeError`` (naming the file) and never touches the store.
    """

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]

    def accepts(self, path: Path) -> bool:
        """Suffix pre-filter, then ``detect``."""
        return path.suffix.lower() in self.suffixes and self.detect(path)

    @abstractmethod
    def detect(self, path: Path) -> bool:
        """True when this source reads ``path``."""

    @abstractmethod
    def load(self, path: Path, venue: str | None = None) -> list[Loaded]:
        """The file's canonical frames; ``venue`` overrides the one the source would infer."""

    def __repr__(self) -> str:
        return f"<FileSource {self.name}>"


class CsvKindSource(FileSource):
    """A CSV format family whose kinds are told apart by the header alone (e.g. OI vs funding).

    Subclasses give ``label`` (for the error message), ``kind_of(header)`` and
    ``load_kind(path, kind, venue)``; detection and the refusal of an unknown header live here.
    """

    suffixes = (".csv",)
    label: ClassVar[str]

    @abstractmethod
    def kind_of(self, header: list[str]) -> str | None:
        """The kind of CSV this header belongs to, or None when it is not this format."""

    @abstractmethod
    def load_kind(self, path: Path, kind: str, venue: str | None) -> list[Loaded]:
        """Read a file already known to be of ``kind``."""

    def detect(self, path: Path) -> bool:
        return self.kind_of(csv_header(path)) is not None

    def load(self, path: Path, venue: str | None = None) -> list[Loaded]:
        kind = self.kind_of(csv_header(path))
        if kind is None:
            raise DataValidationError(f"not a {self.label} CSV", str(path))
        return self.load_kind(path, kind, venue)


def csv_header(path: Path) -> list[str]:
    """The column names on a CSV's first line; an empty file is an error whatever its format."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        first = handle.readline().strip()
    if not first:
        raise DataValidationError("empty file", str(path))
    return [c.strip() for c in first.split(",")]


_UNITS = {"m": "min", "h": "h", "d": "D", "w": "W"}
_INTERVAL = re.compile(r"^(\d+)([mhdw])$")


def interval_to_timedelta(interval: str) -> pd.Timedelta:
    """``"1h"`` -> 1 hour; the interval strings used as partition keys (``5m``, ``8h``, ``1d``)."""
    match = _INTERVAL.match(interval)
    if not match:
        raise DataValidationError(f"unknown interval {interval!r}; use e.g. 5m, 1h, 8h, 1d")
    return pd.Timedelta(int(match.group(1)), unit=_UNITS[match.group(2)])


def timedelta_to_interval(step: pd.Timedelta) -> str:
    """The inverse of ``interval_to_timedelta`` for whole minutes, hours or days."""
    seconds = int(round(step.total_seconds()))
    if seconds <= 0:
        raise DataValidationError(f"non-positive time step {step}")
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{max(seconds // 60, 1)}m"


def infer_interval(index: pd.DatetimeIndex, where: str) -> str:
    """The typical spacing of a series (median step), e.g. funding every 8h on Binance, 1h on
    Hyperliquid. Rounded to whole minutes so millisecond jitter does not matter."""
    if len(index) < 2:
        raise DataValidationError("cannot infer the interval from fewer than two rows", where)
    steps = pd.Series(index.sort_values()).diff().dropna()
    median = steps.median().round("min")
    return timedelta_to_interval(median)


def read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV or say clearly that it is empty/unreadable."""
    if path.stat().st_size == 0:
        raise DataValidationError("empty file", str(path))
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError("empty file", str(path)) from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"not a readable CSV ({exc})", str(path)) from exc
    if frame.empty:
        raise DataValidationError("no data rows (header only)", str(path))
    return frame


def require_columns(frame: pd.DataFrame, columns: list[str] | tuple[str, ...], where: str) -> None:
    """Refuse a frame that lacks columns the source needs, naming them."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"missing column(s) {missing}; columns are {list(frame.columns)}", where)
