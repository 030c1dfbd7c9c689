"""Train runs really land in MLflow on SQLite; registry, promotion rule, bundle export, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import RAW, build_frames
from mlflow import MlflowClient

from cascade_ml.data.store import MarketStore
from cascade_ml.models import tracking
from cascade_ml.models.bundle import load_bundle
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.train import train_symbol

FAST = {"n_folds": 2, "lgbm": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 20},
        "cascade_lgbm": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 50},
        "quantiles": [0.9], "garch_window": 500, "num_threads": 1, "shap_sample": 40}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlworld")
    store = MarketStore(root / "store")
    features, labels = build_frames(pd.read_parquet(RAW).iloc[:2600])
    store.write_table("features/symbol=NEAR/features.parquet", features)
    store.write_table("labels/symbol=NEAR/h=24/labels.parquet", labels)
    cfg = ModelConfig(**FAST, mlflow_tracking_uri=f"sqlite:///{root}/mlflow/mlflow.db",
                      mlflow_artifact_root=root / "mlflow" / "artifacts",
                      models_dir=root / "models", optuna_storage=f"sqlite:///{root}/optuna.db")
    first = train_symbol(store, "NEAR", cfg, force=True)
    second = train_symbol(store, "NEAR", cfg)
    client = MlflowClient(cfg.mlflow_tracking_uri, cfg.mlflow_tracking_uri)
    return root, store, cfg, first, second, client


def test_run_params_metrics_and_artifacts_are_in_sqlite(world):
    root, _, cfg, first, _, client = world
    assert (root / "mlflow" / "mlflow.db").exists()
    run = client.get_run(first.run_id)
    assert run.data.params["symbol"] == "NEAR" and run.data.params["horizon"] == "24"
    assert run.data.tags["features_sha256"] and run.data.tags["train_end"]
    m = run.data.metrics
    wf = first.result.metrics["walk_forward"]["volatility"]
    assert m["wf.volatility.model.qlike"] == pytest.approx(wf["model"]["qlike"])
    for key in ("wf.volatility.baselines.har.qlike", "final.volatility.baselines.garch.qlike",
                "fold0.volatility.model.qlike", "wf.cascade.model.pr_auc",
                "final.cascade.baselines.logistic.brier"):
        assert key in m
    arts = {a.path for a in client.list_artifacts(first.run_id)}
    assert {"features.json", "metrics.json", "plots", "bundle"} <= arts
    plots = {Path(a.path).name for a in client.list_artifacts(first.run_id, "plots")}
    assert {"reliability.png", "pr_curve.png", "shap_volatility.png",
            "qlike_by_fold.png", "forecast_vs_realized.png"} <= plots
    # artifacts live in the configured local folder, not ./mlruns
    assert list((root / "mlflow" / "artifacts").rglob("bundle.json"))
    assert not Path("mlruns").exists() or not any(Path("mlruns").rglob(first.run_id))


def test_models_are_registered_with_signatures(world):
    _, _, cfg, first, _, client = world
    names = tracking.model_names("NEAR", 24)
    v = client.get_model_version(names["volatility"], first.versions["volatility"])
    assert v.run_id == first.run_id and float(v.tags["qlike"]) > 0
    c = client.get_model_version(names["cascade"], first.versions["cascade"])
    assert c.run_id == first.run_id
    import mlflow

    info = mlflow.models.get_model_info(f"models:/{names['cascade']}/{c.version}")
    assert info.signature is not None and len(info.signature.inputs.inputs) == 14


def test_promotion_rule_keeps_the_champion_against_an_equal_candidate(world):
    _, _, cfg, first, second, client = world
    assert first.promoted and first.reason == "forced"
    # the same data and seed give the same model: not *better*, so the champion stays
    assert not second.promoted, second.reason
    names = tracking.model_names("NEAR", 24)
    champ = client.get_model_version_by_alias(names["volatility"], "champion")
    assert str(champ.version) == first.versions["volatility"]
    assert client.get_model_version_by_alias(names["cascade"], "champion").run_id == first.run_id


def test_champion_bundle_exported_and_oos_predictions_written(world):
    _, store, cfg, first, second, _ = world
    bundle = load_bundle(cfg.models_dir / "NEAR")
    assert bundle.version == first.versions["volatility"]
    oos = store.read_table("predictions/symbol=NEAR/h=24/oos.parquet")
    assert len(oos) == len(second.result.oos)
    x = second.result.oos.index[:5]
    feats = store.read_table("features/symbol=NEAR/features.parquet")
    out = bundle.predict(feats.loc[x, bundle.feature_names].to_numpy(float))
    final_rows = oos.index[oos["fold"] == cfg.n_folds]
    got = bundle.predict(feats.loc[final_rows, bundle.feature_names].to_numpy(float))
    assert (out["var_forecast"] > 0).all()
    # the bundle is the model fitted on the development span: it reproduces its final-period OOS
    assert got["var_forecast"] == pytest.approx(oos.loc[final_rows, "var_forecast"].to_numpy())


@pytest.mark.parametrize(("cand", "champ", "ok"), [
    ({"qlike": 0.2, "best_baseline_qlike": 0.3}, None, True),
    ({"qlike": 0.2, "best_baseline_qlike": 0.3}, 0.25, True),
    ({"qlike": 0.2, "best_baseline_qlike": 0.3}, 0.2, False),
    ({"qlike": 0.31, "best_baseline_qlike": 0.3}, None, False),
])
def test_decide_promotion(cand, champ, ok):
    assert tracking.decide_promotion(cand, champ)[0] is ok
    assert tracking.decide_promotion(cand, champ, force=True) == (True, "forced")


def _cli(args, pipeline, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([str(Path(sys.executable).parent / "cascade-ml"), *args, "--pipeline",
                           str(pipeline)], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_cli_promote_and_evaluate(world, tmp_path):
    root, _, cfg, first, second, client = world
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({"store": {"root": str(root / "store")},
                                    "models": json.loads(cfg.model_dump_json())}))
    refused = _cli(["promote", "--symbol", "NEAR", "--version", second.versions["volatility"]],
                   pipe, tmp_path)
    assert refused.returncode == 2 and "not promoted" in refused.stderr
    forced = _cli(["promote", "--symbol", "NEAR", "--version", second.versions["volatility"],
                   "--force"], pipe, tmp_path)
    assert forced.returncode == 0, forced.stderr
    names = tracking.model_names("NEAR", 24)
    assert client.get_model_version_by_alias(names["volatility"], "champion").run_id == \
        second.run_id
    assert load_bundle(cfg.models_dir / "NEAR").version == second.versions["volatility"]
    out = tmp_path / "eval.json"
    ev = _cli(["evaluate", "--symbol", "NEAR", "--json", str(out), "--report-dir",
               str(tmp_path / "rep")], pipe, tmp_path)
    assert ev.returncode == 0, ev.stderr
    data = json.loads(out.read_text())
    assert data["symbol"] == "NEAR" and data["horizon"] == 24 and data["folds"] == 2
    assert set(data["volatility"]["baselines"]) >= {"ewma", "har", "garch", "naive"}
    assert {"qlike", "mse_log", "mz_r2"} <= set(data["volatility"]["model"])
    assert 0 <= data["volatility"]["dm_pvalue_vs_best"] <= 1
    assert {"pr_auc", "roc_auc", "brier", "bss"} <= set(data["cascade"]["model"])
    assert set(data["cascade"]["baselines"]) == {"logistic", "rules", "climatology"}
    assert data["volatility"]["model"]["qlike"] == pytest.approx(
        second.result.metrics["walk_forward"]["volatility"]["model"]["qlike"])
    assert (tmp_path / "rep" / "reliability.png").exists()
    ev_run = client.get_run(data["mlflow_run_id"])  # the evaluation is a run of its own
    assert ev_run.info.run_name == "evaluate-NEAR-h24"
    assert "wf.volatility.baselines.har.qlike" in ev_run.data.metrics
    assert "reliability.png" in {Path(a.path).name for a in client.list_artifacts(
        ev_run.info.run_id, "plots")}
    missing = _cli(["evaluate", "--symbol", "DOGE", "--json", str(out)], pipe, tmp_path)
    assert missing.returncode == 2 and "DOGE" in missing.stderr
