"""The pipeline file: one validated YAML document drives every command.

Relative paths in a pipeline file are read from the current working directory (the repository
root when following the README).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, ValidationError, model_validator

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.compute import ComputeConfig
from cascade_ml.config_base import StrictModel
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.config import SourceConfig, StoreConfig
from cascade_ml.errors import ConfigError
from cascade_ml.features.config import FeatureConfig
from cascade_ml.labels.config import LabelConfig
from cascade_ml.live.config import LiveConfig
from cascade_ml.models.config import ModelConfig
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.panel.config import PanelConfig
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.scoring.config import ScoringConfig
from cascade_ml.serving.config import ServingConfig
from cascade_ml.tracking import TrackingConfig
from cascade_ml.trading.config import TradingConfig

STEPS = ("ingest", "summary", "features", "labels", "train", "backtest", "score")

# Keys that moved into one shared section: a file that still sets them is told where they went.
MOVED = {"symbols": "task (symbols -> task.symbols, targets -> task.symbols)",
         "labels.horizon": "task.horizon", "labels.side": "task.side",
         "models.horizon": "task.horizon", "backtest.horizon": "task.horizon",
         "backtest.side": "task.side", "serving.max_forecast_age_s": "policy.max_data_age_s",
         "models.mlflow_tracking_uri": "tracking.uri",
         "models.mlflow_artifact_root": "tracking.artifact_root",
         "serving.bundle_dir": "models.models_dir",
         "serving.score_rows": "scoring.score_rows",
         "serving.default_position_notional": "scoring.default_position_notional",
         **{f"backtest.{k}": f"trading.{k}" for k in (
             "leverage", "margin_fraction", "initial_equity", "leverage_tolerance", "stops",
             "stop_cooldown_bars")},
         "live.initial_cash": "trading.initial_equity",
         "live.target_notional": "trading.leverage and trading.margin_fraction (the bot's "
                                 "position is leverage x its margin share, as in the backtest)",
         "live.side": "task.side",
         "live.fills": "policy.taker_fee / policy.maker_fee / policy.spread (one fee and spread "
                       "model for the backtest and the paper book)",
         "live.min_order_notional": "trading.leverage_tolerance and policy.no_trade_band (the "
                                    "trading core trades only past them)"}


class PipelineConfig(StrictModel):
    """A whole pipeline: the task, then one section per layer.

    ``task`` holds the facts every layer shares (symbols, bars, horizon, side); each layer reads
    its own section plus the task, through the adapters in ``cascade_ml.steps``.
    """

    name: str = "cascade-ml"
    steps: list[str] = Field(default_factory=lambda: list(STEPS))
    task: TaskConfig = TaskConfig()
    store: StoreConfig = StoreConfig()
    tracking: TrackingConfig = TrackingConfig()
    sources: list[SourceConfig] = Field(default_factory=list)
    features: FeatureConfig = FeatureConfig()
    labels: LabelConfig = LabelConfig()
    models: ModelConfig = ModelConfig()
    policy: PolicyConfig = PolicyConfig()
    backtest: BacktestConfig = BacktestConfig()
    trading: TradingConfig = TradingConfig()
    scoring: ScoringConfig = ScoringConfig()
    serving: ServingConfig = ServingConfig()
    panel: PanelConfig = PanelConfig()
    compute: ComputeConfig = ComputeConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    live: LiveConfig = LiveConfig()

    @property
    def forecasters_dir(self) -> Path:
        """Where the task's forecasters are: the universe bundle ``panel.bundle_dir`` when the
        panel is enabled, else ``models.models_dir`` (one bundle folder per symbol). Serving,
        scoring and the live loop hand it to ``cascade_ml.forecasting.load_forecaster``."""
        return self.panel.bundle_dir if self.panel.enabled else self.models.models_dir

    @model_validator(mode="after")
    def _sections_agree(self) -> PipelineConfig:
        """Facts one section reads from another must exist there."""
        if self.policy.proxy_window not in self.features.corr_windows:
            raise ValueError(f"policy.proxy_window {self.policy.proxy_window} is not one of "
                             f"features.corr_windows {list(self.features.corr_windows)}: proxy "
                             "hedges would have no beta to read")
        window = self.policy.vol_reference_window
        if self.policy.vol_reference == "trailing" and window not in self.features.rv_windows:
            raise ValueError(f"policy.vol_reference_window {window} is not one of "
                             f"features.rv_windows {list(self.features.rv_windows)}: scoring, "
                             "serving and the live loop would have no trailing vol to read")
        return self


def _format_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden" and loc in MOVED:
            parts.append(f"'{loc}' has moved to {MOVED[loc]}")
        elif err["type"] == "extra_forbidden":
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
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an impossible date (2025-13-40)
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
