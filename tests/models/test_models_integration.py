"""End to end on the real sample: ingest -> features -> labels -> train step -> bundle."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cascade_ml.config import PipelineConfig
from cascade_ml.contracts.columns import CASCADE_PROB, FWD_RV, VAR_FORECAST
from cascade_ml.contracts.layout import features_path, labels_path, predictions_path
from cascade_ml.data.store import MarketStore
from cascade_ml.features.build import build_and_store
from cascade_ml.labels.build import build_and_store_labels
from cascade_ml.models.bundle import load_bundle
from cascade_ml.models.train import promote
from cascade_ml.pipeline import train_step


@pytest.fixture(scope="module")
def pipeline(sample_store, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    shutil.copytree(sample_store.root, root / "store")
    config = PipelineConfig.model_validate({
        "store": {"root": str(root / "store")},
        "tracking": {"uri": f"sqlite:///{root}/mlflow.db",
                     "artifact_root": str(root / "artifacts")},
        "models": {"n_folds": 3, "lgbm": {"n_estimators": 60},
                   "cascade_lgbm": {"n_estimators": 60}, "garch_window": 1000,
                   "quantiles": [0.9], "shap_sample": 50, "num_threads": 1,
                   "models_dir": str(root / "models"), "reports_dir": str(root / "reports"),
                   "optuna_storage": f"sqlite:///{root}/optuna.db"}})
    store = MarketStore(config.store.root)
    # ~9 months of features keep the test quick; labels cover the whole history
    build_and_store(store, "NEAR", config.task, config.features, start="2024-06-01",
                    end="2025-03-01")
    build_and_store_labels(store, "NEAR", config.task, config.labels,
                           oi_venues=config.features.oi_venues)
    return config, store


def test_train_step_on_the_layers_real_outputs(pipeline, capsys):
    config, store = pipeline
    horizon = config.task.horizon
    train_step(config)
    out = capsys.readouterr().out
    assert "walk-forward" in out and "har" in out and "final period" in out
    assert (config.models.reports_dir / "NEAR" / "evaluation.html").exists()
    oos = store.read_table(predictions_path("NEAR", horizon))
    for col in ("fold", "var_forecast", "vol_forecast", "var_q90", "cascade_prob", "var_ewma",
                "var_har", "var_garch", "var_naive", "prob_logistic", "prob_rules"):
        assert col in oos.columns
    assert sorted(oos["fold"].unique()) == [0, 1, 2, 3]
    labels = store.read_table(labels_path("NEAR", horizon))
    assert labels.loc[oos.index, FWD_RV].notna().all()

    ok, reason, path = promote("NEAR", horizon, config.models, config.tracking, force=True)
    assert ok and path == config.models.models_dir / "NEAR"
    bundle = load_bundle(path)
    features = store.read_table(features_path("NEAR"))
    bundle.validate_features(list(features.columns))  # serving passes the table's columns
    pred = bundle.predict(features.iloc[-5:].to_numpy(float))
    assert np.isfinite(pred[VAR_FORECAST]).all() and (pred[VAR_FORECAST] > 0).all()
    assert ((pred[CASCADE_PROB] >= 0) & (pred[CASCADE_PROB] <= 1)).all()
    assert bundle.horizon == horizon and bundle.symbol == "NEAR"
    # the exported champion reproduces the final-period OOS forecasts of the train run
    final = oos.index[oos["fold"] == config.models.n_folds]
    again = bundle.predict(features.loc[final, bundle.feature_names].to_numpy(float))
    np.testing.assert_allclose(again[VAR_FORECAST], oos.loc[final, VAR_FORECAST], rtol=1e-12)
    np.testing.assert_allclose(again[CASCADE_PROB], oos.loc[final, CASCADE_PROB], rtol=1e-12)
