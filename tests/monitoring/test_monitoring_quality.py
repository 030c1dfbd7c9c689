"""Rolling QLIKE vs HAR and calibration: by hand, and only on outcomes known by ``now``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.contracts.columns import CASCADE, CASCADE_PROB, FWD_RV, VAR_FORECAST
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.quality import (
    HAR_FORECAST,
    calibration_table,
    expected_calibration_error,
    forecast_quality,
    label_known_at,
    qlike_summary,
    rolling_qlike,
)

H = 24
BAR = pd.Timedelta("1h")
IDX = pd.date_range("2025-01-01", periods=600, freq="1h", tz="UTC", name="timestamp")


def _frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    truth = np.exp(rng.normal(-6, 0.5, len(IDX)))
    rv = truth * rng.chisquare(5, len(IDX)) / 5  # a noisy proxy of the true variance
    fc = pd.DataFrame({VAR_FORECAST: truth, HAR_FORECAST: truth * 1.6}, index=IDX)
    prob = rng.uniform(0, 0.5, len(IDX))
    fc[CASCADE_PROB] = prob
    labels = pd.DataFrame({FWD_RV: rv, CASCADE: (rng.uniform(size=len(IDX)) < prob) * 1.0},
                          index=IDX)
    return fc, labels


def test_label_known_at_the_close_of_bar_t_plus_h():
    assert label_known_at(IDX[:1], H, BAR)[0] == IDX[0] + 25 * BAR


def test_rolling_qlike_uses_only_realised_rows():
    fc, labels = _frames()
    now = IDX[400] + 25 * BAR  # row 400's window has just closed
    table = rolling_qlike(fc, labels, now=now, horizon=H, window=100)
    assert table.index[-1] == IDX[400]
    # what happens after ``now`` cannot change the answer
    tampered = labels.copy()
    tampered.iloc[401:, 0] = 1e9
    again = rolling_qlike(fc, tampered, now=now, horizon=H, window=100)
    pd.testing.assert_frame_equal(table, again)
    # by hand: the last 100 realised rows
    rows = IDX[301:401]
    def qlike(rv: pd.Series, f: pd.Series) -> float:  # RV/F - log(RV/F) - 1 (Patton 2011)
        x = (rv / f).to_numpy()
        return float(np.mean(x - np.log(x) - 1.0))

    model = qlike(labels.loc[rows, FWD_RV], fc.loc[rows, VAR_FORECAST])
    har = qlike(labels.loc[rows, FWD_RV], fc.loc[rows, HAR_FORECAST])
    assert table["qlike_model"].iloc[-1] == pytest.approx(model)
    assert table["ratio"].iloc[-1] == pytest.approx(model / har)
    assert table["ratio"].iloc[-1] < 1  # the unbiased forecast beats the inflated one
    summary = qlike_summary(table, 100)
    assert summary.rows == 100 and summary.ratio == pytest.approx(model / har)
    assert summary.last_realised == IDX[400]


def test_rolling_qlike_skips_rows_missing_either_forecast():
    fc, labels = _frames()
    fc.iloc[10:20, fc.columns.get_loc(HAR_FORECAST)] = np.nan
    labels.iloc[30:35, 0] = np.nan
    table = rolling_qlike(fc, labels, now=IDX[-1] + 25 * BAR, horizon=H, window=50)
    assert len(table) == len(IDX) - 15
    same = rolling_qlike(fc.assign(**{HAR_FORECAST: fc[VAR_FORECAST]}), labels,
                         now=IDX[-1] + 25 * BAR, horizon=H, window=50)
    assert np.allclose(same["ratio"].dropna(), 1.0)


def test_calibration_table_by_hand_and_point_in_time():
    idx = IDX[:8]
    prob = pd.Series([0.1, 0.1, 0.1, 0.1, 0.6, 0.6, 0.6, 0.6], index=idx)
    outcome = pd.Series([0, 0, 0, 1, 1, 1, 0, 1], index=idx, dtype=float)
    now = idx[-1] + 25 * BAR
    table = calibration_table(prob, outcome, now=now, horizon=H, bins=2, strategy="uniform")
    assert table["rows"].tolist() == [4, 4]
    assert table["mean_prob"].tolist() == pytest.approx([0.1, 0.6])
    assert table["event_rate"].tolist() == pytest.approx([0.25, 0.75])
    assert expected_calibration_error(table) == pytest.approx(0.15)
    # one bar earlier the last row's outcome is not known yet
    early = calibration_table(prob, outcome, now=now - BAR, horizon=H, bins=2,
                              strategy="uniform")
    assert early["rows"].tolist() == [4, 3]
    assert early["event_rate"].iloc[1] == pytest.approx(2 / 3)


def test_forecast_quality_gathers_both():
    fc, labels = _frames(1)
    now = IDX[-1] + 25 * BAR
    cfg = MonitoringConfig(qlike_window=200, calibration_window=400, calibration_bins=5)
    q = forecast_quality(fc, labels, now=now, horizon=H, bar=BAR, cfg=cfg)
    assert q.qlike is not None and q.qlike.rows == 200 and q.qlike.ratio < 1
    assert q.cascade_rows == 400 and len(q.calibration) == 5
    assert q.ece < 0.1  # outcomes drawn from the stated probabilities
    no_har = forecast_quality(fc.drop(columns=HAR_FORECAST), labels, now=now, horizon=H,
                              bar=BAR, cfg=cfg)
    assert no_har.qlike is None and no_har.calibration is not None
