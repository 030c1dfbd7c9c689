"""A small real panel: NEAR, BTC, ETH from data/sample plus ADA and SEI from data/universe, and a
panel bundle fitted on it (the panel tests' fixtures; the forecasting and serving tests import
them too, so every layer is tested on the same small universe).

Fixtures are imported into a test module (or a conftest) with ``from panel_data import ...``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from cascade_ml.compute import Engine
from cascade_ml.contracts.layout import features_path, panel_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore
from cascade_ml.features.config import FeatureConfig
from cascade_ml.labels.config import LabelConfig
from cascade_ml.models.config import LgbmParams
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.dataset import SYMBOL, TIMESTAMP, Panel, build_panel

REPO = Path(__file__).resolve().parents[1]
UNIVERSE = REPO / "data" / "universe" / "yagokhan-varanus-neo-flow-hybrid-extended" / "data"
SYMBOLS = ["NEAR", "BTC", "ETH", "ADA", "SEI"]
SMALL = LgbmParams(n_estimators=15, learning_rate=0.1, num_leaves=7, min_child_samples=500)
PANEL_VERSION = "p1"


def ingest_small_universe(root: Path, extra: tuple[str, ...] | None = ("ADA", "SEI")
                          ) -> MarketStore:
    """A store holding data/sample plus ``extra`` perps from data/universe (None: all 18)."""
    store = MarketStore(root)
    files = ([UNIVERSE] if extra is None
             else [UNIVERSE / f"{symbol}USDT_1h.parquet" for symbol in extra])
    for path in (REPO / "data" / "sample", *files):
        report = ingest_path(store, path)
        assert not report.failed, report.format()
    return store


def small_panel_config() -> PanelConfig:
    return PanelConfig(holdout_symbols=["ADA"], n_folds=2, lgbm=SMALL, cascade_lgbm=SMALL,
                       baselines=["har", "ewma", "naive"], row_stride=6, mcs_reps=50)


def build_small_panel(store: MarketStore, cfg: PanelConfig,
                      symbols: list[str] | None = None) -> Panel:
    """The last ~13 months of the five symbols (or ``symbols``; windows computed on their whole
    history)."""
    task = TaskConfig(symbols=symbols or SYMBOLS)
    panel = build_panel(Engine(), str(store.root), task, FeatureConfig(), LabelConfig(), cfg,
                        ["binance", "binance_coinm"], write=False)
    keep = panel.frame["timestamp"] >= pd.Timestamp("2025-04-01", tz="UTC")
    return Panel(panel.frame[keep].reset_index(drop=True), panel.inputs, panel.horizon,
                 panel.symbols)


@pytest.fixture(scope="session")
def panel_store(tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    return ingest_small_universe(tmp_path_factory.mktemp("panel_store"))


@pytest.fixture(scope="session")
def panel_task() -> TaskConfig:
    return TaskConfig(symbols=SYMBOLS)


@pytest.fixture(scope="session")
def panel_cfg() -> PanelConfig:
    return small_panel_config()


@pytest.fixture(scope="session")
def small_panel(panel_store, panel_cfg) -> Panel:
    """The last ~13 months of the five symbols (windows computed on their whole history)."""
    return build_small_panel(panel_store, panel_cfg)


def export_small_panel_bundle(path: Path, small_panel: Panel, panel_cfg: PanelConfig, *,
                              version: str = PANEL_VERSION, horizon: int = 24,
                              interval: str = "1h") -> Path:
    """Fit the small panel's final fold (about a second) and export it as a panel bundle."""
    from cascade_ml.panel.bundle import export_panel_bundle
    from cascade_ml.panel.evaluate import time_folds
    from cascade_ml.panel.fold import run_fold
    from cascade_ml.panel.run import symbol_har

    fold = time_folds(small_panel, panel_cfg)[-1]
    _, choices = run_fold(fold, small_panel.frame, small_panel.inputs, panel_cfg, 24, keep=True,
                          bar=pd.Timedelta("1h"))
    state = choices.pop("state")
    return export_panel_bundle(
        path, state, choices, version=version, symbols=small_panel.symbols, horizon=horizon,
        interval=interval, side="long", inputs=small_panel.inputs, cold_start_days=30,
        symbol_har=symbol_har(small_panel, fold.train_end), metrics={"demo": True},
        model_name="cascade-ml-panel-h24")


@pytest.fixture(scope="session")
def panel_bundle_dir(tmp_path_factory: pytest.TempPathFactory, small_panel, panel_cfg) -> Path:
    """A panel bundle fitted on the small panel (treat it as read-only; copy it to change it)."""
    return export_small_panel_bundle(tmp_path_factory.mktemp("panel_models") / "panel",
                                     small_panel, panel_cfg)


def fresh_panel(frame: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Each symbol's rows shifted in time so its newest row is the bar opening at ``end`` (the
    values are untouched: the universe as if its data had just arrived)."""
    parts = []
    for _, part in frame.groupby(SYMBOL, sort=False):
        part = part.copy()
        part[TIMESTAMP] = part[TIMESTAMP] + (end - part[TIMESTAMP].max())
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def write_universe_store(root: Path, frame: pd.DataFrame, horizon: int = 24) -> MarketStore:
    """A store holding ``frame`` as the panel table and, per symbol, a features table with the
    raw columns the policy reads beside the forecast (the features step's share of a universe
    store)."""
    store = MarketStore(root)
    store.write_table(panel_path(horizon), frame, {"kind": "panel", "horizon": horizon})
    for sym, part in frame.groupby(SYMBOL, sort=False):
        raw = part.set_index(TIMESTAMP)[[c for c in part.columns if c.startswith("raw_")]]
        raw.columns = [c.removeprefix("raw_") for c in raw.columns]
        raw.index = pd.DatetimeIndex(raw.index, name="timestamp")
        store.write_table(features_path(str(sym)), raw, {"symbol": str(sym), "demo": True})
    return store


def universe_pipeline(tmp: Path, *, max_age_s: float = 7200,
                      steps: tuple[str, ...] = ("score",),
                      symbols: list[str] | None = None) -> Path:
    """A universe pipeline: the panel enabled, its bundle folder and store in ``tmp``."""
    doc = {"name": "universe-test", "store": {"root": str(tmp / "store")},
           "task": {"symbols": symbols or SYMBOLS, "references": ["BTC", "ETH"], "horizon": 24},
           "panel": {"enabled": True, "holdout_symbols": ["ADA"],
                     "bundle_dir": str(tmp / "models" / "panel")},
           "models": {"models_dir": str(tmp / "per-symbol-models")},
           "policy": {"max_data_age_s": max_age_s},
           "scoring": {"score_rows": 12},
           "serving": {"reload_interval_s": 0.2}, "steps": list(steps)}
    path = tmp / "universe.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def recent(frame: pd.DataFrame, rows: int = 900) -> pd.DataFrame:
    """Each symbol's newest ``rows`` panel rows (a small table, quick to write and read)."""
    return frame.groupby(SYMBOL, sort=False).tail(rows).reset_index(drop=True)
