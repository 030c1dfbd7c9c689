"""Purging and embargo, proven on constructed hourly indices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade_ml.errors import CascadeError
from cascade_ml.models.splits import PurgedWalkForward, final_split

HOUR = pd.Timedelta("1h")


def hourly(n: int, gaps: tuple[int, ...] = ()) -> pd.DatetimeIndex:
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    return idx.delete(list(gaps)) if gaps else idx


@settings(max_examples=40, deadline=None)
@given(n=st.integers(300, 1500), folds=st.integers(1, 6), h=st.integers(1, 48),
       embargo=st.integers(0, 30), wf=st.booleans())
def test_no_training_label_window_overlaps_a_test_label_window(n, folds, h, embargo, wf):
    idx = hourly(n)
    cv = PurgedWalkForward(folds, h, embargo, 0.4, walk_forward=wf)
    seen_test = []
    for train, test in cv.split(idx):
        t0, t1 = idx[test[0]], idx[test[-1]]
        tr = idx[train]
        # a training row's label window (t, t+H] never meets the test rows' windows (t0, t1+H]
        overlap = (tr + h * HOUR > t0) & (tr < t1 + h * HOUR)
        assert not overlap.any()
        # walk-forward trains only on the past; blocked mode respects the embargo after the test
        after = tr[tr > t1]
        if wf:
            assert len(after) == 0
        else:
            assert (after > t1 + (h + embargo) * HOUR).all()
        assert len(np.intersect1d(train, test)) == 0
        seen_test.append(test)
    allt = np.concatenate(seen_test)
    assert len(allt) == len(np.unique(allt))  # test windows do not overlap each other
    assert allt[-1] == n - 1


def test_purge_removes_exactly_the_h_rows_before_the_test_window():
    idx = hourly(1000)
    train, test = next(PurgedWalkForward(3, 24, 0, 0.4).split(idx))
    assert test[0] == 400
    assert train[-1] == 400 - 24  # row 376's label covers 377..400: ends at the test's first bar
    assert len(train) == 377


def test_blocked_mode_embargo_drops_rows_after_the_test_window():
    idx = hourly(1000)
    splits = list(PurgedWalkForward(3, 10, 20, 0.4, walk_forward=False).split(idx))
    train, test = splits[0]
    last_test = test[-1]
    after = train[train > last_test]
    assert after[0] == last_test + 10 + 20 + 1


def test_purging_uses_time_not_row_counts_across_a_gap():
    # 48 missing hours right before the second fold: rows far in time need no purge
    idx = hourly(1048, gaps=tuple(range(700, 748)))
    cv = PurgedWalkForward(3, 24, 0, 0.4)
    for train, test in cv.split(idx):
        assert (idx[train] + 24 * HOUR <= idx[test[0]]).all()


def test_final_split_purges_development_rows_whose_labels_reach_the_final_period():
    idx = hourly(1000)
    dev, final = final_split(idx, 0.15, 24)
    assert final[0] == 850 and final[-1] == 999
    assert (idx[dev] + 24 * HOUR <= idx[final[0]]).all()
    assert dev[-1] == 850 - 24


def test_too_few_rows_for_the_folds_is_a_clear_error():
    with pytest.raises(CascadeError, match="test windows"):
        list(PurgedWalkForward(5, 24, 0, 0.99).split(hourly(100)))


def test_unsorted_index_is_refused():
    with pytest.raises(CascadeError, match="sorted"):
        list(PurgedWalkForward(2, 1).split(hourly(100)[::-1]))
