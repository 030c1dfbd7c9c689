"""The task section is one fact: validated once, moved keys point to it, sections agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cascade_ml.config import load_pipeline
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.errors import ConfigError


def test_task_derives_hours_and_references() -> None:
    task = TaskConfig(symbols=["BTC", "NEAR"], references=["BTC", "ETH"], interval="4h",
                      horizon=6)
    assert task.horizon_hours == 24.0
    assert task.references_for("BTC") == ["ETH"]
    assert task.references_for("NEAR") == ["BTC", "ETH"]
    assert task.all_symbols == ["BTC", "NEAR", "ETH"]


@pytest.mark.parametrize("bad", [{"interval": "fortnight"}, {"interval": "-1h"},
                                 {"horizon": 0}, {"side": "flat"}, {"symbols": []}])
def test_task_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValidationError):
        TaskConfig(**bad)


@pytest.mark.parametrize(("yaml", "hint"), [
    ("labels:\n  horizon: 12\n", "'labels.horizon' has moved to task.horizon"),
    ("models:\n  horizon: 12\n", "'models.horizon' has moved to task.horizon"),
    ("backtest:\n  side: short\n", "'backtest.side' has moved to task.side"),
    ("symbols:\n  targets: [NEAR]\n", "'symbols' has moved to task"),
    ("serving:\n  max_forecast_age_s: 60\n", "has moved to policy.max_data_age_s"),
])
def test_moved_keys_say_where_they_went(tmp_path: Path, yaml: str, hint: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml)
    with pytest.raises(ConfigError, match=hint.replace(".", r"\.")):
        load_pipeline(path)


def test_proxy_window_must_be_a_built_window(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("features:\n  corr_windows: [720]\n")
    with pytest.raises(ConfigError, match="proxy_window 168 is not one of"):
        load_pipeline(path)
    path.write_text("features:\n  corr_windows: [720]\npolicy:\n  proxy_window: 720\n")
    assert load_pipeline(path).policy.proxy_window == 720


def test_trailing_vol_window_must_be_a_built_window(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("features:\n  rv_windows: [1, 24, 168]\n")
    with pytest.raises(ConfigError, match="vol_reference_window 720 is not one of"):
        load_pipeline(path)
    path.write_text("features:\n  rv_windows: [1, 24, 168]\n"
                    "policy:\n  vol_reference_window: 168\n")
    assert load_pipeline(path).policy.vol_reference_window == 168
    path.write_text("features:\n  rv_windows: [1, 24, 168]\n"
                    "policy:\n  vol_reference: fixed\n")
    assert load_pipeline(path).policy.vol_reference == "fixed"


def test_shipped_pipelines_validate() -> None:
    repo = Path(__file__).resolve().parents[2]
    files = sorted((repo / "pipelines").glob("*.yaml"))
    assert files
    for file in files:
        config = load_pipeline(file)
        assert config.task.symbols, file
