"""The universe train step registers the panel in MLflow (real SQLite) like the per-symbol
models: ``cascade-ml-panel-h24`` aliased champion, its bundle exported with the registered
version, and ``models:/cascade-ml-panel-h24@champion`` through ``mlflow.pyfunc`` returns exactly
the forecasts the service serves for the same rows and symbols."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from cascade_ml.compute import Engine
from cascade_ml.contracts.columns import FORECASTS
from cascade_ml.contracts.layout import panel_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.forecasting import load_forecaster
from cascade_ml.forecasting.registry import train_and_register_panel
from cascade_ml.panel.dataset import SYMBOL, TIMESTAMP
from cascade_ml.tracking import TrackingConfig, connect

NAME = "cascade-ml-panel-h24"


def test_panel_is_registered_and_its_pyfunc_returns_the_served_forecasts(tmp_path, small_panel,
                                                                         panel_cfg):
    store = MarketStore(tmp_path / "store")
    frame = small_panel.frame[small_panel.frame[TIMESTAMP]
                              >= pd.Timestamp("2025-10-15", tz="UTC")]  # one quick fold
    store.write_table(panel_path(24), frame, {"kind": "panel", "horizon": 24})
    cfg = panel_cfg.model_copy(update={"n_folds": 1, "bundle_dir": tmp_path / "models" / "panel",
                                       "report_dir": tmp_path / "reports"})
    task = TaskConfig(symbols=list(small_panel.symbols))
    track = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db",
                           artifact_root=str(tmp_path / "artifacts"))
    doc = train_and_register_panel(Engine(), store, task, cfg, track, "cascade-ml-test")
    assert doc["registered"] == {"name": NAME, "version": "1", "alias": "champion"}

    client, _ = connect(track, "cascade-ml-test")
    champion = client.get_model_version_by_alias(NAME, "champion")
    assert str(champion.version) == "1"
    meta = json.loads((cfg.bundle_dir / "bundle.json").read_text())
    assert meta["version"] == "1" and meta["model_name"] == NAME and meta["interval"] == "1h"

    info = mlflow.models.get_model_info(f"models:/{NAME}/1")
    assert info.signature.inputs.input_names() == [*meta["feature_names"], "symbol"]
    assert info.saved_input_example_info is not None
    served = load_forecaster(cfg.bundle_dir, "NEAR", task)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    parts = [store.read_table(panel_path(24)).groupby(SYMBOL).tail(50)]
    rows = pd.concat(parts, ignore_index=True)
    rows = rows.sample(frac=1.0, random_state=0)  # symbols interleaved
    got = model.predict(rows[[SYMBOL, *served.feature_names[::-1]]])  # columns by name
    assert list(got.index) == list(rows.index)
    assert set(FORECASTS) <= set(got.columns)
    for symbol, part in rows.groupby(SYMBOL):
        want = served.predict(part[served.feature_names].to_numpy(float), str(symbol))
        for key, values in want.items():
            np.testing.assert_array_equal(got.loc[part.index, key].to_numpy(), values)
    # without a symbol column the rows are forecast by the panel alone (a new listing)
    alone = model.predict(rows.drop(columns=[SYMBOL]).head(20))
    np.testing.assert_array_equal(
        alone["var_forecast"].to_numpy(),
        served.predict(rows[served.feature_names].head(20).to_numpy(float),
                       "NEWCOIN")["var_forecast"])
    with pytest.raises(Exception, match=r"missing inputs \[.d.\]"):  # MLflow checks by name
        model.predict(rows[[SYMBOL, *served.feature_names[1:]]])
