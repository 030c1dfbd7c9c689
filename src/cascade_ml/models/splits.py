"""Time-series splits without label leakage: a final holdout and a purged walk-forward.

The final period is either the last ``final_frac`` of the rows or every row from an explicit
``final_start`` on (so results on a longer history are judged on the same rows as before).
Held-out periods inside the history (``holdout_periods``) are masked by ``holdout_exclusion``.

Labels at row ``t`` cover bars ``t+1 .. t+H``, so neighbouring rows share most of their label
window. A training row whose window reaches into a test window leaks the test outcome; it is
*purged*. Rows just after a test window are *embargoed* (de Prado, AFML ch. 7). In a pure
walk-forward training never follows the test window, so the embargo only bites in the
``walk_forward=False`` (blocked CV) mode; it is kept so both modes share one proven splitter.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from cascade_ml.errors import CascadeError, ConfigError


def bar_interval(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The typical bar length (median step) of a time index."""
    if len(index) < 2:
        raise CascadeError("need at least two rows to infer the bar interval")
    return pd.Timedelta(int(np.median(np.diff(index.asi8))), unit=index.unit)


def _as_index_time(when, index: pd.DatetimeIndex) -> pd.Timestamp:
    """``when`` (a UTC time) in the time zone of ``index`` (naive index: naive UTC)."""
    ts = pd.Timestamp(when)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return ts.tz_convert(index.tz) if index.tz is not None else ts.tz_localize(None)


def final_split(index: pd.DatetimeIndex, final_frac: float, horizon: int,
                final_start=None, *, min_dev: int = 1, where: str = "final_start"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the development rows and of the untouched final period.

    The final period is every row at or after ``final_start`` (a UTC time) when it is given,
    else the last ``final_frac`` of the rows. Development rows whose label window reaches into
    the final period are purged, so a model fitted on all development rows has never seen a
    final-period outcome. With ``final_start``, a final period without rows or fewer than
    ``min_dev`` development rows is a ``ConfigError`` at ``where``.
    """
    n = len(index)
    if final_start is not None:
        t0 = _as_index_time(final_start, index)
        start = int(index.searchsorted(t0, side="left")) if n else 0
        if start >= n:
            raise ConfigError(f"final_start {t0} leaves an empty final period (the rows end at "
                              f"{index[-1] if n else 'nothing'})", where,
                              hint="move final_start earlier or use final_frac")
    else:
        n_final = int(round(n * final_frac))
        if n_final == 0:
            return np.arange(n), np.arange(0)
        start = n - n_final
    step = bar_interval(index)
    label_end = index + horizon * step
    dev = np.flatnonzero((np.arange(n) < start) & (label_end <= index[start]))
    if final_start is not None and len(dev) < min_dev:
        raise ConfigError(f"final_start {index[start]} leaves {len(dev)} development rows "
                          f"(at least {min_dev} are needed)", where,
                          hint="move final_start later or ingest earlier history")
    return dev, np.arange(start, n)


def holdout_exclusion(times, periods, horizon: int, step: pd.Timedelta) -> np.ndarray:
    """Rows no choice and no fit may read because of held-out ``periods`` (``.start``/``.end``,
    UTC, end exclusive): the periods' own rows, the rows before each whose label window of
    ``horizon`` bars of ``step`` reaches into it (purge) and the ``horizon`` bars after it
    (embargo)."""
    t = pd.DatetimeIndex(times)
    out = np.zeros(len(t), dtype=bool)
    for p in periods:
        start, end = _as_index_time(p.start, t), _as_index_time(p.end, t)
        out |= np.asarray((t + horizon * step > start) & (t < end + horizon * step))
    return out


def in_period(times, period) -> np.ndarray:
    """Rows inside a held-out period (start inclusive, end exclusive)."""
    t = pd.DatetimeIndex(times)
    start, end = _as_index_time(period.start, t), _as_index_time(period.end, t)
    return np.asarray((t >= start) & (t < end))


class PurgedWalkForward:
    """Expanding-window walk-forward with purging and embargo, on a sorted DatetimeIndex.

    The first ``min_train_frac`` of rows only train; the rest is cut into ``n_splits``
    consecutive test windows. Follows scikit-learn's splitter interface.
    """

    def __init__(self, n_splits: int = 5, horizon: int = 24, embargo: int = 0,
                 min_train_frac: float = 0.4, walk_forward: bool = True) -> None:
        self.n_splits = n_splits
        self.horizon = horizon
        self.embargo = embargo
        self.min_train_frac = min_train_frac
        self.walk_forward = walk_forward

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return self.n_splits

    def test_windows(self, n: int) -> list[tuple[int, int]]:
        """[start, stop) positions of each test window."""
        first = int(n * self.min_train_frac)
        if n - first < self.n_splits:
            raise CascadeError(f"{n} rows cannot give {self.n_splits} test windows")
        bounds = np.linspace(first, n, self.n_splits + 1).astype(int)
        return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        index = X.index if hasattr(X, "index") else X
        index = pd.DatetimeIndex(index)
        if not index.is_monotonic_increasing:
            raise CascadeError("walk-forward needs rows sorted by time")
        step = bar_interval(index)
        label_end = index + self.horizon * step
        pos = np.arange(len(index))
        for start, stop in self.test_windows(len(index)):
            t0, t1 = index[start], index[stop - 1]
            test_label_end = t1 + self.horizon * step
            before = (pos < start) & (label_end <= t0)
            after = (pos >= stop) & (index > test_label_end + self.embargo * step)
            train = before if self.walk_forward else before | after
            train_idx = np.flatnonzero(train)
            if len(train_idx) == 0:
                raise CascadeError(f"test window {t0}..{t1} has no training rows left after "
                                   "purging")
            yield train_idx, pos[start:stop]
