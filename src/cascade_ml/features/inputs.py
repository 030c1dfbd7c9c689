"""Everything one symbol's features read, loaded once from the store (the only I/O of features).

Families are pure functions of a ``FeatureInputs``; the point-in-time checker truncates and
extends one of these to prove no feature looks ahead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from cascade_ml.data.history import read_bars
from cascade_ml.data.store import MarketStore, PartitionKey, to_utc
from cascade_ml.errors import CascadeError
from cascade_ml.features.asof import interval_delta

FrameFn = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class EventSeries:
    """An external dataset partition: its frame and the interval its timestamps are stamped at."""

    frame: pd.DataFrame
    interval: str
    venue: str = ""

    @property
    def delta(self) -> pd.Timedelta:
        return interval_delta(self.interval)


@dataclass(frozen=True)
class FeatureInputs:
    """Bars of the target and reference markets plus every optional external dataset."""

    symbol: str
    bars: pd.DataFrame
    bar_interval: pd.Timedelta = pd.Timedelta("1h")
    refs: dict[str, pd.DataFrame] = field(default_factory=dict)
    funding: dict[str, dict[str, EventSeries]] = field(default_factory=dict)
    open_interest: dict[str, dict[str, list[EventSeries]]] = field(default_factory=dict)
    liquidations: dict[str, EventSeries] = field(default_factory=dict)
    sentiment: dict[str, EventSeries] = field(default_factory=dict)
    sources: tuple[Path, ...] = ()
    depth: dict[str, list[EventSeries]] = field(default_factory=dict)

    def map_frames(self, fn: FrameFn, event_fn: FrameFn | None = None) -> FeatureInputs:
        """The same inputs with ``fn`` applied to the bar frames (target and references) and
        ``event_fn`` (default ``fn``) to every external event series."""
        event_fn = fn if event_fn is None else event_fn

        def ev(series: EventSeries) -> EventSeries:
            return replace(series, frame=event_fn(series.frame))

        return replace(
            self,
            bars=fn(self.bars),
            refs={s: fn(f) for s, f in self.refs.items()},
            funding={v: {s: ev(e) for s, e in d.items()} for v, d in self.funding.items()},
            open_interest={v: {s: [ev(e) for e in lst] for s, lst in d.items()}
                           for v, d in self.open_interest.items()},
            liquidations={s: ev(e) for s, e in self.liquidations.items()},
            sentiment={s: ev(e) for s, e in self.sentiment.items()},
            depth={s: [ev(e) for e in lst] for s, lst in self.depth.items()},
        )

    def truncate(self, cutoff: pd.Timestamp) -> FeatureInputs:
        """What could exist at the close of bar ``cutoff``: bars opened at or before it, external
        records stamped at or before its close (``cutoff + bar_interval``)."""
        known = cutoff + self.bar_interval
        return self.map_frames(lambda f: f[f.index <= cutoff], lambda f: f[f.index <= known])

    def after(self, cutoff: pd.Timestamp) -> FeatureInputs:
        """The complement of ``truncate``: only rows that could not exist at the cut-off."""
        known = cutoff + self.bar_interval
        return self.map_frames(lambda f: f[f.index > cutoff], lambda f: f[f.index > known])


def _finest(keys: list[PartitionKey]) -> list[PartitionKey]:
    return sorted(keys, key=lambda k: interval_delta(k.interval))


def _series(store: MarketStore, key: PartitionKey, end: pd.Timestamp | None) -> EventSeries:
    frame = store.read_partition(key)
    if end is not None:
        frame = frame[frame.index <= end]
    return EventSeries(frame, key.interval, key.venue)


def load_inputs(store: MarketStore, symbol: str, refs: list[str], *, venue: str, interval: str,
                funding_venues: list[str], oi_venues: list[str], market_symbol: str = "MARKET",
                end: pd.Timestamp | str | None = None,
                spot_venue: str | None = None) -> FeatureInputs:
    """Read one symbol's inputs: all history up to ``end`` (windows need the look-back); external
    records up to the close of the ``end`` bar, which that row may legitimately see.

    With ``spot_venue`` the target's and the references' bars are the spliced long history
    (``cascade_ml.data.history.read_bars``: spot only before the perp's first bar, ``is_spot``).
    """
    end_ts = to_utc(end) if end is not None else None
    known = end_ts + interval_delta(interval) if end_ts is not None else None
    store.resolve("ohlcv", symbol, venue, interval)  # the target exists before refs are checked
    for ref in refs:  # every reference checked before anything is read
        if not [k for k in store.partitions("ohlcv", ref, venue) if k.interval == interval]:
            have = store.symbols("ohlcv")
            raise CascadeError(f"reference symbol {ref!r} has no {interval} ohlcv on {venue}",
                               str(store.root), hint=f"symbols with ohlcv: {have or 'none'}")
    used: list[PartitionKey] = []
    bars, keys = read_bars(store, symbol, venue, interval, spot=spot_venue, end=end_ts)
    used += keys
    if bars.empty:
        raise CascadeError(f"no {symbol} bars up to {end}", str(keys[0]))
    ref_frames = {}
    for ref in refs:
        ref_frames[ref], keys = read_bars(store, ref, venue, interval, spot=spot_venue, end=end_ts)
        used += keys
    syms = [symbol, *refs]
    funding: dict[str, dict[str, EventSeries]] = {}
    for v in funding_venues:
        for s in syms:
            keys = _finest(store.partitions("funding", s, v))
            if keys:
                used.append(keys[0])
                funding.setdefault(v, {})[s] = _series(store, keys[0], known)
    oi: dict[str, dict[str, list[EventSeries]]] = {}
    for v in oi_venues:
        for s in syms:
            keys = _finest(store.partitions("open_interest", s, v))
            if keys:
                used.extend(keys)
                oi.setdefault(v, {})[s] = [_series(store, k, known) for k in keys]
    liq = {}
    for s in syms:
        keys = _finest(store.partitions("liquidations", s))
        if keys:
            used.append(keys[0])
            liq[s] = _series(store, keys[0], known)
    sentiment = {}
    for s in (market_symbol, symbol):
        keys = _finest(store.partitions("sentiment", s))
        if keys:
            used.append(keys[0])
            sentiment[s] = _series(store, keys[0], known)
    depth = {}
    keys = _finest(store.partitions("depth", symbol))  # every venue; the family coalesces them
    if keys:
        used.extend(keys)
        depth[symbol] = [_series(store, k, known) for k in keys]
    return FeatureInputs(symbol, bars, interval_delta(interval), ref_frames, funding, oi, liq,
                         sentiment, tuple(store.root / k.relpath() for k in used), depth)
