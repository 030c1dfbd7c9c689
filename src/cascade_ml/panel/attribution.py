"""Which feature families carry the panel's skill: SHAP per family, pooled over symbols.

LightGBM's ``predict(..., pred_contrib=True)`` gives exact TreeSHAP values (one column per
input plus the expected value) without the ``shap`` package. Each panel input is mapped to the
family of the feature it is computed from (``panel.dataset.column_families`` over
``features.registry.feature_specs``; market state is ``market``, ``is_spot`` is ``spot``), and
a family's share is its summed mean |SHAP| over the summed mean |SHAP| of all inputs, on the
rows given (the final period's, in the evaluation). The volatility booster is the LightGBM
*correction* to the pooled linear HAR (the linear part is volatility by construction); the
cascade booster is the classifier before calibration and stacking.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import IS_SPOT
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.registry import feature_specs
from cascade_ml.panel.dataset import column_families

SPOT_FAMILY = "spot"


def input_families(inputs: list[str], references: list[str],
                   features: FeatureConfig | None = None) -> dict[str, str]:
    """Panel input -> feature family (``unknown`` for a column no family produces)."""
    specs = {s.name: s.family for s in feature_specs(features or FeatureConfig(), references)}
    fams = column_families(inputs, specs)
    return {c: SPOT_FAMILY if c == IS_SPOT else f for c, f in fams.items()}


def shap_family_shares(booster, x: pd.DataFrame, families: dict[str, str],
                       max_rows: int = 20_000, seed: int = 42) -> dict:
    """Mean |SHAP| per input and its share per family on the rows of ``x`` (a seeded sample of
    ``max_rows`` of them when there are more); columns in the booster's input order."""
    if len(x) > max_rows:
        x = x.sample(max_rows, random_state=seed)
    contrib = booster.predict(x.to_numpy(np.float32), pred_contrib=True)[:, :-1]
    mean_abs = pd.Series(np.abs(contrib).mean(axis=0), index=list(x.columns))
    by_family = mean_abs.groupby(pd.Series(families)).sum()
    total = float(by_family.sum())
    share = (by_family / total if total > 0 else by_family * np.nan).sort_values(ascending=False)
    return {"rows": len(x), "share": {str(k): float(v) for k, v in share.items()},
            "top_inputs": {str(k): float(v)
                           for k, v in mean_abs.sort_values(ascending=False).head(10).items()}}
