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
        f"tracking:\n  uri: sqlite:///{tmp_path / 'mlflow.db'}\n"
        f"  artifact_root: {tmp_path / 'artifacts'}\n")
    return tmp_path


def test_backtest_command_writes_json_plots_and_mlflow(workdir: Path) -> None:
    out = subprocess.run([*CLI, "backtest", "--symbol", "near", "--json", "bt.json",
                          "--report-dir", "rep", "--pipeline", "p.yaml"],
                         cwd=workdir, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "model_policy" in out.stdout and "maxDD" in out.stdout
    rows = json.loads((workdir / "bt.json").read_text())
    assert [r["strategy"] for r in rows] == ["unhedged", "capped_unhedged", "static_hedge",
                                             "vol_target",
                                             "rule_triggers", "model_policy", "har_policy",
                                             "ewma_policy", "oracle_policy", "static_matched",
                                             "static_matched_har", "static_matched_oracle",
                                             "static_sized", "static_sized_har",
                                             "static_sized_oracle"]
    for r in rows:
        for key in ("total_return", "ann_vol", "max_drawdown", "calmar", "upside_capture",
                    "liquidations", "fees_paid", "funding_paid", "turnover", "cvar_95"):
            assert r[key] is not None
        assert r["cvar_95"] < 0  # the mean of the worst 5 % of daily returns is a loss
        # the final period (fold 1 from 2025-11-01) and the regimes inside the span
        assert r["periods"]["final period"]["start"].startswith("2025-11-01")
        assert r["periods"]["2025-10-10 liquidations"]["status"] == "ok"
        assert r["periods"]["2023 range"] == {"status": "outside the OOS span"}
    by = {r["strategy"]: r for r in rows}
    fv = by["model_policy"]["forecast_value"]
    for span in ("all", "final"):
        block = fv[span]
        assert block["cvar_95"]["ci_low"] <= block["cvar_95"]["ci_high"]
        assert isinstance(block["model_beats_har"], bool)
        assert "HAR-fed" in block["verdict"]
        assert block["cvar_95"]["improvement"] == pytest.approx(
            block["cvar_95"]["model"] - block["cvar_95"]["har"])
    assert "forecast value (final)" in out.stdout and "final period" in out.stdout
    assert any("static_matched" in line for line in by["model_policy"]["targets"]["final"])
    # static_matched holds the model policy's average leverage and hedge
    assert by["static_matched"]["mean_hedge"] == pytest.approx(
        by["model_policy"]["mean_hedge"], abs=0.02)
    for name in ("equity", "drawdown", "policy", "ablation"):
        assert (workdir / "rep" / f"NEAR_{name}.png").stat().st_size > 10_000
    page = (workdir / "rep" / "NEAR_report.html").read_text()
    assert "Forecast value" in page and "data:image/png;base64," in page
    assert "Regimes" in page and "har_policy" in page

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("backtest")
    run = client.search_runs([exp.experiment_id])[0]
    assert run.data.metrics["model_policy.max_drawdown"] == pytest.approx(
        by["model_policy"]["max_drawdown"])
    assert run.data.tags["symbol"] == "NEAR"
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/NEAR_equity.png" in arts
    assert "NEAR_report.html" in {a.path for a in client.list_artifacts(run.info.run_id)}


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


def test_book_form_writes_positions_and_its_report(workdir: Path) -> None:
    (workdir / "p.yaml").write_text((workdir / "p.yaml").read_text() + (
        "backtest:\n  bootstrap_reps: 50\n  book:\n    symbols: [NEAR]\n"
        "    strategies: [unhedged, model_policy, har_policy]\n"))
    out = subprocess.run([*CLI, "backtest", "--book", "--json", "book.json", "--report-dir",
                          "rep", "--pipeline", "p.yaml", "--no-mlflow"],
                         cwd=workdir, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "book NEAR" in out.stdout and "model_policy positions" in out.stdout
    rows = json.loads((workdir / "book.json").read_text())
    assert [r["strategy"] for r in rows] == ["unhedged", "model_policy", "har_policy"]
    by = {r["strategy"]: r for r in rows}
    assert by["model_policy"]["symbols"] == ["NEAR"]
    pos = by["model_policy"]["positions"]["NEAR"]
    # one position: its P&L is the book's (returns start after the opening trade's fees)
    assert pos["pnl"] == pytest.approx(by["model_policy"]["total_return"] * 10_000, abs=10)
    assert "forecast_value" in by["model_policy"]
    # no backtest.book.proxy_effectiveness: no proxy-hedged variant, the output as before
    assert all("proxy_variant" not in r for r in rows)
    assert "proxy-hedged variant" not in out.stdout
    assert "Positions" in (workdir / "rep" / "BOOK_report.html").read_text()
