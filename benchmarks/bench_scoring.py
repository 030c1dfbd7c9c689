"""Batch scoring throughput: ``ForecastBundle.predict`` on a block of rows vs baselines, same run.

Baselines: the same bundle called one row at a time (what a naive per-bar loop does), and the
scikit-learn wrapper path (``LGBMRegressor.predict`` on a DataFrame, with its input validation).
Also times the whole ``score`` step (features table -> bundle -> policy -> atomic write) for the
configured number of rows. Prints rows/s and ratios; asserts nothing.

    python benchmarks/bench_scoring.py [--rows 20000] [--per-row 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import yaml


def best_of(fn, repeat: int = 3) -> float:
    """Least wall time of ``repeat`` runs (the least disturbed by other processes)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--per-row", type=int, default=1_000, help="rows for the per-row baselines")
    ap.add_argument("--score-rows", type=int, default=2_000, help="rows for the full score step")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from demo_data import make_demo_bundle, run_score, store_features, synthetic_features

    from cascade_ml.data.store import MarketStore
    from cascade_ml.models.bundle import load_bundle

    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmpname:
        tmp = Path(tmpname)
        bundle_dir = tmp / "models" / "NEAR"
        make_demo_bundle(bundle_dir, seed=3, n_estimators=100)
        bundle = load_bundle(bundle_dir)
        features = synthetic_features(args.rows, seed=4)
        x = features[bundle.feature_names].to_numpy(dtype=np.float64)

        batch = best_of(lambda: bundle.predict(x))
        xs = x[: args.per_row]
        per_row = best_of(lambda: [bundle.predict(xs[i: i + 1]) for i in range(len(xs))], 1)

        # sklearn-wrapper path: an LGBMRegressor around the same volatility booster's trees,
        # fed a one-row DataFrame per bar (validation + DataFrame handling on every call)
        wrapper = lgb.LGBMRegressor(n_estimators=100, num_leaves=7, min_child_samples=20,
                                    verbose=-1).fit(features[bundle.feature_names].iloc[:2000],
                                                    np.log(features["rv_24h"].iloc[:2000]))
        frame = features[bundle.feature_names].iloc[: args.per_row]
        sk_row = best_of(lambda: [wrapper.predict(frame.iloc[i: i + 1])
                                  for i in range(len(frame))], 1)
        sk_batch = best_of(lambda: wrapper.predict(features[bundle.feature_names]))

        pipeline = tmp / "pipeline.yaml"
        pipeline.write_text(yaml.safe_dump({
            "store": {"root": str(tmp / "store")},
            "task": {"symbols": ["NEAR"], "references": ["BTC", "ETH"]},
            "models": {"models_dir": str(tmp / "models")},
            "scoring": {"score_rows": args.score_rows}}))
        store = MarketStore(tmp / "store")
        store_features(store, "NEAR", features.iloc[-max(args.score_rows, 1):])
        t0 = time.perf_counter()
        [result] = run_score(pipeline)
        step = time.perf_counter() - t0
        assert result.ok, result.error
        t0 = time.perf_counter()
        run_score(pipeline)  # second run: merge with the stored table
        step2 = time.perf_counter() - t0
        stored = len(store.read_table("scores/symbol=NEAR/scores.parquet"))

    rate = {
        "bundle.predict, batch": args.rows / batch,
        "bundle.predict, one row per call": args.per_row / per_row,
        "sklearn wrapper, batch DataFrame": args.rows / sk_batch,
        "sklearn wrapper, one-row DataFrame": args.per_row / sk_row,
    }
    print(f"\n{args.rows} rows x {x.shape[1]} features; bundle = vol + 3 quantile + cascade "
          "boosters (100 trees each); the sklearn wrapper is one 100-tree booster")
    for name, value in rate.items():
        print(f"  {name:38s} {value:12,.0f} rows/s")
    batch_rate = rate["bundle.predict, batch"]
    print(f"  batch vs one-row bundle calls: "
          f"{batch_rate / rate['bundle.predict, one row per call']:.0f}x")
    print(f"  batch bundle vs one-row sklearn wrapper: "
          f"{batch_rate / rate['sklearn wrapper, one-row DataFrame']:.0f}x")
    print(f"\nscore step, {args.score_rows} rows (features -> bundle -> policy decision per row "
          f"-> atomic write): {step:.2f} s ({args.score_rows / step:,.0f} rows/s)")
    print(f"re-run (merge on timestamp): {step2:.2f} s; stored rows {stored} "
          f"(one per bar: {stored == args.score_rows})")

if __name__ == "__main__":
    main()
