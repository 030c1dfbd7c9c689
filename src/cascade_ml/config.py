"""The pipeline file: one validated YAML document drives every command.

Relative paths in a pipeline file are read from the current working directory (the repository
root when following the README).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import Field, ValidationError

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.config_base import StrictModel
from cascade_ml.data.config import (
    ExchangeSourceConfig,
    FileSourceConfig,
    StoreConfig,
    SymbolsConfig,
    TableSourceConfig,
)
from cascade_ml.errors import ConfigError
from cascade_ml.features.config import FeatureConfig
from cascade_ml.labels.config import LabelConfig
from cascade_ml.models.config import ModelConfig
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.serving.config import ServingConfig

SourceConfig = Annotated[FileSourceConfig | ExchangeSourceConfig | TableSourceConfig,
                         Field(discriminator="kind")]

STEPS = ("ingest", "summary", "features", "labels", "train", "backtest", "score")


class PipelineConfig(StrictModel):
    """A whole pipeline: data, features, labels, models, policy, backtest and serving."""

    name: str = "cascade-ml"
    steps: list[str] = Field(default_factory=lambda: list(STEPS))
    store: StoreConfig = StoreConfig()
    symbols: SymbolsConfig = SymbolsConfig()
    sources: list[SourceConfig] = Field(default_factory=list)
    features: FeatureConfig = FeatureConfig()
    labels: LabelConfig = LabelConfig()
    models: ModelConfig = ModelConfig()
    policy: PolicyConfig = PolicyConfig()
    backtest: BacktestConfig = BacktestConfig()
    serving: ServingConfig = ServingConfig()


def _format_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}'")
        else:
            parts.append(f"'{loc}': {err['msg']}")
    return "; ".join(parts)


def load_pipeline(path: str | Path | None = None) -> PipelineConfig:
    """Read and validate a pipeline file; ``None`` gives the embedded defaults."""
    if path is None:
        return PipelineConfig()
    path = Path(path)
    if not path.exists():
        raise ConfigError("pipeline file not found", str(path))
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({exc})", str(path)) from exc
    if not isinstance(raw, dict):
        raise ConfigError("a pipeline file must be a mapping of sections", str(path))
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc), str(path)) from exc
    unknown = [s for s in config.steps if s not in STEPS]
    if unknown:
        raise ConfigError(f"unknown step(s) {unknown}; known steps are {list(STEPS)}", str(path))
    return config
