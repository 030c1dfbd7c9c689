"""The depth family: what the columns mean, NaN without data, and no look-ahead."""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feature_factories import extreme_future, make_depth, make_inputs

from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore
from cascade_ml.features import depth
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import load_inputs
from cascade_ml.features.pit import find_lookahead
from cascade_ml.features.registry import compute_families, feature_specs

CFG = FeatureConfig(depth_norm_window=48)
INPUTS = make_inputs(n=600, seed=11)
RATIO_1, RATIO_5, IMB = "depth_1pct_ratio_48h", "depth_5pct_ratio_48h", "depth_1pct_imbalance"


def test_columns_are_registered_and_described() -> None:
    names = [s.name for s in feature_specs(CFG, ["BTC", "ETH"]) if s.family == "depth"]
    assert names == [RATIO_1, RATIO_5, IMB]
    table = compute_families(INPUTS, CFG)
    assert table[names].notna().mean().min() > 0.8


def test_values_follow_their_definitions() -> None:
    out = depth.compute(INPUTS, CFG)
    snaps = INPUTS.depth["NEAR"][0].frame
    t = INPUTS.bars.index[300]
    close = t + pd.Timedelta("1h")
    window = snaps[(snaps.index > close - pd.Timedelta("1h")) & (snaps.index <= close)]
    assert len(window) == 4  # 15-minute snapshots in the hour before the close
    bid, ask = window["bid_notional_1pct"].mean(), window["ask_notional_1pct"].mean()
    assert out.loc[t, IMB] == pytest.approx((bid - ask) / (bid + ask))

    def total_at(ts: pd.Timestamp) -> float:
        end = ts + pd.Timedelta("1h")
        w = snaps[(snaps.index > end - pd.Timedelta("1h")) & (snaps.index <= end)]
        return w["bid_notional_1pct"].mean() + w["ask_notional_1pct"].mean()

    previous = [total_at(INPUTS.bars.index[i]) for i in range(300 - 48, 300)]
    assert out.loc[t, RATIO_1] == pytest.approx(np.log(total_at(t)) - np.log(np.median(previous)))
    assert out[IMB].dropna().between(-1, 1).all()


def test_no_depth_data_gives_nan_never_zero() -> None:
    bare = replace(INPUTS, depth={})
    out = depth.compute(bare, CFG)
    assert list(out.columns) == [RATIO_1, RATIO_5, IMB] and out.isna().all(axis=None)
    other = replace(INPUTS, depth={"BTC": INPUTS.depth["NEAR"]})  # another market's depth only
    assert depth.compute(other, CFG).isna().all(axis=None)


def test_stale_snapshots_become_missing() -> None:
    series = INPUTS.depth["NEAR"][0]
    stop = INPUTS.bars.index[400]
    last_seen = stop + pd.Timedelta("1h")  # the close of row `stop`: its last snapshot
    cut = replace(INPUTS, depth={"NEAR": [replace(series, frame=series.frame[
        series.frame.index <= last_seen])]})
    out, full = depth.compute(cut, CFG), depth.compute(INPUTS, CFG)
    assert out.loc[stop, IMB] == pytest.approx(full.loc[stop, IMB])
    for hours in (1, 2):  # still within the 2h max age at those closes
        assert out.loc[stop + pd.Timedelta(hours=hours), IMB] == pytest.approx(
            full.loc[stop, IMB])
    later = out.index >= stop + pd.Timedelta("3h")
    assert later.sum() > 100 and out.loc[later].isna().all(axis=None)
    assert full.loc[later].notna().all(axis=None)


def test_finer_partition_wins_row_by_row() -> None:
    hourly = make_depth(INPUTS.bars.index[0], INPUTS.bars.index[-1], seed=99, freq="1h",
                        interval="1h")
    fine = INPUTS.depth["NEAR"][0]
    gap = INPUTS.bars.index[200]
    holed = replace(fine, frame=fine.frame[(fine.frame.index < gap)
                                           | (fine.frame.index > gap + pd.Timedelta("6h"))])
    both = depth.compute(replace(INPUTS, depth={"NEAR": [hourly, holed]}), CFG)
    only_fine = depth.compute(replace(INPUTS, depth={"NEAR": [holed]}), CFG)
    only_hourly = depth.compute(replace(INPUTS, depth={"NEAR": [hourly]}), CFG)
    t_fine, t_gap = INPUTS.bars.index[150], gap + pd.Timedelta("4h")
    assert both.loc[t_fine, IMB] == pytest.approx(only_fine.loc[t_fine, IMB])
    assert np.isnan(only_fine.loc[t_gap, IMB])
    assert both.loc[t_gap, IMB] == pytest.approx(only_hourly.loc[t_gap, IMB])


@pytest.mark.parametrize("at", [250, 377, 455])
def test_depth_is_point_in_time(at: int) -> None:
    cutoff = INPUTS.bars.index[at]

    def compute(inputs):  # noqa: ANN001, ANN202
        return depth.compute(inputs, CFG)

    future = extreme_future(INPUTS, cutoff)
    assert find_lookahead(compute, INPUTS, future, cutoff) == {}
    full, calm = compute(future), compute(INPUTS)
    later = full.index > cutoff + pd.Timedelta("2h")
    assert (full.loc[later, IMB] < calm.loc[later, IMB]).mean() > 0.9  # the future is visible
    past = full.index < cutoff  # row `cutoff` may see snapshots up to its close
    pd.testing.assert_frame_equal(full.loc[past], calm.loc[past])


def test_from_a_binance_vision_archive_through_the_store(sample_store: MarketStore,
                                                         tmp_path: Path) -> None:
    """bookDepth archive -> ingest -> store -> load_inputs -> depth features on the NEAR bars."""
    start = pd.Timestamp("2025-03-01", tz="UTC")
    rng = np.random.default_rng(5)
    lines = ["timestamp,percentage,depth,notional"]
    for minute in range(0, 3 * 24 * 60, 5):  # three days of 5-minute snapshots
        stamp = (start + pd.Timedelta(minutes=minute, seconds=7)).strftime("%Y-%m-%d %H:%M:%S")
        base = 1e5 * np.exp(rng.normal(0, 0.1))
        for pct in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5):
            side = 1.3 if pct < 0 else 1.0
            lines.append(f"{stamp},{pct},{abs(pct) * base / 2:.3f},{abs(pct) * base * side:.2f}")
    folder = tmp_path / "vision"
    folder.mkdir()
    with zipfile.ZipFile(folder / "NEARUSDT-bookDepth-2025-03-01.zip", "w") as handle:
        handle.writestr("NEARUSDT-bookDepth-2025-03-01.csv", "\n".join(lines) + "\n")
    root = tmp_path / "store"
    shutil.copytree(sample_store.root, root)
    store = MarketStore(root)
    assert not ingest_path(store, folder).failed
    inputs = load_inputs(store, "NEAR", [], venue="binance", interval="1h", funding_venues=[],
                         oi_venues=[], end="2025-03-03 23:00")
    assert [str(s.interval) for s in inputs.depth["NEAR"]] == ["5m"]
    assert any("depth" in str(p) for p in inputs.sources)  # part of the build manifest
    out = depth.compute(inputs, FeatureConfig(depth_norm_window=24))
    day3 = out.loc["2025-03-03"]
    assert day3["depth_1pct_imbalance"].to_numpy() == pytest.approx((1.3 - 1) / 2.3)
    assert day3["depth_1pct_ratio_24h"].notna().all()
    assert out.loc[:"2025-02-28"].isna().all(axis=None)  # before the archive: missing, not 0

