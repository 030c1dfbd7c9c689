"""The universe's panel model in the MLflow registry, like the per-symbol ones.

Each universe train run registers one version of ``cascade-ml-panel-h<H>`` (the per-symbol
naming with symbol ``panel``): the version is reserved first, the panel is evaluated and its
bundle exported with that version number into ``panel.bundle_dir``, and the folder is logged as
the same pyfunc the per-symbol models use (``pyfunc.py``). The exported bundle is the one the
service, scoring and the loop load, so the version is aliased ``champion`` at once: the panel's
own guard against being worse than its base is the per-symbol HAR blend chosen before the final
period (docs/panel.md), not a promotion rule.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

from cascade_ml.contracts.layout import panel_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.forecasting.pyfunc import log_forecast_model
from cascade_ml.models import tracking
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.dataset import SYMBOL
from cascade_ml.tracking import TrackingConfig, connect

PANEL = "panel"
"""The registry's symbol slot for the universe model: ``cascade-ml-panel-h<H>``."""


def panel_model_name(horizon: int) -> str:
    return tracking.model_name(PANEL, horizon)


def train_and_register_panel(engine, store: MarketStore, task: TaskConfig, cfg: PanelConfig,
                             tracking_cfg: TrackingConfig, experiment: str, *,
                             alert_threshold: float = 0.2) -> dict:
    """Evaluate and export the panel (``panel.run.train_panel``) as a new registered version,
    alias it ``champion``; returns the evaluation document (``registered`` added)."""
    from cascade_ml.panel.run import train_panel

    client, exp_id = connect(tracking_cfg, experiment)
    name = panel_model_name(task.horizon)
    docs: list[dict] = []

    def make_bundle(version: str, model_name: str) -> Path:
        docs.append(train_panel(engine, store, task, cfg, alert_threshold=alert_threshold,
                                version=version, model_name=model_name))
        return Path(docs[0]["bundle"]["path"])

    with mlflow.start_run(experiment_id=exp_id, run_name=f"train-panel-h{task.horizon}") as run:
        mlflow.log_params({"kind": PANEL, "horizon": task.horizon, "interval": task.interval,
                           "symbols": ",".join(task.symbols),
                           "holdout_symbols": ",".join(cfg.holdout_symbols)})
        example = store.read_table(panel_path(task.horizon)).groupby(SYMBOL).tail(1)
        version, _ = tracking.register_version(client, name, exp_id, run.info.run_id,
                                               make_bundle, log_forecast_model, example)
        doc = docs[0]
        mlflow.log_metrics(tracking.flatten("panel", {
            k: v for k, v in doc["panel"].items()
            if k in ("walk_forward", "final", *(p.name for p in cfg.holdout_periods))}))
    tracking.set_champion(client, PANEL, task.horizon, version.version)
    doc["registered"] = {"name": name, "version": str(version.version), "alias": tracking.CHAMPION}
    return doc
