"""Where one panel fold's time goes on the long history, and what a cheaper LightGBM costs in skill.

Reads the stored universe panel table (run the universe pipeline's features and labels steps
first), takes one walk-forward fold (default the last, the largest training span) and times,
on one core: the pooled linear HARs, each per-symbol baseline, the pooled rolling HAR, and the
LightGBM correction and cascade classifier at the configured ``row_stride`` (the baseline of
this run) and at each ``--strides`` candidate. For every candidate it prints the fit-time ratio
to the baseline, the validation-slice QLIKE of base + correction and the cascade log loss and
PR-AUC / base rate (the development rows a setting may be chosen on; the final period is never
read).

    .venv/bin/python benchmarks/bench_panel_fold.py [--pipeline pipelines/universe.yaml]
        [--fold 4] [--strides 6 12] [--only-lgbm]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, log_loss

from cascade_ml.config import load_pipeline
from cascade_ml.data.store import MarketStore
from cascade_ml.panel.estimators import LINEAR_KINDS, LinearPanel, qlike, to_variance
from cascade_ml.panel.evaluate import time_folds
from cascade_ml.panel.fold import (
    PanelClassifier,
    SymbolBaselines,
    TreeCorrection,
    _pooled_har_roll,
    _split_val,
    fold_masks,
    min_symbol_rows,
)
from cascade_ml.panel.run import read_panel


def _timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipeline", default="pipelines/universe.yaml")
    parser.add_argument("--fold", type=int, default=None, help="walk-forward fold (default last)")
    parser.add_argument("--strides", type=int, nargs="+", default=[6, 12])
    parser.add_argument("--only-lgbm", action="store_true", help="skip the baselines' timings")
    args = parser.parse_args()
    config = load_pipeline(args.pipeline)
    cfg, task = config.panel, config.task
    panel = read_panel(MarketStore(config.store.root), task, cfg)
    folds = [f for f in time_folds(panel, cfg, task.bar) if 0 <= f.k < cfg.n_folds]
    fold = folds[-1] if args.fold is None else folds[args.fold]
    frame, h, bar = panel.frame, panel.horizon, task.bar
    train, test = fold_masks(frame, fold, cfg, h, bar)
    own, _ = fold_masks(frame, fold, cfg, h, bar, all_symbols=True)
    early, val, _ = _split_val(frame, train, cfg, h, bar)
    fe, fv = frame[early], frame[val]
    print(f"fold {fold.k}: {int(train.sum())} training rows ({len(fe)} early, {len(fv)} "
          f"validation), {int(test.sum())} test rows, {len(panel.inputs)} inputs, 1 thread")

    rows = []
    for kind in () if args.only_lgbm else LINEAR_KINDS:
        _, s = _timed(lambda kind=kind: LinearPanel(kind).fit(fe).predict(fv))
        rows.append((f"linear {kind}", s))
    min_rows = min_symbol_rows(cfg, bar)
    for name in () if args.only_lgbm else cfg.baselines:
        if name == "panel_har_roll":
            _, s = _timed(lambda: _pooled_har_roll(cfg, h, bar).choose(pd.concat([fe, fv]), fv))
        else:
            _, s = _timed(lambda name=name: SymbolBaselines([name], h, min_rows, cfg.har_roll)
                          .fit_predict(frame, own, test))
        rows.append((f"baseline {name}", s))
    for label, s in rows:
        print(f"  {label:<28}{s:8.2f} s")

    base = LinearPanel("panel_har").fit(fe)
    base_e, base_v = base.predict(fe), base.predict(fv)
    params = cfg.lgbm.model_dump()
    results = {}
    for stride in [cfg.row_stride, *args.strides]:
        tree, t_tree = _timed(lambda stride=stride: TreeCorrection(
            panel.inputs, params, cfg.seed, 1, stride).fit(fe, base_e))
        clf, t_clf = _timed(lambda stride=stride: PanelClassifier(
            panel.inputs, cfg.cascade_lgbm.model_dump(), cfg.seed, 1, stride).fit(fe))
        q = qlike(fv, to_variance(base_v + tree.predict(fv), fv, h))
        p = np.clip(clf.proba(fv), 1e-6, 1 - 1e-6)
        y = fv["cascade"].to_numpy(int)
        ll = log_loss(y, p, labels=[0, 1])
        results[stride] = (t_tree, t_clf, q, ll, average_precision_score(y, p) / y.mean())
    ref = results[cfg.row_stride]
    q_lin = qlike(fv, to_variance(base_v, fv, h))
    print(f"  pooled HAR alone: validation QLIKE {q_lin:.4f}")
    for stride, (t_tree, t_clf, q, ll, pr) in results.items():
        mark = " (configured)" if stride == cfg.row_stride else ""
        print(f"  row_stride {stride:>2}{mark}: tree {t_tree:6.2f} s + classifier {t_clf:6.2f} s "
              f"= {(t_tree + t_clf) / (ref[0] + ref[1]):.2f}x; validation QLIKE {q:.4f} "
              f"({q / ref[2]:.4f}x), cascade log loss {ll:.4f} ({ll / ref[3]:.4f}x), PR-AUC / "
              f"base {pr:.2f}")


if __name__ == "__main__":
    main()
