"""Optuna on RDB storage: two dask workers run trials of one study; the objective reads only
development folds (never the final period)."""

from __future__ import annotations

import optuna
import pandas as pd

from cascade_ml.compute import ComputeConfig, engine
from cascade_ml.panel.evaluate import time_folds
from cascade_ml.panel.tune import tune_panel, tuning_data

HOUR = pd.Timedelta("1h")


def test_tuning_data_stays_in_the_development_folds(small_panel, panel_cfg):
    folds = time_folds(small_panel, panel_cfg)
    data = tuning_data(small_panel, panel_cfg, folds, HOUR, max_rows=500)
    assert sorted(data) == [0, 1]  # the 2 development folds; the final period is not a key
    for k, arrays in data.items():
        last = pd.Timestamp(int(arrays["last_time"][0]), tz="UTC")
        assert last + 24 * HOUR <= folds[k].test_start  # inside fold k's purged training span
        assert len(arrays["x_val"]) and len(arrays["resid_early"]) == len(arrays["x_early"])


def test_two_workers_share_one_study(small_panel, panel_cfg, tmp_path):
    url = f"sqlite:///{tmp_path}/optuna/panel.db"
    cfg = panel_cfg.model_copy(update={"optuna_storage": url})
    folds = time_folds(small_panel, cfg)
    with engine(ComputeConfig(n_workers=2, threads_per_worker=1)) as eng:
        assert eng.n_workers == 2
        result = tune_panel(eng, small_panel, cfg, folds, HOUR, n_trials=6, study_name="t",
                            max_rows=400)
    study = optuna.load_study(study_name="t", storage=url)
    assert len(study.trials) == 6 and result["trials"] == 6
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) == 2  # both workers' trials landed in the one study
    assert sorted(result["per_worker"].values()) == [3, 3]
    assert result["complete"] >= 1 and set(result["params"]) == {
        "learning_rate", "num_leaves", "min_child_samples", "colsample_bytree"}
    assert 0.01 <= result["params"]["learning_rate"] <= 0.1
