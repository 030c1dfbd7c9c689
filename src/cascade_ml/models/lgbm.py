"""LightGBM settings: one mapping from the project's ``LgbmParams`` to the library's parameters.

The per-symbol estimators (LightGBM's scikit-learn API) and the panel (``lightgbm.train``) build
their parameters here, so a setting means the same in both. The names are the scikit-learn ones,
which ``lightgbm.train`` accepts as aliases (``n_estimators`` is ``num_iterations``,
``min_child_samples`` is ``min_data_in_leaf``, ``random_state`` is ``seed``, ``n_jobs`` is
``num_threads``, ...). Every fit is seeded, deterministic and uses the threads it is given (the
process's or the dask worker's cores: ``cascade_ml.compute.worker_threads``), never more.
"""

from __future__ import annotations

from collections.abc import Mapping

LGBM_DEFAULTS = {"n_estimators": 300, "learning_rate": 0.03, "num_leaves": 15,
                 "min_child_samples": 50, "subsample": 0.8, "subsample_freq": 1,
                 "colsample_bytree": 0.8, "reg_lambda": 1.0}
"""Settings of a fit given no ``lgbm`` dict (the pipelines pass their own ``LgbmParams``)."""


def lgbm_params(lgbm: Mapping[str, object] | None, *, seed: int, threads: int | None,
                **extra: object) -> dict:
    """``lgbm`` (a ``LgbmParams`` dump or a partial dict) over the defaults, with the seed, the
    thread count and ``extra`` (objective, alpha, scale_pos_weight, ...)."""
    return {**LGBM_DEFAULTS, **(lgbm or {}), "random_state": seed, "n_jobs": threads,
            "deterministic": True, "force_row_wise": True, "verbose": -1, **extra}
