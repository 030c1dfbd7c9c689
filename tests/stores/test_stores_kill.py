"""Every store survives a ``kill -9`` at any moment: real child processes killed at chosen SQL
statements or renames (and at random moments of a write loop), then the next start must work
and leave nothing behind."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from stores_helpers import kill_after, kill_when_paused, temps

from cascade_ml.atomic import atomic_file, staged_dir, sweep_temps
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.tracking import TrackingConfig, connect
from cascade_ml.trading import db
from cascade_ml.trading.book import PaperBook

BOOK_TABLES = {"account", "decisions", "orders", "fills", "positions", "hedges",
               "funding_payments", "equity_snapshots", "stop_orders", "alembic_version"}
# the MLflow revision just before the one that creates trace_info (MLflow's own migrations)
BEFORE_TRACE_INFO = "acf3f17fdcc7"


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def revision(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def mlflow_head() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


# ---------------------------------------------------------------------------- MLflow
def count_statements(work: Callable[[], object]) -> int:
    """How many SQL statements ``work`` runs (every engine of this process)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    count = [0]

    def before(*_args) -> None:  # noqa: ANN002 - SQLAlchemy's event signature
        count[0] += 1

    event.listen(Engine, "before_cursor_execute", before)
    try:
        work()
    finally:
        event.remove(Engine, "before_cursor_execute", before)
    return count[0]


def test_mlflow_store_killed_while_its_schema_is_built_opens_on_the_next_start(
        tmp_path: Path) -> None:
    from cascade_ml.tracking import _build_schema

    reference = tmp_path / "reference.db"
    build = count_statements(lambda: _build_schema(f"sqlite:///{reference}"))
    assert build > 300 and revision(reference) == mlflow_head()

    target = tmp_path / "store" / "mlflow.db"
    target.parent.mkdir()
    for pause in (2, build // 3, 2 * build // 3):  # a new store's first statements are its build
        assert kill_when_paused("mlflow", target, pause) == "killed"
        assert not target.exists()  # the build happens in a temp file: no half-built store
        assert [n for n in temps(target.parent) if n.endswith(".db")], "the killed build's temp"

    client, exp_id = connect(TrackingConfig(uri=f"sqlite:///{target}",
                                            artifact_root=tmp_path / "artifacts"), "killed")
    assert client.get_experiment(exp_id).name == "killed"
    assert revision(target) == mlflow_head() and tables(target) == tables(reference)
    assert temps(target.parent) == []  # the killed builds' temp files were swept


def _half_migrated(path: Path, *, with_experiment: bool) -> None:
    """The store a kill inside MLflow's own migration leaves (issue 18): schema stamped at the
    revision before ``trace_info``, whose migration had created that table before dying."""
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    from cascade_ml.sqlstore import scratch_engine

    url = f"sqlite:///{path}"
    engine = scratch_engine(url)
    InitialBase.metadata.create_all(engine)
    cfg = _get_alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, BEFORE_TRACE_INFO)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE trace_info (request_id VARCHAR(50) PRIMARY KEY)")
        if with_experiment:
            conn.exec_driver_sql("INSERT INTO experiments (experiment_id, name, "
                                 "artifact_location, lifecycle_stage) "
                                 "VALUES (1, 'mine', '/nowhere', 'active')")
    engine.dispose()


def _plain_mlflow(path: Path) -> subprocess.CompletedProcess:
    code = ("import sys; from mlflow import MlflowClient; u = 'sqlite:///' + sys.argv[1]; "
            "MlflowClient(u, u).search_experiments()")
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=300, cwd=path.parent)


def test_a_half_migrated_mlflow_store_without_records_is_rebuilt(tmp_path: Path) -> None:
    target = tmp_path / "mlflow" / "mlflow.db"
    target.parent.mkdir()
    _half_migrated(target, with_experiment=False)
    plain = _plain_mlflow(target)  # the bug: MLflow alone fails on it, at every start
    assert plain.returncode != 0 and "table trace_info already exists" in plain.stderr

    client, exp_id = connect(TrackingConfig(uri=f"sqlite:///{target}",
                                            artifact_root=tmp_path / "artifacts"), "repaired")
    run = client.create_run(exp_id)
    client.log_metric(run.info.run_id, "qlike", 0.25)
    assert client.get_run(run.info.run_id).data.metrics == {"qlike": 0.25}
    assert revision(target) == mlflow_head() and temps(target.parent) == []


def test_a_half_migrated_mlflow_store_holding_records_is_never_replaced(tmp_path: Path) -> None:
    target = tmp_path / "mlflow" / "mlflow.db"
    target.parent.mkdir()
    _half_migrated(target, with_experiment=True)
    with pytest.raises(CascadeError, match="mlflow db upgrade"):
        connect(TrackingConfig(uri=f"sqlite:///{target}", artifact_root=tmp_path / "a"), "x")
    with sqlite3.connect(target) as conn:  # the user's experiment is still there
        assert conn.execute("SELECT name FROM experiments WHERE experiment_id = 1"
                            ).fetchall() == [("mine",)]


# ---------------------------------------------------------------------------- book, Optuna
def test_paper_book_killed_inside_its_migration_migrates_on_the_next_start(
        tmp_path: Path) -> None:
    target = tmp_path / "paper" / "book.db"
    target.parent.mkdir()
    for pause in (3, 8, 14):  # the 0001 migration runs ~17 statements in one transaction
        assert kill_when_paused("book", target, pause) == "killed"
        # all or nothing: the migration's DDL is inside the transaction the kill rolled back
        assert not target.exists() or tables(target) == set()
    with PaperBook(f"sqlite:///{target}", initial_cash=10_000.0) as book:
        assert book.initial_cash == 10_000.0
    assert tables(target) == BOOK_TABLES and revision(target) == db.head_revision()
    assert temps(target.parent) == []


def test_optuna_storage_killed_while_built_opens_on_the_next_start(tmp_path: Path) -> None:
    import optuna

    from cascade_ml.sqlstore import rdb_storage

    target = tmp_path / "optuna" / "optuna.db"
    target.parent.mkdir()
    for pause in (2, 20, 40):  # Optuna's schema: ~50 statements
        assert kill_when_paused("optuna", target, pause) == "killed"
        assert not target.exists()
    assert kill_when_paused("optuna", target, 0).startswith("done")
    study = optuna.load_study(study_name="killed", storage=rdb_storage(f"sqlite:///{target}"))
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=2)
    assert len(study.trials) == 2 and temps(target.parent) == []


# ---------------------------------------------------------------------------- files, folders
def test_a_store_write_killed_before_its_rename_is_swept_by_the_next_store_start(
        tmp_path: Path) -> None:
    target = tmp_path / "store" / "ohlcv" / "part.bin"
    with atomic_file(target) as handle:
        handle.write(b"old")
    assert kill_when_paused("file", target, 1) == "killed"  # whole temp, never renamed
    assert target.read_bytes() == b"old" and len(temps(target.parent)) == 1
    MarketStore(tmp_path / "store")  # a store's first open in a process sweeps its tree
    assert target.read_bytes() == b"old" and temps(tmp_path) == []


def test_a_live_writer_keeps_its_temp_file(tmp_path: Path) -> None:
    from stores_helpers import start

    target = tmp_path / "out" / "part.bin"
    target.parent.mkdir()
    proc = start("file", target, 1)
    try:
        assert proc.stdout.readline().strip() == "paused"
        assert sweep_temps(target.parent) == [] and len(temps(target.parent)) == 1
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert len(sweep_temps(target.parent)) == 1 and temps(target.parent) == []


@pytest.mark.parametrize("rename", [1, 2])
def test_a_bundle_swap_killed_between_renames_keeps_a_whole_bundle(
        tmp_path: Path, rename: int) -> None:
    target = tmp_path / "models" / "NEAR"
    with staged_dir(target) as tmp:
        (tmp / "bundle.json").write_text('{"version": "old"}')
    # rename 1 moves the old bundle aside, rename 2 puts the new one in: killed before each
    assert kill_when_paused("bundle", target, rename) == "killed"
    assert len(temps(target.parent)) == rename
    with staged_dir(tmp_path / "models" / "BTC") as tmp:  # the next bundle write sweeps
        (tmp / "bundle.json").write_text('{"version": "btc"}')
    assert (target / "bundle.json").read_text() == '{"version": "old"}'
    assert temps(target.parent) == []


def test_writes_killed_at_random_moments_leave_whole_files_and_no_temp(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    rng = random.Random(18)
    for _ in range(4):
        kill_after("files", folder, rng.uniform(0.3, 0.8))  # writing from ~0.1 s on
        for part in folder.glob("part-*.bin"):  # every file there is a whole write
            assert part.stat().st_size == 1 << 20
        assert len(temps(folder)) <= 1
    assert len(list(folder.glob("part-*.bin"))) == 3
    sweep_temps(folder)
    assert temps(folder) == []
