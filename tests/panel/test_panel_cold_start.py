"""Cold start: a perp listed 20 days ago gets a feature table (long windows NaN, never 0), its
values at t do not depend on later bars, and it is served the panel forecast alone."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.errors import ConfigError
from cascade_ml.features.build import build_features
from cascade_ml.features.config import FeatureConfig
from cascade_ml.labels.config import LabelConfig
from cascade_ml.panel.dataset import build_symbol, stack
from cascade_ml.panel.evaluate import time_folds
from cascade_ml.panel.fold import run_fold
from cascade_ml.panel.report import score_panel

NEW = "NEWCOIN"
FIRST = pd.Timestamp("2026-04-10", tz="UTC")
DAYS = 20
HOUR = pd.Timedelta("1h")


@pytest.fixture(scope="module")
def listing_store(panel_store, tmp_path_factory) -> MarketStore:
    """The panel store plus a perp with 20 days of bars (NEAR's, under a new name)."""
    root = tmp_path_factory.mktemp("listing") / "store"
    shutil.copytree(panel_store.root, root)
    store = MarketStore(root)
    bars = store.read("ohlcv", "NEAR", venue="binance", interval="1h")
    bars = bars[(bars.index >= FIRST) & (bars.index < FIRST + pd.Timedelta(days=DAYS))]
    assert len(bars) == DAYS * 24
    store.write(PartitionKey("ohlcv", "binance", NEW, "1h"), bars)
    return store


@pytest.fixture(scope="module")
def listing_features(listing_store) -> pd.DataFrame:
    return build_features(listing_store, NEW, TaskConfig(symbols=[NEW]), FeatureConfig(),
                          short_history=True)


def test_short_history_is_refused_unless_asked(listing_store, listing_features):
    with pytest.raises(ConfigError, match="longer than the 480 bars"):
        build_features(listing_store, NEW, TaskConfig(symbols=[NEW]), FeatureConfig())
    feats = listing_features
    assert len(feats) == DAYS * 24 and feats.index[0] == FIRST
    # windows longer than the history are NaN everywhere, never 0
    for col in ("rv_720h", "log_rv_720h"):
        assert feats[col].isna().all(), col
    # shorter windows are NaN until their bars exist, then filled (and positive)
    for col, window in (("rv_24h", 24), ("rv_168h", 168)):
        assert feats[col].iloc[:window].isna().all(), col
        assert (feats[col].iloc[window:] > 0).all(), col
    # a half-filled long window reports once half its bars exist, like any series' start
    assert feats["corr_btc_720h"].iloc[:359].isna().all()
    assert feats["corr_btc_720h"].iloc[-24:].notna().all()


def test_short_history_features_are_point_in_time(listing_store, listing_features):
    full = listing_features
    for days in (3, 12):
        cut = FIRST + pd.Timedelta(days=days)
        early = build_features(listing_store, NEW, TaskConfig(symbols=[NEW]), FeatureConfig(),
                               end=cut, short_history=True)
        pd.testing.assert_frame_equal(early, full[full.index <= cut])


def test_new_listing_is_served_the_panel(listing_store, small_panel, panel_cfg):
    task = TaskConfig(symbols=[NEW])
    rows = build_symbol(NEW, str(listing_store.root), task, FeatureConfig(), LabelConfig(),
                        panel_cfg, ["binance"], write=False)
    assert rows["age_days"].max() < DAYS and rows["lvl"].iloc[24:].notna().all()
    assert rows["m"].isna().all() and rows["d"].iloc[24:].notna().all()
    frames = [g.drop(columns=[c for c in g.columns if c.startswith("mkt_")])
              for _, g in small_panel.frame.groupby("symbol", sort=False)]
    panel = stack([*frames, rows], panel_cfg, 24)
    final = time_folds(panel, panel_cfg)[-1]
    assert final.test_start < FIRST
    out, _ = run_fold(final, panel.frame, panel.inputs, panel_cfg, 24, bar=HOUR)
    new = out[out["symbol"] == NEW]
    assert len(new) > 14 * 24
    assert np.isfinite(new["var_forecast"]).all() and new["var_har"].isna().all()
    np.testing.assert_allclose(new["var_forecast"], new["var_panel"], rtol=1e-12)
    # a warm symbol in the same window is served a blend, not the panel alone
    near = out[out["symbol"] == "NEAR"]
    assert not np.allclose(near["var_forecast"], near["var_panel"])
    doc = score_panel(out, panel.frame, panel_cfg, 24)
    assert doc["per_symbol"][NEW]["final"]["cold_start"]["rows"] == len(new)
