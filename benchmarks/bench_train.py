"""Benchmark of the train step on the real sample (NEAR): walk-forward, full train, tuning.

Prints wall times and ratios against a baseline measured in the same run (fitting and
forecasting HAR-RV on the same folds), so the figures mean something on any machine.

    .venv/bin/python benchmarks/bench_train.py [--trials 3] [--sample data/sample]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cascade_ml.config import PipelineConfig
from cascade_ml.contracts.columns import FWD_RV
from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore
from cascade_ml.features.build import build_and_store
from cascade_ml.forecasting.pyfunc import log_forecast_model
from cascade_ml.labels.build import build_and_store_labels
from cascade_ml.models.baselines import HAR
from cascade_ml.models.dataset import load_dataset
from cascade_ml.models.evaluate import split_rows, splitter, walk_forward
from cascade_ml.models.train import table, train_symbol
from cascade_ml.models.tuning import tune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", default="data/sample")
    parser.add_argument("--symbol", default="NEAR")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp)
        config = PipelineConfig.model_validate({
            "store": {"root": str(root / "store")},
            "task": {"symbols": [args.symbol]},
            "tracking": {"uri": f"sqlite:///{root}/mlflow.db",
                         "artifact_root": str(root / "artifacts")},
            "models": {"models_dir": str(root / "models"),
                       "optuna_storage": f"sqlite:///{root}/optuna.db"}})
        store = MarketStore(config.store.root)
        task, cfg, horizon = config.task, config.models, config.task.horizon
        t0 = time.perf_counter()
        ingest_path(store, Path(args.sample))
        build_and_store(store, args.symbol, task, config.features)
        build_and_store_labels(store, args.symbol, task, config.labels,
                               oi_venues=config.features.oi_venues)
        prep = time.perf_counter() - t0
        ds = load_dataset(store, args.symbol, horizon, cfg.features, cfg.exclude_features)
        print(f"{args.symbol}: {len(ds.rows)} usable rows x {len(ds.feature_names)} features, "
              f"h={horizon}, {cfg.n_folds} folds, num_threads={cfg.num_threads} "
              f"(ingest + features + labels {prep:.1f} s, not counted)")

        # baseline: HAR fit + forecast on the same walk-forward folds
        dev, _ = split_rows(ds, cfg)
        folds = list(splitter(cfg, horizon).split(dev))
        t0 = time.perf_counter()
        for tr, te in folds:
            HAR(horizon).fit(ds.features, ds.labels[FWD_RV], dev[tr]).predict(
                ds.features, dev[te])
        t_har = time.perf_counter() - t0

        t0 = time.perf_counter()
        result = walk_forward(ds, cfg)
        t_wf = time.perf_counter() - t0

        t0 = time.perf_counter()
        report = train_symbol(store, args.symbol, horizon, cfg, config.tracking,
                              log_model=log_forecast_model, force=True)
        t_train = time.perf_counter() - t0

        t_tune = None
        if args.trials:
            t0 = time.perf_counter()
            tune(ds, cfg, args.trials)
            t_tune = time.perf_counter() - t0

    print(table(result.metrics["walk_forward"], "walk-forward"))
    print(table(result.metrics["final"], "final period"))
    print(f"HAR baseline, {len(folds)} folds fit+forecast : {t_har:8.3f} s")
    print(f"walk-forward (models + 8 baselines + final): {t_wf:8.2f} s  "
          f"({t_wf / t_har:,.0f}x HAR)")
    print(f"full train (walk-forward, plots, MLflow log + register, bundle): {t_train:.2f} s  "
          f"({t_train / t_har:,.0f}x HAR; minus walk-forward alone: {t_train - t_wf:+.1f} s, "
          "i.e. MLflow + plots are within run-to-run noise on a shared machine)")
    print(f"promoted: {report.promoted} ({report.reason})")
    if t_tune is not None:
        per_min = args.trials / t_tune * 60
        print(f"tuning: {args.trials} trials in {t_tune:.1f} s = {per_min:.1f} trials/min "
              f"(one trial = {t_tune / args.trials / t_har:,.0f}x HAR)")


if __name__ == "__main__":
    main()
