"""MLflow access for every layer that tracks something: one section, one connect function.

Models and backtests both log runs; neither borrows the other's configuration to find the
tracking store. The embedded default is SQLite under ``data/mlflow`` (MLflow 3 refuses the old
file store), with a local artifact root; ``postgresql://user:password@host/db`` puts runs and
the registry on a server (artifacts stay under ``artifact_root``, which must then be a folder
every machine sees, or an object-store URI).

MLflow builds a new SQLite store with ~100 migrations that are not one transaction: a process
killed meanwhile used to leave a half-migrated file on which every start failed (``table
trace_info already exists``). ``prepare_store`` therefore builds a new store in a temp file and
links it into place whole (``sqlstore.create_sqlite``), and replaces a half-built one found on
start only when it holds no record (no run, model, trace, or experiment but MLflow's Default):
such a file can only come from a killed build. A behind-head store that holds records is left
to MLflow (``mlflow db upgrade``), never replaced.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from pydantic import Field
from sqlalchemy import Engine, create_engine, func, inspect, select, table, text
from sqlalchemy.exc import SQLAlchemyError

from cascade_ml.config_base import StrictModel
from cascade_ml.errors import CascadeError
from cascade_ml.sqlstore import (
    create_sqlite,
    safe_url,
    schema_lock,
    scratch_engine,
    sqlite_path,
)


class TrackingConfig(StrictModel):
    """Where MLflow runs, models and artifacts are stored (the `tracking` pipeline section)."""

    uri: str = Field("sqlite:///data/mlflow/mlflow.db", description="MLflow tracking/registry URI.")
    artifact_root: Path = Field(Path("data/mlflow/artifacts"),
                                description="Artifact folder of experiments created here.")


def connect(tracking: TrackingConfig, experiment: str):
    """Point MLflow at the store; create ``experiment`` with a local artifact root if new.

    Returns ``(MlflowClient, experiment_id)``.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
    from mlflow.exceptions import MlflowException

    uri = tracking.uri
    prepare_store(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # bundle export downloads local artifacts; a progress bar per file is only noise here
    os.environ.setdefault(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, "false")
    try:
        with schema_lock(uri, "mlflow"):  # the first open of a server's store builds its schema
            client = MlflowClient(uri, uri)
            exp = client.get_experiment_by_name(experiment)
    except (MlflowException, SQLAlchemyError) as exc:
        raise CascadeError(f"cannot open the MLflow store: {exc}", safe_url(uri),
                           hint="back the store up, then `mlflow db upgrade <uri>`; a store "
                           "that holds no run can simply be deleted") from exc
    if exp is not None:
        return client, exp.experiment_id
    root = Path(tracking.artifact_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return client, client.create_experiment(experiment, artifact_location=root.as_uri())


# ---------------------------------------------------------------------------- the SQLite store
# MLflow's own schema helpers (mlflow.store.db.utils) are used here and only here.
def prepare_store(uri: str) -> None:
    """Make a SQLite tracking store whole before MLflow opens it (see the module docstring);
    a server's store is built by MLflow itself, inside one transaction per step."""
    path = sqlite_path(uri)
    if path is not None:
        create_sqlite(path, _build_schema, replace_if=_half_built_and_empty)


def _build_schema(url: str) -> None:
    from mlflow.store.db.utils import _initialize_tables

    engine = scratch_engine(url)
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()


@functools.cache
def _head_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def _half_built_and_empty(path: Path) -> bool:
    """True for a store whose schema MLflow never finished and that holds no record."""
    from mlflow.store.db.utils import _all_tables_exist, _get_schema_version

    engine = create_engine(f"sqlite:///{path}")
    try:
        if _all_tables_exist(engine) and _get_schema_version(engine) == _head_revision():
            return False
        return not _holds_records(engine)
    finally:
        engine.dispose()


# rows the migrations themselves insert: MLflow's Default experiment and default workspace
_SEEDED = {"experiments": text("experiment_id != 0"), "workspaces": text("name != 'default'")}


def _holds_records(engine: Engine) -> bool:
    with engine.connect() as conn:
        for name in inspect(conn).get_table_names():
            if name == "alembic_version" or name.startswith("_alembic_tmp_"):
                continue  # bookkeeping, and copies of tables a killed migration was rebuilding
            query = select(func.count()).select_from(table(name))
            if name in _SEEDED:
                query = query.where(_SEEDED[name])
            if conn.execute(query).scalar_one():
                return True
    return False
