"""Purging and embargo, proven on constructed hourly indices."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade_ml.errors import CascadeError, ConfigError
from cascade_ml.models.splits import (
    PurgedWalkForward,
    final_split,
    holdout_exclusion,
    in_period,
)

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


def test_final_start_gives_exactly_the_rows_from_that_bar():
    idx = hourly(1000)  # 2024-01-01 00:00 .. 2024-02-11 15:00 UTC
    # bar 600 is 2024-01-26 00:00 UTC: 25 days of 24 bars
    dev, final = final_split(idx, 0.15, 24, pd.Timestamp("2024-01-26", tz="UTC"))
    assert final[0] == 600 and final[-1] == 999 and len(final) == 400
    # bar 599 (one hour before) is development in time, purged by H=24: last dev bar is 576
    assert dev[-1] == 600 - 24 and 599 not in dev and len(dev) == 577


def test_final_start_as_a_naive_date_is_read_as_utc_and_an_aware_time_is_converted():
    idx = hourly(1000)
    _, naive = final_split(idx, 0.0, 24, "2024-01-26")
    _, aware = final_split(idx, 0.0, 24, pd.Timestamp("2024-01-26 02:00", tz="Etc/GMT-2"))
    assert naive[0] == aware[0] == 600
    _, between = final_split(idx, 0.0, 24, "2024-01-25T23:30:00+00:00")
    assert between[0] == 600  # the first bar at or after the start


def test_final_start_takes_precedence_over_final_frac_and_frac_path_is_unchanged():
    idx = hourly(1000)
    assert final_split(idx, 0.5, 24, "2024-01-26")[1][0] == 600
    dev, final = final_split(idx, 0.15, 24, None)
    assert final[0] == 850 and dev[-1] == 826
    dev0, final0 = final_split(idx, 0.0, 24)
    assert len(final0) == 0 and len(dev0) == 1000


def test_final_start_after_the_data_or_leaving_too_few_development_rows_is_a_config_error():
    idx = hourly(1000)
    with pytest.raises(ConfigError, match="empty final period") as err:
        final_split(idx, 0.15, 24, "2024-02-12", where="panel.final_start")
    assert "panel.final_start" in str(err.value)
    # 2024-01-02 00:00 is bar 24: no row's label ends by then (bar 0's ends at 24: 1 row)
    with pytest.raises(ConfigError, match="1 development rows"):
        final_split(idx, 0.15, 24, "2024-01-02", min_dev=240)
    dev, _ = final_split(idx, 0.15, 24, "2024-01-12", min_dev=240)  # bar 264: 241 dev rows
    assert len(dev) == 241


def test_holdout_exclusion_purges_h_bars_before_and_embargoes_h_bars_after():
    idx = hourly(1000)
    period = SimpleNamespace(start=pd.Timestamp("2024-01-11", tz="UTC"),  # bar 240
                             end=pd.Timestamp("2024-01-16", tz="UTC"))    # bar 360, exclusive
    held = holdout_exclusion(idx, [period], 24, HOUR)
    assert np.flatnonzero(held).tolist() == list(range(240 - 23, 360 + 24))
    assert not held[216]  # its label ends at bar 240: allowed, as before a test window
    inside = in_period(idx, period)
    assert np.flatnonzero(inside).tolist() == list(range(240, 360))
