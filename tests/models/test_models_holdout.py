"""A held-out period in the per-symbol models: in no fold, tuning or final fit; scored once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.errors import ConfigError
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.evaluate import split_rows, walk_forward

HOUR = pd.Timedelta("1h")
ROLL = "var_har_roll"  # re-estimated online on closed labels (docs/panel.md), so left out


def config(ds, **extra) -> ModelConfig:
    return ModelConfig(n_folds=2, lgbm={"n_estimators": 30, "num_leaves": 7}, quantiles=[],
                       garch_window=500, num_threads=1, **extra)


def crash(ds) -> dict:
    return {"name": "crash", "start": ds.rows[1400].isoformat(),
            "end": ds.rows[1700].isoformat()}


def shifted_run(ds, cfg):
    """walk_forward with wildly wrong outcomes inside the held-out period."""
    inside = ds.rows[1400:1700]
    saved = ds.labels.copy()
    try:
        ds.labels.loc[inside, "cascade"] = 1 - ds.labels.loc[inside, "cascade"]
        ds.labels.loc[inside, "fwd_rv"] = ds.labels.loc[inside, "fwd_rv"] * 10
        return walk_forward(ds, cfg)
    finally:
        ds.labels = saved


def test_holdout_rows_and_h_bars_around_are_not_development_rows(near_small):
    ds = near_small
    dev, final = split_rows(ds, config(ds, holdout_periods=[crash(ds)]))
    assert ds.rows[1400 - 24] in dev and ds.rows[1400 - 23] not in dev  # purge: H bars before
    assert ds.rows[1700 + 23] not in dev and ds.rows[1700 + 24] in dev  # embargo: H after
    assert not dev.isin(ds.rows[1400:1700]).any()
    assert len(dev) == len(split_rows(ds, config(ds))[0]) - (300 + 23 + 24)
    assert final.equals(split_rows(ds, config(ds))[1])


def test_holdout_outcomes_reach_no_fold_and_are_scored_once(near_small):
    ds = near_small
    cfg = config(ds, holdout_periods=[crash(ds)])
    a, b = walk_forward(ds, cfg), shifted_run(ds, cfg)
    assert set(a.oos["fold"]) == {-1, 0, 1, 2}
    held = a.oos[a.oos["fold"] == -1]
    assert held.index.min() == ds.rows[1400] and held.index.max() == ds.rows[1699]
    cols = [c for c in a.oos.columns if c != ROLL]
    pd.testing.assert_frame_equal(a.oos[cols], b.oos[cols], rtol=1e-12)
    assert a.metrics["holdout"]["crash"]["rows"] == 300
    assert a.metrics["holdout"]["crash"] != b.metrics["holdout"]["crash"]  # scored on its labels
    assert a.metrics["walk_forward"]["volatility"]["model"] == \
        b.metrics["walk_forward"]["volatility"]["model"]


def test_the_same_shift_moves_forecasts_when_the_period_is_not_held_out(near_small):
    ds = near_small
    a, b = walk_forward(ds, config(ds)), shifted_run(ds, config(ds))
    later = a.oos.index > ds.rows[1750]
    assert not np.allclose(a.oos.loc[later, "var_forecast"], b.oos.loc[later, "var_forecast"])


def test_holdout_without_rows_before_it_is_a_config_error(near_small):
    ds = near_small
    early = {"name": "early", "start": ds.rows[10].isoformat(), "end": ds.rows[300].isoformat()}
    with pytest.raises(ConfigError, match="models.holdout_periods"):
        walk_forward(ds, config(ds, holdout_periods=[early]))
