"""A child process running one panel tuning worker's share of a shared Optuna study
(``panel.tune._optimize_task``, what each dask worker runs) on small synthetic folds, after a
start signal on stdin so that two of them really run at the same time.

Usage: ``python optuna_worker.py URL STUDY WORKER TRIALS``.
"""

from __future__ import annotations

import sys

import numpy as np

from cascade_ml.models.config import LgbmParams
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.tune import _optimize_task


def folds(n: int = 300, k: int = 4) -> dict[int, dict[str, np.ndarray]]:
    """Two development folds of ``n`` rows: a residual that depends on the first input."""
    rng = np.random.default_rng(7)
    out = {}
    for fold in range(2):
        x = rng.normal(size=(2 * n, k)).astype(np.float32)
        resid = 0.3 * x[:, 0] + rng.normal(scale=0.1, size=2 * n)
        out[fold] = {"x_early": x[:n], "resid_early": resid[:n], "x_val": x[n:],
                     "base_val": np.full(n, -9.0), "lvl_val": np.zeros(n),
                     "rv_val": np.exp(-9.0 + resid[n:]) * 24, "last_time": np.array([0])}
    return out


def main(url: str, study: str, worker: int, trials: int) -> None:
    cfg = PanelConfig(lgbm=LgbmParams(n_estimators=20, learning_rate=0.05, num_leaves=7,
                                      min_child_samples=20, colsample_bytree=1.0),
                      optuna_storage=url)
    data = folds()
    print("ready", flush=True)
    sys.stdin.readline()
    shares = [trials, trials]
    ran = _optimize_task(worker, url, study, shares, data, cfg, horizon=24)
    print(f"done {ran}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
