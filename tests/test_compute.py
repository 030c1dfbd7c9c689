"""The Dask path (a 2-worker LocalCluster) gives the same panel as the serial path."""

from __future__ import annotations

import pandas as pd

from cascade_ml.compute import ComputeConfig, Engine, engine, worker_threads
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore
from cascade_ml.features.config import FeatureConfig
from cascade_ml.labels.config import LabelConfig
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.dataset import build_panel


def _threads(_: int) -> int:
    return worker_threads()


def test_dask_features_equal_serial(sample_dir, tmp_path):
    store = MarketStore(tmp_path / "store")
    assert not ingest_path(store, sample_dir).failed
    task = TaskConfig(symbols=["NEAR", "BTC", "ETH"])
    args = (str(store.root), task, FeatureConfig(), LabelConfig(),
            PanelConfig(holdout_symbols=["ETH"]), ["binance"])
    serial = build_panel(Engine(), *args)
    with engine(ComputeConfig(n_workers=2, threads_per_worker=1)) as eng:
        assert eng.distributed
        distributed = build_panel(eng, *args)
        # a task sees only its worker's thread, so LightGBM never oversubscribes the cores
        assert eng.map(_threads, [0, 1]) == [1, 1]
        assert set(eng.worker_memory()) and min(eng.worker_memory().values()) > 0
    assert serial.inputs == distributed.inputs
    pd.testing.assert_frame_equal(serial.frame, distributed.frame)
    assert (store.root / "features" / "symbol=BTC" / "features.parquet").exists()
    assert serial.frame["mkt_btc_d"].notna().mean() > 0.9
