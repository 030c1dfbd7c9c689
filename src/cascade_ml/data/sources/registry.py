"""The one list of file formats ingest knows, in priority order: a file goes to the first source
that accepts it. Adding a format is one ``FileSource`` subclass and one line here.

Mapped tables (``cascade_ml.data.sources.table``) and exchanges
(``cascade_ml.data.sources.exchange``) are configured sources, not file formats, so they are not
listed.
"""

from __future__ import annotations

from pathlib import Path

from cascade_ml.data.sources.base import FileSource
from cascade_ml.data.sources.binance_dump import BinanceDumpSource
from cascade_ml.data.sources.binance_vision import BinanceVisionSource
from cascade_ml.data.sources.coinalyze import CoinalyzeSource
from cascade_ml.data.sources.force_orders import ForceOrderSource
from cascade_ml.data.sources.freqtrade import FreqtradeSource
from cascade_ml.data.sources.hyperliquid import HyperliquidSource
from cascade_ml.data.sources.sentiment import SentimentSource
from cascade_ml.data.sources.varanus import VaranusSource

FILE_SOURCES: tuple[FileSource, ...] = (
    FreqtradeSource(),
    VaranusSource(),
    HyperliquidSource(),
    BinanceDumpSource(),  # before the header-only CSV formats: it also knows files by folder
    CoinalyzeSource(),
    SentimentSource(),
    BinanceVisionSource(),
    ForceOrderSource(),
)


def find_source(path: Path, sources: tuple[FileSource, ...] = FILE_SOURCES) -> FileSource | None:
    """The first source that accepts ``path``, or None (may raise for a broken file)."""
    return next((source for source in sources if source.accepts(path)), None)


def data_suffixes(sources: tuple[FileSource, ...] = FILE_SOURCES) -> set[str]:
    """Every file suffix some source reads (a folder walk looks at these files only)."""
    return {suffix for source in sources for suffix in source.suffixes}
