"""MLflow access for every layer that tracks something: one section, one connect function.

Models and backtests both log runs; neither borrows the other's configuration to find the
tracking store. The embedded default is SQLite under ``data/mlflow`` (MLflow 3 refuses the old
file store), with a local artifact root.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from cascade_ml.config_base import StrictModel


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

    uri = tracking.uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # bundle export downloads local artifacts; a progress bar per file is only noise here
    os.environ.setdefault(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, "false")
    client = MlflowClient(uri, uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return client, exp.experiment_id
    root = Path(tracking.artifact_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return client, client.create_experiment(experiment, artifact_location=root.as_uri())
