"""`cascade-ml panel evaluate --pipeline P --json OUT` on a small stored panel (serial engine)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cascade_ml.cli.main import app
from cascade_ml.contracts.layout import panel_path
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import ConfigError

SYMBOLS = ["NEAR", "BTC", "ETH", "ADA", "SEI"]  # the small panel's (conftest)


def _pipeline(tmp_path, small_panel, panel_cfg, enabled: bool = True):
    store = MarketStore(tmp_path / "store")
    frame = small_panel.frame  # its last 7 months, one walk-forward fold: a quick evaluation
    frame = frame[frame["timestamp"] >= pd.Timestamp("2025-10-15", tz="UTC")]
    store.write_table(panel_path(24), frame, {"kind": "panel", "horizon": 24})
    small = panel_cfg.lgbm.model_dump()
    doc = {"name": "panel-cli", "store": {"root": str(store.root)},
           "task": {"symbols": SYMBOLS, "references": ["BTC", "ETH"], "horizon": 24},
           "panel": {"enabled": enabled, "holdout_symbols": ["ADA"], "n_folds": 1,
                     "lgbm": small, "cascade_lgbm": small, "baselines": ["har", "ewma", "naive"],
                     "row_stride": 6, "mcs_reps": 50, "report_dir": str(tmp_path / "reports"),
                     "bundle_dir": str(tmp_path / "models")},
           "compute": {"mode": "serial"}}
    path = tmp_path / "panel.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_panel_evaluate_writes_the_evaluation_json(tmp_path, small_panel, panel_cfg):
    out = tmp_path / "out" / "evaluation.json"
    path = _pipeline(tmp_path, small_panel, panel_cfg)
    result = CliRunner().invoke(app, ["panel", "evaluate", "--pipeline", str(path),
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert set(doc["per_symbol"]) == set(SYMBOLS) and doc["holdout_symbols"] == ["ADA"]
    near = doc["per_symbol"]["NEAR"]
    assert near["walk_forward"]["volatility"]["model"]["qlike"] > 0
    assert near["final"]["volatility"]["best_baseline"] in {"har", "ewma", "naive"}
    assert [f["fold"] for f in doc["folds"]] == [0, 1]
    assert all(0.0 <= w <= 1.0 for w in doc["folds"][-1]["har_weights"].values())
    assert doc["interval"] == "1h" and doc["tuning"] is None
    assert "walk_forward: QLIKE" in result.output and "final: QLIKE" in result.output
    assert not (tmp_path / "models").exists()  # evaluation only: no bundle
    # the hedger's view: regimes, alerts, SHAP per family, and the page beside the JSON
    assert set(doc["panel"]["final"]["regimes"]) == {"calm", "trend", "crash"}
    assert doc["alert"]["rate"] == 0.05
    shares = doc["attribution"]["cascade"]["share"]
    assert sum(shares.values()) == pytest.approx(1.0) and "market" in shares
    assert "SHAP" in result.output and "final by regime" in result.output
    assert "By regime" in out.with_suffix(".html").read_text()


def test_panel_evaluate_needs_a_panel_pipeline(tmp_path, small_panel, panel_cfg):
    path = _pipeline(tmp_path, small_panel, panel_cfg, enabled=False)
    result = CliRunner().invoke(app, ["panel", "evaluate", "--pipeline", str(path),
                                      "--json", str(tmp_path / "x.json")])
    assert isinstance(result.exception, ConfigError)
    with pytest.raises(ConfigError, match="panel.enabled is false"):
        raise result.exception
    assert not (tmp_path / "x.json").exists()
