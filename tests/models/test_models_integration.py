"""End to end on the real sample: ingest -> features -> labels -> train step -> bundle."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cascade_ml.config import PipelineConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.features.build import build_and_store
from cascade_ml.labels.build import build_and_store_labels
from cascade_ml.models.bundle import load_bundle
from cascade_ml.models.train import promote, resolve_config, run_step


@pytest.fixture(scope="module")
def pipeline(sample_store, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    shutil.copytree(sample_store.root, root / "store")
    config = PipelineConfig.model_validate({
        "store": {"root": str(root / "store")},
        "models": {"n_folds": 3, "lgbm": {"n_estimators": 60},
                   "cascade_lgbm": {"n_estimators": 60}, "garch_window": 1000,
                   "quantiles": [0.9], "shap_sample": 50,
                   "mlflow_tracking_uri": f"sqlite:///{root}/mlflow.db",
                   "mlflow_artifact_root": str(root / "artifacts"),
                   "models_dir": str(root / "models"),
                   "optuna_storage": f"sqlite:///{root}/optuna.db"}})
    store = MarketStore(config.store.root)
    # ~9 months of features keep the test quick; labels cover the whole history
    build_and_store(store, "NEAR", config, start="2024-06-01", end="2025-03-01")
    build_and_store_labels(store, "NEAR", config)
    return config, store


def test_train_step_on_the_layers_real_outputs(pipeline, capsys):
    config, store = pipeline
    run_step(config)
    out = capsys.readouterr().out
    assert "walk-forward" in out and "har" in out and "final period" in out
    cfg = resolve_config(config)
    assert cfg.horizon == config.labels.horizon
    oos = store.read_table(f"predictions/symbol=NEAR/h={cfg.horizon}/oos.parquet")
    for col in ("fold", "var_forecast", "vol_forecast", "var_q90", "cascade_prob", "var_ewma",
                "var_har", "var_garch", "var_naive", "prob_logistic", "prob_rules"):
        assert col in oos.columns
    assert sorted(oos["fold"].unique()) == [0, 1, 2, 3]
    labels = store.read_table(f"labels/symbol=NEAR/h={cfg.horizon}/labels.parquet")
    assert labels.loc[oos.index, "fwd_rv"].notna().all()

    ok, reason, path = promote("NEAR", cfg, force=True)
    assert ok and path == cfg.models_dir / "NEAR"
    bundle = load_bundle(path)
    features = store.read_table("features/symbol=NEAR/features.parquet")
    bundle.validate_features(list(features.columns))  # serving passes the table's columns
    pred = bundle.predict(features.iloc[-5:].to_numpy(float))
    assert np.isfinite(pred["var_forecast"]).all() and (pred["var_forecast"] > 0).all()
    assert ((pred["cascade_prob"] >= 0) & (pred["cascade_prob"] <= 1)).all()
    assert bundle.horizon == cfg.horizon and bundle.symbol == "NEAR"
