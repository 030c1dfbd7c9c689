"""One cycle's incremental collection: candles, funding, open interest and Fear & Greed into the
store, through the project's ccxt ingestion code (a real exchange, or the replay exchange).

Each (symbol, dataset) fetches only what the store lacks and is written atomically when its
pages are complete, so a cycle killed half way leaves whole partitions and the next cycle resumes
from the same place. Open-interest snapshots stay in the store once fetched: collected every
cycle, they accumulate far beyond the ~30 days an exchange keeps. A failed source is logged and
left to the monitor: its data goes stale and the decision fails safe with the source named.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import ccxt
import pandas as pd

from cascade_ml.data.config import ExchangeSourceConfig
from cascade_ml.data.outcome import IngestReport
from cascade_ml.data.sources.exchange import ingest_exchange
from cascade_ml.data.sources.fear_greed import FearGreedSource, collect_fear_greed
from cascade_ml.data.store import ConflictRule, MarketStore
from cascade_ml.errors import CascadeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectPlan:
    """What every cycle collects, from where."""

    exchange: ccxt.Exchange
    symbols: tuple[str, ...]
    timeframe: str
    since: str
    open_interest_timeframe: str | None = None
    fear_greed: FearGreedSource | None = None
    on_conflict: ConflictRule = "replace"


@dataclass
class CollectResult:
    """Rows added per partition, and what failed (source name -> reason)."""

    added: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.added.values())

    def absorb(self, report: IngestReport) -> None:
        for write in report.writes:
            self.added[str(write.key)] = self.added.get(str(write.key), 0) + write.added
        for outcome in report.failed:
            self.failed[outcome.path] = outcome.reason


def collect(store: MarketStore, plan: CollectPlan, now: pd.Timestamp) -> CollectResult:
    """Bring the store up to ``now`` from the plan's sources (never raises for a source that
    fails; see ``CollectResult.failed``)."""
    now_ms = int(now.value // 1_000_000)
    result = CollectResult()
    batches = [(plan.timeframe, ["ohlcv", "funding"])]
    if plan.open_interest_timeframe:
        batches.append((plan.open_interest_timeframe, ["open_interest"]))
    for timeframe, datasets in batches:
        source = ExchangeSourceConfig(exchange=plan.exchange.id, datasets=datasets,
                                      timeframe=timeframe, since=plan.since)
        report = ingest_exchange(store, source, list(plan.symbols), exchange=plan.exchange,
                                 on_conflict=plan.on_conflict, now_ms=now_ms)
        result.absorb(report)
    if plan.fear_greed is not None:
        try:
            added = collect_fear_greed(store, plan.fear_greed, now, plan.since)
            result.added["sentiment/alternative.me/MARKET/1d"] = added
        except CascadeError as exc:
            result.failed["alternative.me:fear_greed"] = exc.message
    for name, why in result.failed.items():
        log.warning("collecting %s failed: %s", name, why)
    return result
