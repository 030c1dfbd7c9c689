"""Train runs really land in MLflow on SQLite; registry, pyfunc, promotion rule, export, CLI.

Two train runs are fitted once per module into a template folder; every test then works on its
own copy of the MLflow database and models folder (``world``), so a test that moves the
champion alias cannot change what another test sees, whatever the order.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import near_store
from mlflow import MlflowClient
from numpy.testing import assert_allclose

from cascade_ml.contracts.columns import CASCADE_PROB, VAR_FORECAST, VOL_FORECAST, quantile_key
from cascade_ml.data.store import MarketStore
from cascade_ml.forecasting.pyfunc import log_forecast_model
from cascade_ml.models import tracking
from cascade_ml.models.bundle import load_bundle
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.train import TrainReport, train_symbol
from cascade_ml.tracking import TrackingConfig, connect

FAST = {"n_folds": 2, "lgbm": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 20},
        "cascade_lgbm": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 50},
        "quantiles": [0.9], "garch_window": 500, "num_threads": 1, "shap_sample": 40}
NAME = tracking.model_name("NEAR", 24)
COLUMNS = [VAR_FORECAST, VOL_FORECAST, quantile_key(0.9), CASCADE_PROB]


@dataclass
class World:
    """One test's MLflow database and models folder (artifacts are shared, read-only)."""

    root: Path
    store: MarketStore
    cfg: ModelConfig
    tracking: TrackingConfig
    first: TrainReport
    second: TrainReport

    @property
    def client(self) -> MlflowClient:
        return connect(self.tracking, self.cfg.experiment)[0]

    def feature_rows(self, index) -> pd.DataFrame:
        return self.store.read_table("features/symbol=NEAR/features.parquet").loc[index]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> World:
    """Run 1 (forced champion) and run 2 (same data and seed: must not replace it)."""
    root = tmp_path_factory.mktemp("mlworld")
    store = near_store(root, 2600)
    track = TrackingConfig(uri=f"sqlite:///{root}/mlflow/mlflow.db",
                           artifact_root=root / "mlflow" / "artifacts")
    cfg = ModelConfig(**FAST, models_dir=root / "models", reports_dir=root / "reports",
                      optuna_storage=f"sqlite:///{root}/optuna.db")
    first = train_symbol(store, "NEAR", 24, cfg, track, log_model=log_forecast_model, force=True)
    second = train_symbol(store, "NEAR", 24, cfg, track, log_model=log_forecast_model,
                          plots=False)
    return World(root, store, cfg, track, first, second)


@pytest.fixture()
def world(template: World, tmp_path: Path) -> World:
    """A private copy of the template's registry state and exported bundle."""
    shutil.copy(template.root / "mlflow" / "mlflow.db", tmp_path / "mlflow.db")
    shutil.copytree(template.cfg.models_dir, tmp_path / "models")
    track = template.tracking.model_copy(update={"uri": f"sqlite:///{tmp_path}/mlflow.db"})
    cfg = template.cfg.model_copy(update={"models_dir": tmp_path / "models"})
    return replace(template, root=tmp_path, cfg=cfg, tracking=track)


def test_run_params_metrics_and_artifacts_are_in_sqlite(world):
    client, first = world.client, world.first
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
    assert {"features.json", "metrics.json", "plots"} <= arts
    plots = {Path(a.path).name for a in client.list_artifacts(first.run_id, "plots")}
    assert {"reliability.png", "pr_curve.png", "shap_volatility.png",
            "qlike_by_fold.png", "forecast_vs_realized.png"} <= plots
    # artifacts (the pyfunc's bundle included) live in the configured folder, not ./mlruns
    assert list(Path(world.tracking.artifact_root).rglob("bundle.json"))
    assert not Path("mlruns").exists() or not any(Path("mlruns").rglob(first.run_id))


def test_one_registered_pyfunc_per_run_with_signature_and_example(world):
    client, first, second = world.client, world.first, world.second
    assert first.version != second.version
    v = client.get_model_version(NAME, first.version)
    assert v.run_id == first.run_id and float(v.tags["qlike"]) > 0
    assert float(v.tags["best_baseline_qlike"]) > 0
    info = mlflow.models.get_model_info(f"models:/{NAME}/{first.version}")
    assert "python_function" in info.flavors
    # the features by name, then the optional symbol column the pyfunc of every kind accepts
    assert info.signature.inputs.input_names() == [*load_bundle(
        world.cfg.models_dir / "NEAR").feature_names, "symbol"]
    assert info.signature.outputs.input_names() == COLUMNS
    assert info.saved_input_example_info is not None
    example = mlflow.models.Model.load(f"models:/{NAME}/{first.version}").load_input_example()
    assert list(example.columns) == info.signature.inputs.input_names()[:-1]
    assert len(example) == 5


def test_promotion_rule_keeps_the_champion_against_an_equal_candidate(world):
    client, first, second = world.client, world.first, world.second
    assert first.promoted and first.reason == "forced"
    # the same data and seed give the same model: not *better*, so the champion stays
    assert not second.promoted, second.reason
    champ = client.get_model_version_by_alias(NAME, "champion")
    assert str(champ.version) == first.version and champ.run_id == first.run_id


def test_champion_bundle_exported_and_oos_predictions_written(world):
    store, cfg, first, second = world.store, world.cfg, world.first, world.second
    bundle = load_bundle(cfg.models_dir / "NEAR")
    assert bundle.version == first.version and bundle.model_name == NAME
    oos = store.read_table("predictions/symbol=NEAR/h=24/oos.parquet")
    assert len(oos) == len(second.result.oos)
    final_rows = oos.index[oos["fold"] == cfg.n_folds]
    got = bundle.predict(world.feature_rows(final_rows)[bundle.feature_names].to_numpy(float))
    assert (got[VAR_FORECAST] > 0).all()
    # the bundle is the model fitted on the development span: it reproduces its final-period OOS
    for col in COLUMNS:
        assert_allclose(got[col], oos.loc[final_rows, col].to_numpy(), rtol=1e-12)


def test_champion_pyfunc_returns_the_served_forecasts(world):
    """models:/...@champion through mlflow.pyfunc == the exported bundle the server loads."""
    connect(world.tracking, world.cfg.experiment)
    served = load_bundle(world.cfg.models_dir / "NEAR")
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    oos = world.store.read_table("predictions/symbol=NEAR/h=24/oos.parquet")
    rows = world.feature_rows(oos.index[-300:])
    assert rows[served.feature_names].isna().any().any()  # missing inputs travel as NaN
    # columns picked by name: any order, extra columns ignored
    shuffled = rows[served.feature_names[::-1]].assign(unrelated=1.0)
    got = model.predict(shuffled)
    want = served.predict(rows[served.feature_names].to_numpy(float))
    assert list(got.columns) == COLUMNS and (got.index == rows.index).all()
    for col in COLUMNS:
        assert_allclose(got[col].to_numpy(), want[col], rtol=1e-12)
    assert got[CASCADE_PROB].min() >= 0 and got[CASCADE_PROB].max() <= 1
    assert (got[VAR_FORECAST] > 0).all()  # a variance, not a raw tree correction


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes) -> dict:
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def test_mlflow_models_serve_answers_with_the_served_numbers(world, tmp_path):
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # as in an activated venv: uvicorn on the PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": world.tracking.uri,
           "MLFLOW_REGISTRY_URI": world.tracking.uri, "PYTHONWARNINGS": "ignore",
           "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
    cmd = [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m",
           f"models:/{NAME}@champion", "--env-manager", "local", "-p", str(port),
           "-h", "127.0.0.1", "-w", "1"]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:  # poll until the server answers (not a timed assertion: a readiness wait)
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, "mlflow models serve never became ready"
                time.sleep(0.5)
        served = load_bundle(world.cfg.models_dir / "NEAR")
        rows = world.feature_rows(world.second.result.final_rows[-20:])[served.feature_names]
        values = rows.to_numpy(float)  # exact floats (json writes repr), NaN as null
        body = json.dumps({"dataframe_split": {"columns": list(rows.columns), "data": [
            [v if np.isfinite(v) else None for v in row] for row in values.tolist()]}})
        answer = pd.DataFrame(_post(f"http://127.0.0.1:{port}/invocations",
                                    body.encode())["predictions"])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn worker
        proc.wait(timeout=30)
        log.close()
    want = served.predict(rows.to_numpy(float))
    assert list(answer.columns) == COLUMNS and len(answer) == len(rows)
    for col in COLUMNS:
        assert_allclose(answer[col].to_numpy(float), want[col], rtol=1e-12)


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


def _pipeline(world: World, path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "store": {"root": str(world.store.root)},
        "task": {"symbols": ["NEAR"], "horizon": 24},
        "tracking": json.loads(world.tracking.model_dump_json()),
        "models": json.loads(world.cfg.model_dump_json())}))
    return path


def test_cli_promote_by_rule_and_by_force(world, tmp_path):
    pipe = _pipeline(world, tmp_path / "p.yaml")
    refused = _cli(["promote", "--symbol", "NEAR", "--version", world.second.version],
                   pipe, tmp_path)
    assert refused.returncode == 2 and "not promoted" in refused.stderr
    forced = _cli(["promote", "--symbol", "NEAR", "--version", world.second.version, "--force"],
                  pipe, tmp_path)
    assert forced.returncode == 0, forced.stderr
    champ = world.client.get_model_version_by_alias(NAME, "champion")
    assert champ.run_id == world.second.run_id and str(champ.version) == world.second.version
    assert load_bundle(world.cfg.models_dir / "NEAR").version == world.second.version


def test_cli_evaluate_logs_a_run_of_its_own(world, tmp_path):
    pipe = _pipeline(world, tmp_path / "p.yaml")
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
        world.second.result.metrics["walk_forward"]["volatility"]["model"]["qlike"])
    assert (tmp_path / "rep" / "reliability.png").exists()
    client = world.client
    ev_run = client.get_run(data["mlflow_run_id"])
    assert ev_run.info.run_name == "evaluate-NEAR-h24"
    assert "wf.volatility.baselines.har.qlike" in ev_run.data.metrics
    assert "reliability.png" in {Path(a.path).name for a in client.list_artifacts(
        ev_run.info.run_id, "plots")}
    # an evaluation registers nothing: the registry still holds the two train versions
    assert len(client.search_model_versions(f"name='{NAME}'")) == 2
    missing = _cli(["evaluate", "--symbol", "DOGE", "--json", str(out)], pipe, tmp_path)
    assert missing.returncode == 2 and "DOGE" in missing.stderr
