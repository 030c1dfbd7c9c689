"""Where the token comes from, and that the service refuses to start without one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from demo_data import write_pipeline
from serving_helpers import TOKEN, free_port

from cascade_ml.errors import ConfigError
from cascade_ml.serving.auth import load_token
from cascade_ml.serving.config import ServingConfig


def test_env_wins_then_file_then_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    config = ServingConfig(token_env="CASCADE_TEST_TOKEN", token_file=token_file)
    monkeypatch.setenv("CASCADE_TEST_TOKEN", "from-env")
    assert load_token(config) == "from-env"
    monkeypatch.delenv("CASCADE_TEST_TOKEN")
    assert load_token(config) == "from-file"
    token_file.write_text("  \n")
    with pytest.raises(ConfigError, match="token file is empty"):
        load_token(config)
    with pytest.raises(ConfigError, match="CASCADE_TEST_TOKEN"):
        load_token(ServingConfig(token_env="CASCADE_TEST_TOKEN"))
    with pytest.raises(ConfigError, match="not found"):
        load_token(ServingConfig(token_env="CASCADE_TEST_TOKEN", token_file=tmp_path / "nope"))


def test_serve_without_token_exits_2_naming_the_variable(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "CASCADE_ML_TOKEN"}
    done = subprocess.run([str(Path(sys.executable).parent / "cascade-ml"), "serve", "--pipeline",
                           str(pipeline), "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "CASCADE_ML_TOKEN" in done.stderr and "Traceback" not in done.stderr
    assert TOKEN not in done.stderr
