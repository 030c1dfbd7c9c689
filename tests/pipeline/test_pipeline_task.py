"""The task is one fact: a pipeline that sets only ``task.horizon: 12`` labels, trains, registers,
backtests, scores and serves 12-bar forecasts, and every output says so."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from cascade_ml.cli.main import app
from cascade_ml.contracts.layout import labels_path, predictions_path, scores_path
from cascade_ml.data.store import MarketStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))
from serving_helpers import Server, auth  # noqa: E402

PIPELINE = """
store: {{root: {root}/store}}
task: {{symbols: [NEAR], horizon: 12}}
tracking: {{uri: "sqlite:///{root}/mlflow.db", artifact_root: {root}/artifacts}}
models:
  n_folds: 2
  final_frac: 0.1
  quantiles: [0.5, 0.99]
  shap_sample: 50
  models_dir: {root}/models
  reports_dir: {root}/reports
  lgbm: {{n_estimators: 20, num_leaves: 4, min_child_samples: 200}}
  cascade_lgbm: {{n_estimators: 20, num_leaves: 4, min_child_samples: 200}}
  num_threads: 1
backtest: {{report_dir: {root}/reports/backtest, log_mlflow: false}}
"""


@pytest.fixture(scope="module")
def h12_pipeline(sample_store: MarketStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """features, labels, train, backtest and score at task.horizon 12 on the real sample."""
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("h12")
    shutil.copytree(sample_store.root, root / "store")
    pipeline = root / "h12.yaml"
    pipeline.write_text(PIPELINE.format(root=root))
    result = CliRunner().invoke(app, ["run", str(pipeline), "--steps",
                                      "features,labels,train,backtest,score"])
    assert result.exit_code == 0, result.output
    return pipeline


def test_every_output_carries_the_task_horizon(h12_pipeline: Path) -> None:
    root = h12_pipeline.parent
    store = MarketStore(root / "store")
    labels_manifest = json.loads((store.root / labels_path("NEAR", 12)).with_name(
        "manifest.json").read_text())
    assert labels_manifest["horizon"] == 12
    assert not (store.root / labels_path("NEAR", 24)).exists()
    oos = store.read_table(predictions_path("NEAR", 12))
    assert oos.attrs["horizon"] == 12 and len(oos) > 1000
    bundle = json.loads((root / "models" / "NEAR" / "bundle.json").read_text())
    assert bundle["horizon"] == 12
    backtest = json.loads((root / "reports" / "backtest" / "NEAR_backtest.json").read_text())
    records = backtest if isinstance(backtest, list) else backtest["strategies"]
    assert {r["horizon"] for r in records} == {12}
    scores = store.read_table(scores_path("NEAR"))
    assert scores.attrs["horizon"] == 12


def test_registered_model_is_named_for_the_horizon(h12_pipeline: Path) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{h12_pipeline.parent}/mlflow.db"
    names = {m.name for m in MlflowClient(uri, uri).search_registered_models()}
    assert names == {"cascade-ml-NEAR-h12"}


def test_service_serves_the_twelve_bar_model(h12_pipeline: Path) -> None:
    server = Server(h12_pipeline).start()
    try:
        models = httpx.get(f"{server.url}/v1/models", headers=auth(), timeout=5).json()
        assert [m["horizon"] for m in models["models"]] == [12]
        body = {"symbol": "NEAR", "notional": 1000.0, "mark_price": 5.0, "leverage": 3.0}
        answer = httpx.post(f"{server.url}/v1/decisions", json=body, headers=auth(), timeout=5)
        assert answer.status_code == 200, answer.text
        forecast = httpx.get(f"{server.url}/v1/forecasts/NEAR", headers=auth(), timeout=5)
        assert forecast.status_code == 200, forecast.text
    finally:
        server.stop()
    served = forecast.json()
    scores = MarketStore(h12_pipeline.parent / "store").read_table(scores_path("NEAR"))
    newest = scores.iloc[-1]
    assert served["vol_forecast"] == pytest.approx(newest["vol_forecast"], rel=1e-9)
    assert served["model_version"] == str(newest["model_version"])
