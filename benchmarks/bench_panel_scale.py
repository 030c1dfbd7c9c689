"""Features + labels for many symbols: a 2-worker dask LocalCluster vs the same code serially.

The real universe files (data/sample + data/universe) are ingested once and their 1h bars
reused under new names (SYM000..) for throughput only; every task runs the project's own
per-symbol builders (``build_and_store`` / ``build_and_store_labels``). Prints wall time, the
speed-up and the peak resident memory of each worker (and of the serial process).

    .venv/bin/python benchmarks/bench_panel_scale.py [--symbols 200]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from cascade_ml.compute import ComputeConfig, engine
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.features.config import FeatureConfig
from cascade_ml.labels.config import LabelConfig
from cascade_ml.panel.run import _features_task, _labels_task

REPO = Path(__file__).resolve().parents[1]


def _both(symbol: str, root: str, task: TaskConfig, fcfg: FeatureConfig,
          lcfg: LabelConfig) -> int:
    _features_task(symbol, root, task, fcfg)
    _labels_task(symbol, root, task, lcfg, [])
    return 1


def _make_store(root: Path, n: int) -> list[str]:
    store = MarketStore(root)
    for src in ("data/sample", "data/universe"):
        ingest_path(store, REPO / src)
    real = [k for k in store.partitions("ohlcv") if k.venue == "binance" and k.interval == "1h"
            and k.symbol not in ("BTC", "ETH")]
    names = []
    for i in range(n):
        key = real[i % len(real)]
        name = f"SYM{i:03d}"
        frame = store.read_partition(key)
        store.write(PartitionKey("ohlcv", "binance", name, "1h"), frame)
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-panel-"))
    try:
        base = tmp / "base"
        names = _make_store(base, args.symbols)
        task = TaskConfig(symbols=names)
        fcfg = FeatureConfig()
        lcfg = LabelConfig()
        for label in ("serial", "dask"):
            root = tmp / label
            shutil.copytree(base, root)
            cfg = ComputeConfig(mode="serial" if label == "serial" else "dask", n_workers=2,
                                threads_per_worker=1)
            with engine(cfg) as eng:
                started = time.perf_counter()
                done = eng.map(_both, names, str(root), task, fcfg, lcfg)
                wall = time.perf_counter() - started
                mem = eng.worker_memory()
            peak = ", ".join(f"{v / 2**20:.0f} MiB" for v in mem.values())
            print(f"{label:>6}: {sum(done)} symbols x features+labels in {wall:6.1f} s "
                  f"({wall / len(names) * 1000:.0f} ms/symbol); peak RSS per worker: {peak}")
            if label == "serial":
                serial_wall = wall
        print(f"speed-up dask (2 workers x 1 thread) vs serial: {serial_wall / wall:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
