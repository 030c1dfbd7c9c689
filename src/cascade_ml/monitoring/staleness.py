"""How old each source's newest record is, and which sources are too old to trust.

Age is measured from when the newest record *became available* (docs/architecture.md):
the candle close for bars, the end of the period for daily liquidations and sentiment, the
stamp itself for funding settlements and open-interest snapshots. ``source_staleness`` is the
only function here that reads the store; the judging functions are pure.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.data.summary import summarize
from cascade_ml.errors import CascadeError
from cascade_ml.monitoring.config import MonitoringConfig

PERIOD_STAMPED = frozenset({"ohlcv", "liquidations", "sentiment"})
"""Datasets stamped at the period start (cascade_ml.data.schemas): known one interval later."""
DATASET_FAMILIES: dict[str, tuple[str, ...]] = {
    "ohlcv": ("volatility", "correlation", "volume", "sentiment"),
    "funding": ("funding",),
    "open_interest": ("open_interest",),
    "liquidations": ("liquidations",),
    "sentiment": ("sentiment",),
    "depth": ("depth",),
    "positioning": (),
}
"""The feature families each dataset feeds (cascade_ml.features): a stale source matters only
when a family it feeds holds inputs the model uses."""
SOURCE_COLUMNS = ["dataset", "venue", "symbol", "interval", "last", "available_at", "age_s"]


def available_at(dataset: str, interval: str, stamp: pd.Timestamp | pd.DatetimeIndex
                 ) -> pd.Timestamp | pd.DatetimeIndex:
    """When a record stamped ``stamp`` can be used."""
    return stamp + pd.Timedelta(interval) if dataset in PERIOD_STAMPED else stamp


def source_staleness(store: MarketStore, now: pd.Timestamp,
                     keys: Iterable[PartitionKey] | None = None) -> pd.DataFrame:
    """One row per partition (or per ``keys``): its newest record available at ``now`` and that
    record's age in seconds (NaN for a partition with nothing available yet).

    Built on :func:`cascade_ml.data.summary.summarize`; a partition holding records not yet
    available at ``now`` (a daily value for today, or replaying the past) is re-read so the age
    is point in time.
    """
    summary = summarize(store, now)
    if keys is not None:
        wanted = {(k.dataset, k.venue, k.symbol, k.interval) for k in keys}
        tuples = list(zip(summary.dataset, summary.venue, summary.symbol, summary.interval,
                          strict=True))
        summary = summary[[t in wanted for t in tuples]]
    rows = []
    for rec in summary.itertuples(index=False):
        last = rec.last
        if pd.notna(last) and available_at(rec.dataset, rec.interval, last) > now:
            frame = store.read_partition(PartitionKey(rec.dataset, rec.venue, rec.symbol,
                                                      rec.interval))
            known = frame.index[available_at(rec.dataset, rec.interval, frame.index) <= now]
            last = known[-1] if len(known) else pd.NaT
        avail = available_at(rec.dataset, rec.interval, last) if pd.notna(last) else pd.NaT
        age = (now - avail).total_seconds() if pd.notna(avail) else np.nan
        rows.append([rec.dataset, rec.venue, rec.symbol, rec.interval, last, avail, age])
    return pd.DataFrame(rows, columns=SOURCE_COLUMNS)


def judge_sources(sources: pd.DataFrame, cfg: MonitoringConfig) -> pd.DataFrame:
    """``sources`` plus ``max_age_s`` (NaN: not judged) and ``stale`` (older than its limit, or
    nothing at all before now)."""
    out = sources.copy()
    limits = [cfg.age_limit(d, i) for d, i in zip(out.dataset, out.interval, strict=True)]
    out["max_age_s"] = [np.nan if lim is None else lim.total_seconds() for lim in limits]
    age = out["age_s"].to_numpy(dtype=float)
    limit = out["max_age_s"].to_numpy(dtype=float)
    out["stale"] = np.isfinite(limit) & (~np.isfinite(age) | (age > limit))
    return out


def stale_groups(judged: pd.DataFrame) -> pd.DataFrame:
    """(dataset, symbol) pairs every judged partition of which is stale: features coalesce
    venues (funding, open interest), so one fresh venue still feeds them. One row per pair with
    its freshest partition (the one the reason names)."""
    judged = judged[np.isfinite(judged["max_age_s"].to_numpy(dtype=float))]
    if judged.empty:
        return judged.copy()
    freshest = (judged.assign(_age=judged["age_s"].fillna(np.inf))
                .sort_values("_age", kind="stable").groupby(["dataset", "symbol"], sort=True)
                .head(1).drop(columns="_age"))
    all_stale = judged.groupby(["dataset", "symbol"])["stale"].all()
    keep = [all_stale[(d, s)] for d, s in zip(freshest.dataset, freshest.symbol, strict=True)]
    return freshest[keep].sort_values(["dataset", "symbol"]).reset_index(drop=True)


def parse_key(relpath: str) -> PartitionKey | None:
    """The partition of a store path ``<dataset>/venue=<v>/symbol=<S>/interval=<i>/part.parquet``
    (as a features manifest lists its inputs); None for anything else."""
    parts = relpath.replace("\\", "/").split("/")
    if len(parts) != 5 or not all(p.startswith(k) for p, k in
                                  zip(parts[1:4], ("venue=", "symbol=", "interval="),
                                      strict=True)):
        return None
    try:
        return PartitionKey(parts[0], parts[1][6:], parts[2][7:], parts[3][9:])
    except CascadeError:  # an unknown dataset or a bad name: not a store partition
        return None
