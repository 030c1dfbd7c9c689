"""MLflow on a local SQLite store: one run per train, registered models, the champion alias.

Promotion rule (visible, in one pure function): a candidate becomes ``champion`` only when, on
the untouched final period, its volatility QLIKE is below the best baseline's QLIKE *and* below
the current champion's QLIKE measured on the same rows (the champion's bundle is re-scored when
its features match; otherwise its logged final-period QLIKE is used). ``force`` overrides.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from cascade_ml.atomic import replace_dir
from cascade_ml.errors import CascadeError
from cascade_ml.models.bundle import load_bundle
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.metrics import qlike_loss

log = logging.getLogger(__name__)
CHAMPION = "champion"
PIP = ["lightgbm", "numpy"]


def model_names(symbol: str, horizon: int) -> dict[str, str]:
    """Registered model names of one symbol and horizon."""
    return {"volatility": f"cascade-ml-{symbol}-h{horizon}-volatility",
            "cascade": f"cascade-ml-{symbol}-h{horizon}-cascade"}


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
            ds_info: dict,
            metrics: dict, vol, clf, sample_x: pd.DataFrame,
            make_bundle: Callable[[str], Path] | None, plots_dir: Path | None,
            params: dict | None) -> dict:
    """Log one train run and register both boosters; returns run id and version numbers.

    ``make_bundle(version)`` writes the bundle once the registry has numbered the version, so
    ``bundle.json`` carries the registered version; the folder is logged under ``bundle/``.
    """
    names = model_names(symbol, horizon)
    kind = "train" if make_bundle is not None else "evaluate"
    with mlflow.start_run(experiment_id=exp_id, run_name=f"{kind}-{symbol}-h{horizon}") as run:
        flat_cfg = pd.json_normalize(cfg.model_dump(mode="json"), sep=".").iloc[0].to_dict()
        mlflow.log_params({**{k: str(v) for k, v in flat_cfg.items()}, "symbol": symbol,
                           "n_features": len(ds_info["feature_names"]),
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
        if make_bundle is None:  # an evaluation: metrics and plots only, nothing registered
            return {"run_id": run.info.run_id, "versions": {}, "bundle_dir": None}
        xt = vol.tree_inputs(sample_x.to_numpy(float))
        vol_info = mlflow.lightgbm.log_model(
            vol.model_.booster_, name="volatility", registered_model_name=names["volatility"],
            signature=infer_signature(pd.DataFrame(xt, columns=sample_x.columns),
                                      vol.model_.booster_.predict(xt, raw_score=True)),
            pip_requirements=PIP)
        raw = clf.model_.booster_.predict(sample_x.to_numpy(float))
        cas_info = mlflow.lightgbm.log_model(
            clf.model_.booster_, name="cascade", registered_model_name=names["cascade"],
            signature=infer_signature(sample_x, raw), pip_requirements=PIP)
        versions = {"volatility": str(vol_info.registered_model_version),
                    "cascade": str(cas_info.registered_model_version)}
        bundle_dir = make_bundle(versions["volatility"])
        mlflow.log_artifacts(str(bundle_dir), "bundle")
        head = headline(metrics["final"] or metrics["walk_forward"])
        for kind, version in versions.items():
            for key, value in head.items():
                client.set_model_version_tag(names[kind], version, key, f"{value:.10g}")
            client.set_model_version_tag(names[kind], version, "run_id", run.info.run_id)
        return {"run_id": run.info.run_id, "versions": versions, "bundle_dir": bundle_dir}


def champion_version(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def download_bundle(client: MlflowClient, run_id: str, dest: Path) -> Path:
    """Fetch a run's logged bundle folder into ``dest`` (a fresh temp dir)."""
    return Path(client.download_artifacts(run_id, "bundle", str(dest)))


def champion_qlike(client: MlflowClient, symbol: str, horizon: int,
                   final_x: np.ndarray | None, final_rv: np.ndarray | None,
                   feature_names: list[str] | None) -> float | None:
    """The current champion's QLIKE, re-scored on the candidate's final rows when possible."""
    champ = champion_version(client, model_names(symbol, horizon)["volatility"])
    if champ is None:
        return None
    if final_x is not None and len(final_x):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                bundle = load_bundle(download_bundle(client, champ.run_id, Path(tmp)))
                bundle.validate_features(feature_names)
                return float(np.mean(qlike_loss(final_rv, bundle.predict(final_x)["var_forecast"])))
            except CascadeError as exc:
                log.info("champion not re-scored (%s); using its logged QLIKE", exc)
    return float(champ.tags["qlike"]) if "qlike" in champ.tags else None


def set_champion(client: MlflowClient, symbol: str, horizon: int, run_id: str) -> dict[str, str]:
    """Point the champion alias of both registered models at the versions from ``run_id``."""
    out = {}
    for kind, name in model_names(symbol, horizon).items():
        found = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
        if not found:
            raise CascadeError(f"run {run_id} registered no version of {name}")
        client.set_registered_model_alias(name, CHAMPION, found[0].version)
        out[kind] = found[0].version
    return out


def export_champion(client: MlflowClient, symbol: str, horizon: int, models_dir: Path) -> Path:
    """Copy the champion's bundle to ``models_dir/<SYMBOL>`` (temp folder, then rename)."""
    champ = champion_version(client, model_names(symbol, horizon)["volatility"])
    if champ is None:
        raise CascadeError(f"no champion model for {symbol} h={horizon}",
                           hint="train first, or promote a version with --force")
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{symbol}-dl-", dir=models_dir))
    src = download_bundle(client, champ.run_id, tmp)
    load_bundle(src)  # refuse to install an unreadable bundle
    dest = models_dir / symbol
    replace_dir(src, dest)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest
