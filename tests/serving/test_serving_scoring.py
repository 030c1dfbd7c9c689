"""Batch scoring: idempotent per bar, merges new bars, CLI exit codes, no look-ahead on rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serving_helpers import (
    SYMBOL,
    fresh_end,
    make_bundle,
    synthetic_features,
    write_features,
    write_pipeline,
)

from cascade_ml.config import load_pipeline
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.serving.scoring import run_step, score

SCORES = f"scores/symbol={SYMBOL}/scores.parquet"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str, pd.DataFrame]:
    pipeline = write_pipeline(tmp_path)
    version = make_bundle(tmp_path / "models" / SYMBOL, seed=21)
    features = synthetic_features(200, fresh_end(), seed=2)
    write_features(tmp_path, features.iloc[:-1])
    return pipeline, version, features


def test_scoring_twice_writes_one_row_per_bar(setup, tmp_path: Path) -> None:
    pipeline, version, features = setup
    config = load_pipeline(pipeline)
    store = MarketStore(tmp_path / "store")
    [first] = score(store, config)
    table1 = store.read_table(SCORES)
    [second] = score(store, config)
    table2 = store.read_table(SCORES)
    assert first.ok and second.ok and first.rows_scored == 12
    assert len(table1) == len(table2) == 12 and table2.index.is_unique
    assert (table2["scored_at"] > table1["scored_at"]).all()  # the later run replaced the rows
    np.testing.assert_allclose(table2["var_forecast"], table1["var_forecast"])
    assert (table2["model_version"] == version).all()
    assert (table2.index == features.index[-13:-1]).all()
    assert (table2["feature_timestamp"] == table2.index).all()
    for col in ("vol_forecast", "cascade_prob", "hedge_ratio", "leverage_cap", "size_cap",
                "action", "hedge_instrument", "fail_safe"):
        assert col in table2.columns, col
    assert table2["hedge_ratio"].between(0, 1).all()

    # one new bar arrives: 11 rows re-scored in place, one added
    write_features(tmp_path, features)
    [third] = score(store, config)
    table3 = store.read_table(SCORES)
    assert third.rows_total == 13 and len(table3) == 13 and table3.index.is_unique
    assert table3.index[-1] == features.index[-1]


def test_forecast_of_a_bar_does_not_depend_on_later_rows(setup, tmp_path: Path) -> None:
    pipeline, _, features = setup
    config = load_pipeline(pipeline)
    store = MarketStore(tmp_path / "store")
    score(store, config)
    early = store.read_table(SCORES)
    write_features(tmp_path, features)  # a later row appears
    score(store, config)
    late = store.read_table(SCORES)
    shared = early.index.intersection(late.index)
    assert len(shared) == 12
    rescored = late.loc[shared, "scored_at"] > early.loc[shared, "scored_at"]
    assert rescored.sum() == 11  # the newest 12 rows include 11 of the earlier ones
    np.testing.assert_array_equal(early.loc[shared, "var_forecast"],
                                  late.loc[shared, "var_forecast"])


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


def test_run_step_raises_when_a_symbol_fails(setup, tmp_path: Path, capsys) -> None:
    pipeline, _, _ = setup
    config = load_pipeline(pipeline)
    run_step(config)
    assert f"{SYMBOL}: scored" in capsys.readouterr().out
    broken = config.model_copy(update={"symbols": config.symbols.model_copy(
        update={"targets": [SYMBOL, "DOGE"]})})
    with pytest.raises(CascadeError, match="DOGE"):
        run_step(broken)


def test_mismatched_features_fail_clearly(setup, tmp_path: Path) -> None:
    pipeline, _, features = setup
    write_features(tmp_path, features.drop(columns=["rv_24h"]))
    [result] = score(MarketStore(tmp_path / "store"), load_pipeline(pipeline))
    assert not result.ok and "rv_24h" in result.error
    assert not (tmp_path / "store" / SCORES).exists()  # nothing half-written
