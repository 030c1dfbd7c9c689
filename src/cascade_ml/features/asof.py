"""The one as-of join every external dataset goes through.

Rule (docs/architecture.md): a record is usable for the bar row ``t`` only if
``available_at <= t + bar_interval`` — the row is decided at the close of bar ``t``.
``available_at = record timestamp + delay``, where ``delay`` is the period length for
period-stamped data (a daily total stamped at the day's start is known when the day ends) plus the
configured publication lag. Example with 1h bars and lag 0: funding settled at 08:00 is visible on
the 07:00 row (its close is 08:00) and not on the 06:00 row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

AVAILABLE_AT = "available_at"


def interval_delta(interval: str) -> pd.Timedelta:
    """A store interval name (``1h``, ``8h``, ``1d``) as a Timedelta."""
    return pd.Timedelta(interval)


def asof_join(
    index: pd.DatetimeIndex,
    events: pd.DataFrame,
    *,
    bar_interval: pd.Timedelta,
    delay: pd.Timedelta = pd.Timedelta(0),
    max_age: pd.Timedelta | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """The latest event available by each bar's close, on the bar index.

    Returns the event ``columns`` plus ``available_at`` (NaT where nothing is available yet, or
    where the latest record is older than ``max_age`` at the bar's close: stale data is missing,
    not carried forward for ever).
    """
    columns = list(events.columns) if columns is None else columns
    keys = (index + bar_interval).as_unit("ns").asi8
    avail = (events.index + delay).as_unit("ns")
    order = np.argsort(avail.asi8, kind="stable")
    avail_ns = avail.asi8[order]
    # backward as-of: the last record with available_at <= key (ties: the later row wins)
    pos = np.searchsorted(avail_ns, keys, side="right") - 1
    ok = pos >= 0
    if max_age is not None and len(avail_ns):
        ok &= (keys - avail_ns[np.maximum(pos, 0)]) <= max_age.value
    take = np.where(ok, pos, 0)
    out = {}
    for col in columns:
        values = events[col].to_numpy(dtype=float)[order] if len(order) else np.array([np.nan])
        out[col] = np.where(ok, values[take], np.nan)
    stamps = avail_ns[take] if len(avail_ns) else np.zeros(len(keys), dtype="int64")
    out[AVAILABLE_AT] = pd.DatetimeIndex(np.where(ok, stamps, np.iinfo("int64").min)
                                         .astype("datetime64[ns]"), tz=None).tz_localize("UTC")
    return pd.DataFrame(out, index=index)


def coalesce_rows(frames: list[pd.DataFrame], key: str) -> pd.DataFrame:
    """Row by row, the first frame (by priority) whose ``key`` column is present.

    Used to merge per-venue features: every value in a row comes from the same venue.
    """
    if not frames:
        raise ValueError("coalesce_rows needs at least one frame")
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    out = frames[0].reindex(columns=columns).copy()
    taken = out[key].notna().to_numpy().copy() if key in out else np.zeros(len(out), bool)
    for frame in frames[1:]:
        if key not in frame:
            continue
        use = ~taken & frame[key].notna().to_numpy()
        if use.any():
            aligned = frame.reindex(columns=columns)
            out.loc[use, :] = aligned.loc[use, :].to_numpy()
            taken = taken | use
    return out
