"""Batch scoring: idempotent per bar, merges new bars, every task symbol with one bundle, CLI
exit codes, the pipeline step, no look-ahead on rows, bad bundles and features refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from demo_data import (
    SYMBOL,
    fresh_end,
    make_bundle,
    run_score,
    synthetic_features,
    write_features,
    write_pipeline,
)

from cascade_ml.config import load_pipeline
from cascade_ml.contracts.layout import scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError, ConfigError
from cascade_ml.pipeline import score_step

SCORES = scores_path(SYMBOL)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str, pd.DataFrame]:
    pipeline = write_pipeline(tmp_path)
    version = make_bundle(tmp_path / "models" / SYMBOL, seed=21)
    features = synthetic_features(200, fresh_end(), seed=2)
    write_features(tmp_path, features.iloc[:-1])
    return pipeline, version, features


def test_scoring_twice_writes_one_row_per_bar(setup, tmp_path: Path) -> None:
    pipeline, version, features = setup
    store = MarketStore(tmp_path / "store")
    [first] = run_score(pipeline)
    table1 = store.read_table(SCORES)
    [second] = run_score(pipeline)
    table2 = store.read_table(SCORES)
    assert first.ok and second.ok and first.rows_scored == 12
    assert len(table1) == len(table2) == 12 and table2.index.is_unique
    assert (table2["scored_at"] > table1["scored_at"]).all()  # the later run replaced the rows
    np.testing.assert_allclose(table2["var_forecast"], table1["var_forecast"])
    assert (table2["model_version"] == version).all()
    assert (table2.index == features.index[-13:-1]).all()
    assert (table2["feature_timestamp"] == table2.index).all()
    for col in ("vol_forecast", "cascade_prob", "hedge_ratio", "leverage_cap", "size_cap",
                "action", "hedge_instrument", "fail_safe", "reasons"):
        assert col in table2.columns, col

    # one new bar arrives: 11 rows re-scored in place, one added
    write_features(tmp_path, features)
    [third] = run_score(pipeline)
    table3 = store.read_table(SCORES)
    assert third.rows_total == 13 and len(table3) == 13 and table3.index.is_unique
    assert table3.index[-1] == features.index[-1]


def test_forecast_of_a_bar_does_not_depend_on_later_rows(setup, tmp_path: Path) -> None:
    pipeline, _, features = setup
    store = MarketStore(tmp_path / "store")
    run_score(pipeline)
    early = store.read_table(SCORES)
    write_features(tmp_path, features)  # a later row appears
    run_score(pipeline)
    late = store.read_table(SCORES)
    shared = early.index.intersection(late.index)
    assert len(shared) == 12
    rescored = late.loc[shared, "scored_at"] > early.loc[shared, "scored_at"]
    assert rescored.sum() == 11  # the newest 12 rows include 11 of the earlier ones
    np.testing.assert_array_equal(early.loc[shared, "var_forecast"],
                                  late.loc[shared, "var_forecast"])


def test_every_task_symbol_is_scored_with_one_bundle(tmp_path: Path) -> None:
    """One bundle per symbol (the same model exported for each) scores the whole universe by
    default; a bundle copied under another symbol's folder is refused (it names its symbol)."""
    symbols = ("NEAR", "SOL", "AVAX")
    pipeline = write_pipeline(tmp_path, symbols=symbols)
    for i, symbol in enumerate(symbols):
        version = make_bundle(tmp_path / "models" / symbol, seed=22, symbol=symbol)
        write_features(tmp_path, synthetic_features(100, fresh_end(), seed=30 + i), symbol)
    shutil.copytree(tmp_path / "models" / "NEAR", tmp_path / "models" / "DOGE")
    write_features(tmp_path, synthetic_features(100, fresh_end(), seed=40), "DOGE")
    [copied] = run_score(pipeline, ["DOGE"])
    assert not copied.ok and "serves ['NEAR'], not DOGE" in copied.error
    results = run_score(pipeline)
    assert [r.symbol for r in results] == list(symbols)
    assert all(r.ok and r.rows_scored == 12 and r.model_version == version for r in results)
    store = MarketStore(tmp_path / "store")
    tables = [store.read_table(scores_path(s)) for s in symbols]
    assert len({round(float(t["var_forecast"].iloc[-1]), 12) for t in tables}) == 3  # own rows


def test_cli_exit_codes_and_summary(setup, tmp_path: Path) -> None:
    pipeline, version, _ = setup
    cli = str(Path(sys.executable).parent / "cascade-ml")
    ok = subprocess.run([cli, "score", "--pipeline", str(pipeline), "--symbols", SYMBOL],
                        capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert f"{SYMBOL}: scored 12 row(s)" in ok.stdout and version in ok.stdout
    bad = subprocess.run([cli, "score", "--pipeline", str(pipeline), "--symbols", "NEAR,DOGE"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 1
    assert f"{SYMBOL}: scored" in bad.stdout and "DOGE: FAILED" in bad.stdout


def test_score_step_raises_when_a_symbol_fails(setup, tmp_path: Path, capsys) -> None:
    pipeline, _, _ = setup
    config = load_pipeline(pipeline)
    score_step(config)
    assert f"{SYMBOL}: scored" in capsys.readouterr().out
    broken = config.model_copy(update={"task": config.task.model_copy(
        update={"symbols": [SYMBOL, "DOGE"]})})
    with pytest.raises(CascadeError, match="DOGE"):
        score_step(broken)


def test_mismatched_features_fail_clearly(setup, tmp_path: Path) -> None:
    pipeline, _, features = setup
    write_features(tmp_path, features.drop(columns=["rv_24h"]))
    [result] = run_score(pipeline)
    assert not result.ok and "rv_24h" in result.error
    assert not (tmp_path / "store" / SCORES).exists()  # nothing half-written


def test_bundle_for_another_horizon_is_refused(setup, tmp_path: Path) -> None:
    pipeline, _, _ = setup
    meta_file = tmp_path / "models" / SYMBOL / "bundle.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "horizon": 12}))
    [result] = run_score(pipeline)
    assert not result.ok
    assert "12 bars ahead" in result.error and "task.horizon is 24" in result.error
    assert not (tmp_path / "store" / SCORES).exists()


@pytest.mark.parametrize(("key", "moved_to"), [("bundle_dir", "models.models_dir"),
                                               ("score_rows", "scoring.score_rows")])
def test_moved_serving_keys_say_where_they_went(tmp_path: Path, key: str, moved_to: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"serving:\n  {key}: 1\n")
    with pytest.raises(ConfigError, match=f"'serving.{key}' has moved to {moved_to}"):
        load_pipeline(path)


def test_cli_score_ingests_the_configured_sources_first(setup, tmp_path: Path) -> None:
    """A scheduled `cascade-ml score` fetches new data before scoring (the pipeline adapter does
    it, not the scoring layer); here one small real file from data/sample."""
    pipeline, _, _ = setup
    fng = (Path(__file__).resolve().parents[2] / "data" / "sample"
           / "edwardchin811227-cryptofear-and-greed-index" / "data" / "fng.csv")
    raw = yaml.safe_load(pipeline.read_text())
    pipeline.write_text(yaml.safe_dump({**raw, "sources": [{"kind": "files", "path": str(fng)}]}))
    done = subprocess.run([str(Path(sys.executable).parent / "cascade-ml"), "score",
                           "--pipeline", str(pipeline)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.index("1 loaded") < done.stdout.index(f"{SYMBOL}: scored 12 row(s)")
    assert MarketStore(tmp_path / "store").partitions("sentiment")
