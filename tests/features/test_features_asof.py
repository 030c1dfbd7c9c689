"""The exact as-of rule: a record is usable on row t iff available_at <= t + bar interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
from feature_factories import make_bars, make_events
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade_ml.features import funding, liquidations, open_interest, sentiment
from cascade_ml.features.asof import asof_join, coalesce_rows
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import EventSeries, FeatureInputs

H = pd.Timedelta("1h")
DAY0 = pd.Timestamp("2024-03-01", tz="UTC")


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def one_event(when: str, **values: float) -> pd.DataFrame:
    return make_events(pd.DatetimeIndex([ts(when)]), {k: np.array([v]) for k, v in values.items()})


def test_funding_settled_at_08_is_on_the_07_row_not_the_06_row():
    index = pd.date_range(ts("2024-03-01 04:00"), periods=6, freq="1h")
    joined = asof_join(index, one_event("2024-03-01 08:00", rate=0.001), bar_interval=H)
    assert np.isnan(joined.loc[ts("2024-03-01 06:00"), "rate"])
    assert joined.loc[ts("2024-03-01 07:00"), "rate"] == 0.001
    assert joined.loc[ts("2024-03-01 09:00"), "rate"] == 0.001
    assert joined.loc[ts("2024-03-01 07:00"), "available_at"] == ts("2024-03-01 08:00")


def test_publication_lag_delays_visibility_by_exactly_the_lag():
    index = pd.date_range(ts("2024-03-01 06:00"), periods=6, freq="1h")
    joined = asof_join(index, one_event("2024-03-01 08:00", rate=0.001), bar_interval=H,
                       delay=pd.Timedelta("2h"))
    assert joined["rate"].notna().tolist() == [False, False, False, True, True, True]
    assert joined["rate"].first_valid_index() == ts("2024-03-01 09:00")  # closes at 10:00


def test_max_age_makes_stale_records_missing_not_carried_forward():
    index = pd.date_range(ts("2024-03-01 07:00"), periods=30, freq="1h")
    joined = asof_join(index, one_event("2024-03-01 08:00", rate=0.001), bar_interval=H,
                       max_age=pd.Timedelta("24h"))
    seen = joined["rate"].notna()
    assert seen.loc[ts("2024-03-02 07:00")] and not seen.loc[ts("2024-03-02 08:00")]


def _inputs_with(index_hours: int, **series: dict) -> FeatureInputs:
    bars = make_bars(index_hours, 1, start=DAY0 - pd.Timedelta("2D"))
    return FeatureInputs("NEAR", bars, H, {}, **series)


def test_daily_fear_greed_for_day_d_appears_only_at_d_plus_1_plus_lag():
    day = DAY0
    fng = EventSeries(make_events(pd.DatetimeIndex([day]), {"score": np.array([80.0])}), "1d")
    inputs = _inputs_with(24 * 5, sentiment={"MARKET": fng})
    for lag, first_row in (("0h", "2024-03-01 23:00"), ("3h", "2024-03-02 02:00")):
        cfg = FeatureConfig(sentiment_lag=lag)
        out = sentiment.compute(inputs, cfg)["fng_score"]
        assert out.first_valid_index() == ts(first_row), lag
        assert (out.dropna() == 80.0).all()
    # value for day D never reaches a row whose close is before D+1 00:00
    out = sentiment.compute(inputs, FeatureConfig())["fng_score"]
    assert out[out.index + H < day + pd.Timedelta("1D")].isna().all()


def test_daily_liquidations_visible_after_the_day_ends():
    days = pd.date_range(DAY0 - pd.Timedelta("40D"), DAY0, freq="1D")
    notional = np.full(len(days), 1e6)
    notional[-1] = 1e9  # a huge day D
    liq = EventSeries(make_events(days, {"total_notional": notional}), "1d")
    bars = make_bars(24 * 45, 2, start=DAY0 - pd.Timedelta("42D"))
    inputs = FeatureInputs("NEAR", bars, H, {}, liquidations={"NEAR": liq})
    ratio = liquidations.compute(inputs, FeatureConfig())["liq_ratio_30d"]
    assert ratio.loc[ts("2024-03-01 22:00")] == 1.0  # still the previous (normal) day
    assert ratio.loc[ts("2024-03-01 23:00")] == 1000.0  # closes at D+1 00:00


def test_funding_feature_uses_the_as_of_rule_end_to_end():
    settle = pd.date_range(DAY0 - pd.Timedelta("5D"), DAY0 + pd.Timedelta("1D"), freq="8h")
    rates = np.arange(len(settle), dtype=float) * 1e-5
    series = EventSeries(make_events(settle, {"funding_rate": rates}), "8h")
    inputs = _inputs_with(24 * 4, funding={"binance": {"NEAR": series}})
    out = funding.compute(inputs, FeatureConfig())
    at = settle.get_loc(ts("2024-03-01 08:00"))
    assert out.loc[ts("2024-03-01 06:00"), "funding_8h"] == rates[at - 1]
    assert out.loc[ts("2024-03-01 07:00"), "funding_8h"] == rates[at]
    assert out.loc[ts("2024-03-01 07:00"), "funding_hours_since"] == 0.0
    assert out.loc[ts("2024-03-01 06:00"), "funding_hours_since"] == 7.0


def test_open_interest_snapshot_and_period_end_rules():
    snaps = pd.date_range(DAY0 - pd.Timedelta("2D"), DAY0 + pd.Timedelta("2D"), freq="1D")
    oi = EventSeries(make_events(snaps, {"open_interest_value": np.arange(1.0, len(snaps) + 1)}),
                     "1d")
    inputs = _inputs_with(24 * 4, open_interest={"binance": {"NEAR": [oi]}})
    close = inputs.bars["close"]
    snap = open_interest.oi_value(inputs, [oi], close, FeatureConfig())
    assert snap.loc[ts("2024-02-29 23:00")] == 3.0  # snapshot at 03-01 00:00 = that row's close
    assert snap.loc[ts("2024-02-29 22:00")] == 2.0
    cfg = FeatureConfig(oi_period_end_intervals=["1d"])
    period = open_interest.oi_value(inputs, [oi], close, cfg)
    assert period.loc[ts("2024-02-29 23:00")] == 2.0  # stamped at day start: known a day later


def test_coalesce_rows_takes_whole_rows_by_priority():
    idx = pd.RangeIndex(4)
    first = pd.DataFrame({"k": [1.0, np.nan, 3.0, np.nan], "x": [10.0, 20.0, np.nan, 40.0]}, idx)
    second = pd.DataFrame({"k": [5.0, 6.0, np.nan, np.nan], "x": [50.0, 60.0, 70.0, 80.0]}, idx)
    out = coalesce_rows([first, second], "k")
    assert out["k"].tolist()[:3] == [1.0, 6.0, 3.0] and np.isnan(out["k"].iloc[3])
    # row 2 comes wholly from the first frame (its x is NaN there), row 3 from neither
    assert out["x"].iloc[1] == 60.0 and np.isnan(out["x"].iloc[2]) and out["x"].iloc[3] == 40.0


@settings(max_examples=60, deadline=None)
@given(offsets=st.lists(st.integers(0, 60 * 48), min_size=0, max_size=30),
       lag_min=st.integers(0, 600), max_age_h=st.one_of(st.none(), st.integers(1, 30)))
def test_asof_join_matches_a_brute_force_reading_of_the_rule(offsets, lag_min, max_age_h):
    index = pd.date_range(ts("2024-03-01"), periods=48, freq="1h")
    stamps = pd.DatetimeIndex(sorted(ts("2024-03-01") + pd.Timedelta(minutes=m) for m in offsets))
    events = pd.DataFrame({"v": np.arange(len(stamps), dtype=float)}, index=stamps)
    lag = pd.Timedelta(minutes=lag_min)
    max_age = None if max_age_h is None else pd.Timedelta(hours=max_age_h)
    got = asof_join(index, events, bar_interval=H, delay=lag, max_age=max_age)["v"]
    for t in index:
        usable = [i for i, s in enumerate(stamps) if s + lag <= t + H]
        want = float(usable[-1]) if usable else np.nan
        if usable and max_age is not None and t + H - (stamps[usable[-1]] + lag) > max_age:
            want = np.nan
        assert (np.isnan(want) and np.isnan(got[t])) or got[t] == want
