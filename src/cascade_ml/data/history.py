"""A perp's long price history: its own bars, with spot candles standing in before its first bar.

Many perps' own history starts years after their spot market (Binance USD-M listed BTC in
2019-09, ADA in 2020-01, DOGE later still), and the crashes of 2018-2019 exist only as spot
candles. Spot is another market: the price is close to the perp's (a basis of a few basis
points, wider in crashes), the volume is a different market's volume, and there is no funding,
open interest or liquidation of a perp. So spot candles are stored as their own venue
(``<venue>_spot``, e.g. ``binance_spot``) and joined to the perp by ONE rule, here:

* the perp wins wherever it exists;
* a spot bar is used only strictly before the perp's first bar (no overlap, no gap filling
  after it: a hole in the perp's history stays a hole);
* every row carries ``is_spot`` (1.0 spot, 0.0 perp), so volume features never compare the two
  markets' volumes and the perp-only families are NaN on spot rows (never 0);
* the switch point (the perp's first bar) is recorded in ``frame.attrs["splice"]``.

The rule is point-in-time: the perp's first bar is a fact of the past, so appending later rows
to either market never changes an earlier spliced row (``tests/data/test_data_history.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from cascade_ml.contracts.columns import IS_SPOT
from cascade_ml.data.store import MarketStore, PartitionKey, to_utc

SPOT_SUFFIX = "_spot"


def spot_venue(venue: str) -> str:
    """The store venue of ``venue``'s spot market (``binance`` -> ``binance_spot``)."""
    return venue if venue.endswith(SPOT_SUFFIX) else f"{venue}{SPOT_SUFFIX}"


@dataclass(frozen=True)
class Splice:
    """Where a spliced series switches from spot to perp (``switch`` None: no perp bar yet)."""

    spot_rows: int
    perp_rows: int
    switch: str | None
    spot_first: str | None


def splice_bars(perp: pd.DataFrame, spot: pd.DataFrame | None) -> pd.DataFrame:
    """The perp's bars preceded by the spot bars strictly before its first bar (pure).

    Columns are the union of both (a column one market lacks is NaN on its rows) plus
    ``is_spot``; ``attrs["splice"]`` describes the join (``Splice`` as a dict).
    """
    perp = perp.sort_index()
    if spot is None:
        spot = perp.iloc[0:0]
    spot = spot.sort_index()
    if len(perp):
        spot = spot[spot.index < perp.index[0]]
    parts = [spot.assign(**{IS_SPOT: 1.0}), perp.assign(**{IS_SPOT: 0.0})]
    frame = pd.concat([p for p in parts if len(p)] or [parts[1]])
    cols = list(dict.fromkeys([*perp.columns, *spot.columns, IS_SPOT]))
    frame = frame.reindex(columns=cols)
    frame.index.name = "timestamp"
    info = Splice(len(spot), len(perp), str(perp.index[0]) if len(perp) else None,
                  str(spot.index[0]) if len(spot) else None)
    frame.attrs = {"splice": asdict(info)}
    return frame


def read_bars(store: MarketStore, symbol: str, venue: str, interval: str, *,
              spot: str | None = None, end: pd.Timestamp | str | None = None
              ) -> tuple[pd.DataFrame, list[PartitionKey]]:
    """A symbol's bars up to ``end`` and the partitions read.

    ``spot`` None: the perp partition as stored. ``spot`` a venue (``binance_spot``): the
    spliced series (``splice_bars``), with ``is_spot`` on every row even when the store holds
    no spot candles for this symbol (then all 0.0), so every symbol's table has the same columns.
    """
    key = store.resolve("ohlcv", symbol, venue, interval)
    end_ts = to_utc(end) if end is not None else None

    def upto(frame: pd.DataFrame) -> pd.DataFrame:
        return frame if end_ts is None else frame[frame.index <= end_ts]

    perp = upto(store.read_partition(key))
    if spot is None:
        return perp, [key]
    spot_keys = [k for k in store.partitions("ohlcv", symbol, spot) if k.interval == interval]
    spot_frame = upto(store.read_partition(spot_keys[0])) if spot_keys else None
    return splice_bars(perp, spot_frame), [key, *spot_keys]
