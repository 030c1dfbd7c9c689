"""MLflow: one run per train, one registered forecast model per symbol and horizon, the alias.

Each train run registers one version of ``cascade-ml-<S>-h<H>``: a pyfunc whose artifact is the
bundle folder and whose ``predict`` returns every served forecast column. The pyfunc is
``cascade_ml.forecasting.pyfunc`` (it serves every bundle kind, so it lives above this layer);
the train step passes its ``log_forecast_model`` in as ``log_model``. The version number is
reserved first, so the bundle's ``bundle.json`` carries it.

Promotion rule (visible, in one pure function): a candidate becomes ``champion`` only when, on
the untouched final period, its volatility QLIKE is below the best baseline's QLIKE *and* below
the current champion's QLIKE measured on the same rows (the champion's bundle is re-scored when
its features match; otherwise its logged final-period QLIKE is used). ``force`` overrides.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from cascade_ml.atomic import replace_dir, temp_dir
from cascade_ml.contracts.columns import VAR_FORECAST
from cascade_ml.errors import CascadeError
from cascade_ml.models.bundle import BUNDLE_FILE, load_bundle
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.metrics import qlike_loss

log = logging.getLogger(__name__)
CHAMPION = "champion"
ARTIFACT = "bundle"
"""Artifact of the logged pyfunc that holds the bundle folder."""
NAME = "forecast"
"""Name of the logged model inside its run."""
LogModel = Callable[[Path, pd.DataFrame | None, str], object]
"""``log_model(bundle_dir, example, model_id)``: logs the bundle folder as the pyfunc."""


def model_name(symbol: str, horizon: int) -> str:
    """Registered model of one symbol and horizon (all forecast columns)."""
    return f"cascade-ml-{symbol}-h{horizon}"


def flatten(prefix: str, data: dict) -> dict[str, float]:
    """Nested metric dicts to MLflow metric names (finite numbers only)."""
    out = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(name, value))
        elif (isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
              and math.isfinite(float(value))):
            out[name] = float(value)
    return out


def headline(metrics: dict) -> dict[str, float]:
    """The numbers the promotion rule reads, from one evaluation block (final period)."""
    vol = metrics["volatility"]
    out = {"qlike": vol["model"]["qlike"],
           "best_baseline_qlike": vol["baselines"][vol["best_baseline"]]["qlike"]}
    if "cascade" in metrics:
        out["pr_auc"] = metrics["cascade"]["model"]["pr_auc"]
        out["bss"] = metrics["cascade"]["model"]["bss"]
    return out


def decide_promotion(candidate: dict[str, float], champion_qlike: float | None,
                     force: bool = False) -> tuple[bool, str]:
    """The promotion rule; returns (promote?, reason)."""
    if force:
        return True, "forced"
    if not candidate["qlike"] < candidate["best_baseline_qlike"]:
        return False, (f"QLIKE {candidate['qlike']:.4f} does not beat the best baseline "
                       f"{candidate['best_baseline_qlike']:.4f}")
    if champion_qlike is not None and not candidate["qlike"] < champion_qlike:
        return False, (f"QLIKE {candidate['qlike']:.4f} does not beat the champion "
                       f"{champion_qlike:.4f}")
    return True, ("beats the best baseline" + (" and the champion" if champion_qlike is not None
                                               else " (no champion yet)"))


def log_run(client: MlflowClient, exp_id: str, *, cfg: ModelConfig, symbol: str, horizon: int,
            ds_info: dict, metrics: dict, plots_dir: Path | None, params: dict | None,
            make_bundle: Callable[[str, str], Path] | None = None,
            log_model: LogModel | None = None,
            example: pd.DataFrame | None = None) -> dict:
    """Log one run; with ``make_bundle`` and ``log_model``, register the forecast model too.

    ``make_bundle(version, model_name)`` writes the bundle once the registry has numbered the
    version, so ``bundle.json`` carries it; ``log_model`` logs the folder as the pyfunc, with
    ``example`` (feature rows) as its input example. Returns run id, version and bundle folder.
    """
    kind = "train" if make_bundle is not None else "evaluate"
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{kind}-{symbol}-h{horizon}") as run:
        flat_cfg = pd.json_normalize(cfg.model_dump(mode="json"), sep=".").iloc[0].to_dict()
        mlflow.log_params({**{k: str(v) for k, v in flat_cfg.items()}, "symbol": symbol,
                           "horizon": horizon, "n_features": len(ds_info["feature_names"]),
                           **{f"tuned.{k}": v for k, v in (params or {}).items()}})
        mlflow.set_tags({"symbol": symbol, "horizon": str(horizon),
                         **{k: str(v) for k, v in ds_info["spans"].items()},
                         **ds_info["hashes"]})
        mlflow.log_metrics(flatten("wf", metrics["walk_forward"]))
        if metrics.get("final"):
            mlflow.log_metrics(flatten("final", metrics["final"]))
        for k, fold in enumerate(metrics["folds"]):
            mlflow.log_metrics(flatten(f"fold{k}", fold))
        mlflow.log_dict({"features": ds_info["feature_names"]}, "features.json")
        mlflow.log_dict(json.loads(json.dumps(metrics, default=str)), "metrics.json")
        if plots_dir is not None and plots_dir.exists():
            mlflow.log_artifacts(str(plots_dir), "plots")
        if make_bundle is None or log_model is None:  # an evaluation: nothing registered
            return {"run_id": run.info.run_id, "version": None, "bundle_dir": None}
        name = model_name(symbol, horizon)
        version, bundle_dir = register_version(client, name, exp_id, run.info.run_id,
                                               make_bundle, log_model, example)
        for key, value in headline(metrics["final"] or metrics["walk_forward"]).items():
            client.set_model_version_tag(name, version.version, key, f"{value:.10g}")
        return {"run_id": run.info.run_id, "version": str(version.version),
                "bundle_dir": bundle_dir}


def reserve_version(client: MlflowClient, name: str, exp_id: str,
                    run_id: str) -> tuple[ModelVersion, str]:
    """A new version of ``name`` pointing at a pending logged model of ``run_id``; returns the
    version and the logged model's id (the pyfunc is logged into it afterwards)."""
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    logged = mlflow.initialize_logged_model(name=NAME, source_run_id=run_id,
                                            experiment_id=exp_id)
    version = client.create_model_version(name, f"models:/{logged.model_id}", run_id,
                                          model_id=logged.model_id)
    return version, logged.model_id


def register_version(client: MlflowClient, name: str, exp_id: str, run_id: str,
                     make_bundle: Callable[[str, str], Path], log_model: LogModel,
                     example: pd.DataFrame | None = None) -> tuple[ModelVersion, Path]:
    """Reserve a version of ``name``, write its bundle (``make_bundle(version, name)``) and log it
    as the pyfunc; a failure deletes the version, so none points at a model never written."""
    version, model_id = reserve_version(client, name, exp_id, run_id)
    try:
        bundle_dir = make_bundle(version.version, name)
        log_model(bundle_dir, example, model_id)
    except BaseException:
        client.delete_model_version(name, version.version)
        client.finalize_logged_model(model_id, LoggedModelStatus.FAILED)
        raise
    return version, bundle_dir


def champion_version(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def download_bundle(name: str, version: str, dest: Path) -> Path:
    """Fetch the bundle folder of a registered version (its pyfunc artifact) into ``dest``."""
    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}",
                                                         dst_path=str(dest)))
    folder = model_dir / "artifacts" / ARTIFACT
    if not (folder / BUNDLE_FILE).exists():
        raise CascadeError(f"{name} v{version} holds no bundle", str(model_dir))
    return folder


def champion_qlike(client: MlflowClient, symbol: str, horizon: int,
                   final_x: np.ndarray | None, final_rv: np.ndarray | None,
                   feature_names: list[str] | None) -> float | None:
    """The current champion's QLIKE, re-scored on the candidate's final rows when possible."""
    name = model_name(symbol, horizon)
    champ = champion_version(client, name)
    if champ is None:
        return None
    if final_x is not None and len(final_x):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                bundle = load_bundle(download_bundle(name, champ.version, Path(tmp)))
                bundle.validate_features(feature_names)
                return float(np.mean(qlike_loss(final_rv, bundle.predict(final_x)[VAR_FORECAST])))
            except CascadeError as exc:
                log.info("champion not re-scored (%s); using its logged QLIKE", exc)
    return float(champ.tags["qlike"]) if "qlike" in champ.tags else None


def set_champion(client: MlflowClient, symbol: str, horizon: int, version: str) -> None:
    """Point the champion alias at ``version`` of the symbol's registered model (``symbol``
    ``panel``: the universe's)."""
    client.set_registered_model_alias(model_name(symbol, horizon), CHAMPION, str(version))


def export_champion(client: MlflowClient, symbol: str, horizon: int, models_dir: Path) -> Path:
    """Copy the champion's bundle to ``models_dir/<SYMBOL>`` (temp folder, then rename)."""
    name = model_name(symbol, horizon)
    champ = champion_version(client, name)
    if champ is None:
        raise CascadeError(f"no champion model for {symbol} h={horizon}",
                           hint="train first, or promote a version with --force")
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    with temp_dir(models_dir, f"{symbol}-dl") as tmp:
        src = download_bundle(name, champ.version, tmp)
        load_bundle(src)  # refuse to install an unreadable bundle
        dest = models_dir / symbol
        replace_dir(src, dest)
    return dest
