"""A simulated clock: the one notion of "now" shared by the replay exchange and the paper loop.

Replaying history is only honest if every component asks the same clock, and that clock only
moves forward: a component that read the time after a later one could see the future.
"""

from __future__ import annotations

import numbers
import time

import pandas as pd

from cascade_ml.errors import CascadeError

TimeLike = int | str | pd.Timestamp


def to_ms(value: TimeLike) -> int:
    """Epoch milliseconds of an int (already ms), ISO string or Timestamp (naive = UTC)."""
    if isinstance(value, bool):
        raise CascadeError(f"not a time: {value!r}")
    if isinstance(value, numbers.Integral):  # numpy ints too: never read as nanoseconds
        return int(value)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise CascadeError(f"not a time: {value!r}") from exc
    if ts is pd.NaT:
        raise CascadeError(f"not a time: {value!r}")
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def to_timedelta_ms(delta: int | str | pd.Timedelta) -> int:
    """Milliseconds of an int (ms), a pandas offset string (``"1h"``) or a Timedelta."""
    if isinstance(delta, numbers.Integral) and not isinstance(delta, bool):
        return int(delta)
    try:
        return int(pd.Timedelta(delta).value // 1_000_000)
    except (TypeError, ValueError) as exc:
        raise CascadeError(f"not a time step: {delta!r}") from exc


class SimClock:
    """Simulated UTC time in epoch milliseconds; it moves forward only."""

    def __init__(self, start: TimeLike) -> None:
        self._ms = to_ms(start)

    @property
    def now_ms(self) -> int:
        return self._ms

    @property
    def now(self) -> pd.Timestamp:
        return pd.Timestamp(self._ms, unit="ms", tz="UTC")

    def advance(self, delta: int | str | pd.Timedelta) -> int:
        """Move forward by ``delta`` (ms, ``"1h"`` or a Timedelta); returns the new now."""
        step = to_timedelta_ms(delta)
        if step < 0:
            raise CascadeError(f"the clock cannot go back (advance by {delta!r})", "SimClock")
        self._ms += step
        return self._ms

    def set(self, when: TimeLike) -> int:
        """Jump forward to ``when``; going back is refused (the past would change)."""
        target = to_ms(when)
        if target < self._ms:
            raise CascadeError(f"the clock cannot go back from {self.now} to "
                               f"{pd.Timestamp(target, unit='ms', tz='UTC')}", "SimClock")
        self._ms = target
        return self._ms

    def __repr__(self) -> str:
        return f"SimClock({self.now.isoformat()})"


class WallClock:
    """The real UTC time, with the same reading interface as ``SimClock`` (the live loop runs on
    one or the other and cannot tell which)."""

    @property
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    @property
    def now(self) -> pd.Timestamp:
        return pd.Timestamp(self.now_ms, unit="ms", tz="UTC")

    def __repr__(self) -> str:
        return f"WallClock({self.now.isoformat()})"


Clock = SimClock | WallClock
