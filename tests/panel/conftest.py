"""A small real panel: NEAR, BTC, ETH from data/sample plus ADA and SEI from data/universe."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cascade_ml.compute import Engine
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore
from cascade_ml.features.config import FeatureConfig
from cascade_ml.labels.config import LabelConfig
from cascade_ml.models.config import LgbmParams
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.dataset import Panel, build_panel

REPO = Path(__file__).resolve().parents[2]
UNIVERSE = REPO / "data" / "universe" / "yagokhan-varanus-neo-flow-hybrid-extended" / "data"
SYMBOLS = ["NEAR", "BTC", "ETH", "ADA", "SEI"]
SMALL = LgbmParams(n_estimators=15, learning_rate=0.1, num_leaves=7, min_child_samples=500)


@pytest.fixture(scope="session")
def panel_store(tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    store = MarketStore(tmp_path_factory.mktemp("panel_store"))
    for path in (REPO / "data" / "sample", UNIVERSE / "ADAUSDT_1h.parquet",
                 UNIVERSE / "SEIUSDT_1h.parquet"):
        report = ingest_path(store, path)
        assert not report.failed, report.format()
    return store


@pytest.fixture(scope="session")
def panel_task() -> TaskConfig:
    return TaskConfig(symbols=SYMBOLS)


@pytest.fixture(scope="session")
def panel_cfg() -> PanelConfig:
    return PanelConfig(holdout_symbols=["ADA"], n_folds=2, lgbm=SMALL, cascade_lgbm=SMALL,
                       baselines=["har", "ewma", "naive"], row_stride=6, mcs_reps=50)


@pytest.fixture(scope="session")
def small_panel(panel_store, panel_task, panel_cfg) -> Panel:
    """The last ~13 months of the five symbols (windows computed on their whole history)."""
    panel = build_panel(Engine(), str(panel_store.root), panel_task, FeatureConfig(),
                        LabelConfig(), panel_cfg, ["binance", "binance_coinm"], write=False)
    keep = panel.frame["timestamp"] >= pd.Timestamp("2025-04-01", tz="UTC")
    return Panel(panel.frame[keep].reset_index(drop=True), panel.inputs, panel.horizon,
                 panel.symbols)
