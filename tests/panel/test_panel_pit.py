"""Point-in-time: changing or appending rows after t moves no panel value at or before t,
neither a symbol's own scale-free columns nor the market state shared by every row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.contracts.task import TaskConfig
from cascade_ml.features.build import build_features
from cascade_ml.features.config import FeatureConfig
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.dataset import LABEL_KEEP, stack, symbol_panel

LABELS = {*LABEL_KEEP, "adverse", "y"}


def _feature_side(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in LABELS and frame[c].dtype.kind == "f"]


def test_symbol_panel_ignores_the_future(panel_store):
    cfg = PanelConfig()
    feats = build_features(panel_store, "NEAR", TaskConfig(), FeatureConfig())
    cut = feats.index[20_000]
    full = symbol_panel(feats, None, cfg, 24)
    future = feats.copy()
    later = future.index > cut
    future.loc[later] = future.loc[later] * 50.0  # an extreme future regime
    moved = symbol_panel(future, None, cfg, 24)
    truncated = symbol_panel(feats[feats.index <= cut], None, cfg, 24)
    cols = _feature_side(full)
    past = full.index <= cut
    pd.testing.assert_frame_equal(moved.loc[past, cols], full.loc[past, cols])
    pd.testing.assert_frame_equal(truncated[cols], full.loc[past, cols])
    # not vacuous: the future did change later values of the level-scaled columns
    assert not np.allclose(moved.loc[later, "d"], full.loc[later, "d"], equal_nan=True)


def _frames(panel):
    frame = panel.frame.drop(columns=[c for c in panel.frame.columns if c.startswith("mkt_")])
    return {s: g.reset_index(drop=True) for s, g in frame.groupby("symbol", sort=False)}


def test_market_state_ignores_future_rows_of_any_symbol(small_panel, panel_cfg):
    frames = _frames(small_panel)
    cut = pd.Timestamp("2025-06-01", tz="UTC")
    base = stack(list(frames.values()), panel_cfg, 24).frame
    # append extreme rows to one symbol and change the market leader's future
    eth = frames["ETH"]
    extra = eth.tail(48).copy()
    extra["timestamp"] = extra["timestamp"] + pd.Timedelta("60D")
    extra[["d", "w", "zret_24h", "drawdown_720h", "funding_8h"]] = [9.0, 9.0, -40.0, -0.9, 0.1]
    btc = frames["BTC"].copy()
    btc.loc[btc["timestamp"] > cut, ["d", "zret_24h"]] = [8.0, -30.0]
    changed = {**frames, "ETH": pd.concat([eth, extra], ignore_index=True), "BTC": btc}
    moved = stack(list(changed.values()), panel_cfg, 24).frame
    mkt = [c for c in base.columns if c.startswith("mkt_")]
    assert len(mkt) > 10

    def at(frame: pd.DataFrame) -> pd.DataFrame:
        rows = frame[(frame["timestamp"] <= cut) & frame["symbol"].isin(["NEAR", "SEI"])]
        return rows.set_index(["symbol", "timestamp"])[mkt].sort_index()

    pd.testing.assert_frame_equal(at(moved), at(base))
    late = lambda f: f[(f["timestamp"] > cut) & (f["symbol"] == "NEAR")]["mkt_btc_d"]  # noqa: E731
    assert not np.allclose(late(moved).to_numpy(), late(base).to_numpy(), equal_nan=True)


def test_held_out_symbols_do_not_enter_market_state(small_panel, panel_cfg):
    frames = _frames(small_panel)
    ada = frames["ADA"].copy()  # ADA is held out in panel_cfg
    ada[["d", "zret_24h", "drawdown_720h"]] = [7.0, -20.0, -0.95]
    moved = stack([*[f for s, f in frames.items() if s != "ADA"], ada], panel_cfg, 24).frame
    base = small_panel.frame
    mkt = [c for c in base.columns if c.startswith("mkt_")]
    key = ["symbol", "timestamp"]
    pd.testing.assert_frame_equal(moved.set_index(key)[mkt].sort_index(),
                                  base.set_index(key)[mkt].sort_index())


def test_threshold_known_at_t_matches_the_label(small_panel):
    frame = small_panel.frame
    known = frame["cascade_threshold"].notna()
    assert known.mean() > 0.9
    np.testing.assert_allclose(frame.loc[known, "cascade_threshold_t"],
                               frame.loc[known, "cascade_threshold"], rtol=1e-12)
    newest = frame.groupby("symbol").tail(5)  # label windows incomplete, threshold still known
    assert newest["cascade_threshold"].isna().all()
    assert newest["cascade_threshold_t"].notna().all()
