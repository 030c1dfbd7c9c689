"""Configuration of the store and the data sources (the `store` and `sources` pipeline sections)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from cascade_ml.config_base import StrictModel


class StoreConfig(StrictModel):
    """Where the Parquet store lives and how conflicting rows are merged."""

    root: Path = Path("data/store")
    on_conflict: Literal["replace", "keep", "error"] = "replace"


class FileSourceConfig(StrictModel):
    """A folder (or file) of raw data to ingest; formats are recognised by name and content."""

    kind: Literal["files"] = "files"
    path: Path
    venue: str | None = None


class ExchangeSourceConfig(StrictModel):
    """An exchange reached through ccxt; fetches only what the store lacks."""

    kind: Literal["exchange"] = "exchange"
    exchange: str = "binanceusdm"
    datasets: list[Literal["ohlcv", "funding", "open_interest"]] = ["ohlcv", "funding"]
    timeframe: str = "1h"
    since: str | None = None
    symbols: list[str] | None = None  # default: the task's symbols and references


class TableSourceConfig(StrictModel):
    """A CSV/Parquet file (or folder of them) in no known format, mapped to a canonical dataset.

    ``mapping`` is ``{canonical_column: file_column}``, e.g. ``{timestamp: time, close: px}``.
    """

    kind: Literal["table"] = "table"
    path: Path
    dataset: Literal["ohlcv", "funding", "open_interest", "liquidations", "sentiment"]
    symbol: str
    venue: str
    interval: str
    mapping: dict[str, str] = Field(default_factory=dict)
    naive_is_utc: bool = False


SourceConfig = Annotated[FileSourceConfig | ExchangeSourceConfig | TableSourceConfig,
                         Field(discriminator="kind")]
"""One entry of the pipeline's ``sources`` list, told apart by ``kind``."""
