"""Which module computes each family, and every feature name with its one-line description."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import pandas as pd

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
from cascade_ml.features.config import FeatureConfig
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
    """All enabled families side by side on the target's bar index (pure, no I/O)."""
    parts = [FAMILY_MODULES[f].compute(inputs, cfg) for f in cfg.families]
    frame = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=inputs.bars.index)
    names = [s.name for s in feature_specs(cfg, list(inputs.refs))]
    assert list(frame.columns) == names, set(frame.columns) ^ set(names)
    frame.index.name = "timestamp"
    return frame.astype(float)
