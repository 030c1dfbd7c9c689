"""`cascade-ml backtest` end to end: a real store, real MLflow on SQLite, JSON and plots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cascade_ml.data.store import MarketStore, PartitionKey

CLI = [sys.executable, "-c", "from cascade_ml.cli.main import main; main()"]


@pytest.fixture()
def workdir(tmp_path: Path, near_ohlcv, near_funding, trailing_preds, labels) -> Path:
    store = MarketStore(tmp_path / "store")
    store.write(PartitionKey("ohlcv", "binance", "NEAR", "1h"), near_ohlcv)
    store.write(PartitionKey("funding", "binance", "NEAR", "8h"), near_funding)
    store.write_table("predictions/symbol=NEAR/h=24/oos.parquet", trailing_preds)
    store.write_table("labels/symbol=NEAR/h=24/labels.parquet", labels)
    (tmp_path / "p.yaml").write_text(
        f"store:\n  root: {tmp_path / 'store'}\n"
        f"models:\n  mlflow_tracking_uri: sqlite:///{tmp_path / 'mlflow.db'}\n"
        f"  mlflow_artifact_root: {tmp_path / 'artifacts'}\n")
    return tmp_path


def test_backtest_command_writes_json_plots_and_mlflow(workdir: Path) -> None:
    out = subprocess.run([*CLI, "backtest", "--symbol", "near", "--json", "bt.json",
                          "--report-dir", "rep", "--pipeline", "p.yaml"],
                         cwd=workdir, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "model_policy" in out.stdout and "maxDD" in out.stdout
    rows = json.loads((workdir / "bt.json").read_text())
    assert [r["strategy"] for r in rows] == ["unhedged", "static_hedge", "vol_target",
                                             "rule_triggers", "model_policy"]
    for r in rows:
        for key in ("total_return", "ann_vol", "max_drawdown", "calmar", "upside_capture",
                    "liquidations", "fees_paid", "funding_paid", "turnover"):
            assert r[key] is not None
    for name in ("equity", "drawdown", "policy"):
        assert (workdir / "rep" / f"NEAR_{name}.png").stat().st_size > 10_000

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("backtest")
    run = client.search_runs([exp.experiment_id])[0]
    assert run.data.metrics["model_policy.max_drawdown"] == pytest.approx(rows[-1]["max_drawdown"])
    assert run.data.tags["symbol"] == "NEAR"
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/NEAR_equity.png" in arts


def test_backtest_without_predictions_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run([*CLI, "backtest", "--symbol", "NEAR", "--no-mlflow"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "predictions/symbol=NEAR/h=24/oos.parquet" in out.stderr
    assert "Traceback" not in out.stderr


def test_funding_sources_venue_first_and_proxy_switch(tmp_path: Path, near_funding) -> None:
    import pandas as pd

    from cascade_ml.backtest.data import _funding_sources

    store = MarketStore(tmp_path / "store")
    hourly = pd.DataFrame({"funding_rate": 1e-5},
                          index=pd.date_range("2025-01-01", periods=50, freq="h", tz="UTC",
                                              name="timestamp"))
    store.write(PartitionKey("funding", "hyperliquid", "NEAR", "1h"), hourly)
    store.write(PartitionKey("funding", "binance", "NEAR", "8h"), near_funding)
    both = _funding_sources(store, "NEAR", "binance")
    assert [len(f) for f in both] == [len(near_funding), 50]
    assert [len(f) for f in _funding_sources(store, "NEAR", "binance", proxy=False)] == [
        len(near_funding)]
    assert [len(f) for f in _funding_sources(store, "NEAR", "hyperliquid")] == [
        50, len(near_funding)]
