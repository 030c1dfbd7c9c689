"""Universe scoring goes through the same code as per-symbol scoring: the panel bundle's
forecasts of each symbol's newest panel rows, merged into its scores table with the decision
columns, the horizon and the model version; scoring twice leaves one row per bar."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
from demo_data import last_closed_bar
from panel_data import SYMBOLS, fresh_panel, recent, universe_pipeline, write_universe_store

from cascade_ml.config import load_pipeline
from cascade_ml.contracts.columns import VAR_FORECAST, VOL_FORECAST
from cascade_ml.contracts.layout import scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.forecasting import load_forecaster
from cascade_ml.forecasting.scores import DECISION_COLUMNS
from cascade_ml.pipeline import run_pipeline


def test_universe_score_step_merges_decisions_for_every_symbol(tmp_path, small_panel,
                                                               panel_bundle_dir) -> None:
    end = last_closed_bar()
    frame = fresh_panel(recent(small_panel.frame, 300), end)
    store = write_universe_store(tmp_path / "store", frame)
    shutil.copytree(panel_bundle_dir, tmp_path / "models" / "panel")
    # the labels step (which writes the panel table) is part of this pipeline, so the score step
    # scores the stored panel without rebuilding it
    config = load_pipeline(universe_pipeline(tmp_path, steps=("labels", "score")))
    run_pipeline(config, only=["score"])
    first = {s: store.read_table(scores_path(s)) for s in SYMBOLS}
    # one bar newer: the newest bar's rows arrive, the step runs again
    later = fresh_panel(recent(small_panel.frame, 301).groupby("symbol").head(300), end)
    write_universe_store(tmp_path / "store", later.assign(
        timestamp=later["timestamp"] + pd.Timedelta("1h")))
    run_pipeline(config, only=["score"])
    for symbol in SYMBOLS:
        table = MarketStore(tmp_path / "store").read_table(scores_path(symbol))
        assert len(first[symbol]) == 12
        assert table.index.is_unique and len(table) == 13  # 12 + the one new bar, merged
        assert table.index[-1] == end + pd.Timedelta("1h")
        assert set(DECISION_COLUMNS) <= set(table.columns)
        assert not table["fail_safe"].any() and (table["leverage_cap"] > 0).all()
        assert (table["model_version"] == "p1").all()
        assert table.attrs["horizon"] == 24 and table.attrs["kind"] == "panel"
        np.testing.assert_allclose(table[VOL_FORECAST], np.sqrt(table[VAR_FORECAST]),
                                   rtol=1e-12)
    # the stored forecast is what the panel forecaster gives for that row and symbol
    forecaster = load_forecaster(config.forecasters_dir, "NEAR", config.task)
    rows = forecaster.input_rows(store, "NEAR", last=1)
    want = forecaster.predict(rows.to_numpy(float), "NEAR")[VAR_FORECAST][0]
    got = store.read_table(scores_path("NEAR"))[VAR_FORECAST].iloc[-1]
    assert got == want
