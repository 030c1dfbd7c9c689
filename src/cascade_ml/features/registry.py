"""Which module computes each family, and every feature name with its one-line description."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import IS_SPOT
from cascade_ml.features import (
    correlation,
    depth,
    funding,
    liquidations,
    open_interest,
    sentiment,
    volatility,
    volume,
)
from cascade_ml.features.config import PERP_ONLY_FAMILIES, FeatureConfig
from cascade_ml.features.inputs import FeatureInputs

FAMILY_MODULES: dict[str, ModuleType] = {
    m.FAMILY: m for m in (volatility, correlation, funding, open_interest, sentiment, volume,
                          liquidations, depth)
}


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    family: str
    description: str


def feature_specs(cfg: FeatureConfig, refs: list[str]) -> list[FeatureSpec]:
    """Every column the enabled families produce, in table order."""
    specs = []
    for family in cfg.families:
        for name, text in FAMILY_MODULES[family].describe(cfg, refs).items():
            specs.append(FeatureSpec(name, family, text))
    return specs


def compute_families(inputs: FeatureInputs, cfg: FeatureConfig) -> pd.DataFrame:
    """All enabled families side by side on the target's bar index (pure, no I/O).

    On spliced bars (an ``is_spot`` column, ``cascade_ml.data.history``) the families a spot
    market does not have (``PERP_ONLY_FAMILIES``) are NaN on spot rows, and ``is_spot`` is
    appended as the last column so a model can tell the two markets apart.
    """
    parts = [FAMILY_MODULES[f].compute(inputs, cfg) for f in cfg.families]
    frame = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=inputs.bars.index)
    specs = feature_specs(cfg, list(inputs.refs))
    names = [s.name for s in specs]
    assert list(frame.columns) == names, set(frame.columns) ^ set(names)
    frame.index.name = "timestamp"
    frame = frame.astype(float)
    if IS_SPOT in inputs.bars:
        spot = inputs.bars[IS_SPOT].to_numpy(float) == 1.0
        perp_only = [s.name for s in specs if s.family in PERP_ONLY_FAMILIES]
        frame.loc[spot, perp_only] = np.nan
        frame[IS_SPOT] = inputs.bars[IS_SPOT].to_numpy(float)
    return frame
