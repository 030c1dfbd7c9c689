"""Benchmark of the strong HAR (``har_roll``) against HAR on the same folds of one symbol's long
history (the universe task: perp plus spot before its first bar, data/history).

Prints the wall time of fitting (window choice included) and forecasting every walk-forward fold
and the final period, as a ratio to HAR measured in the same run, and both QLIKEs.

    .venv/bin/python benchmarks/bench_har_roll.py [--symbol ADA]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from cascade_ml.config import load_pipeline
from cascade_ml.contracts.columns import FWD_RV
from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore
from cascade_ml.features.build import build_and_store
from cascade_ml.labels.build import build_and_store_labels
from cascade_ml.models.baselines import volatility_baselines
from cascade_ml.models.dataset import load_dataset
from cascade_ml.models.evaluate import split_rows, splitter
from cascade_ml.models.metrics import qlike_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbol", default="ADA")
    parser.add_argument("--pipeline", default="pipelines/universe.yaml")
    args = parser.parse_args()
    config = load_pipeline(args.pipeline)
    with tempfile.TemporaryDirectory(prefix="bench-har-roll-") as tmp:
        store = MarketStore(Path(tmp) / "store")
        for source in config.sources:
            ingest_path(store, source.path)
        task = config.task.model_copy(update={"symbols": [args.symbol]})
        build_and_store(store, args.symbol, task, config.features)
        build_and_store_labels(store, args.symbol, task, config.labels)
        ds = load_dataset(store, args.symbol, task.horizon)
        cfg = config.models
        dev, final = split_rows(ds, cfg)
        spans = [(dev[tr], dev[te]) for tr, te in splitter(cfg, ds.horizon).split(dev)]
        spans.append((dev, final))
        y = ds.labels[FWD_RV]
        print(f"{args.symbol}: {len(ds.rows)} rows {ds.rows[0]} .. {ds.rows[-1]}, "
              f"{len(spans)} fits (walk-forward folds + final)")
        times, losses = {}, {}
        for name in ("har", "har_roll"):
            started, loss, windows = time.perf_counter(), [], []
            for train, test in spans:
                base = volatility_baselines(ds.horizon, har_roll=cfg.har_roll)[name]
                pred = base.fit(ds.features, y, train).predict(ds.features, test)
                loss.append(qlike_loss(y.loc[test].to_numpy(float), pred))
                windows.append(getattr(base, "window_", None))
            times[name] = time.perf_counter() - started
            losses[name] = (float(np.mean(np.concatenate(loss[:-1]))), float(np.mean(loss[-1])))
            print(f"{name:>9}: {times[name]:6.2f} s  walk-forward QLIKE {losses[name][0]:.4f}  "
                  f"final {losses[name][1]:.4f}  windows {windows}")
        print(f"har_roll / har time: {times['har_roll'] / times['har']:.1f}x")


if __name__ == "__main__":
    main()
