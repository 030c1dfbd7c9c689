"""Panel evaluation across time and across symbols.

Time: one calendar for the whole universe. The last ``final_frac`` of timestamps is the
untouched final period; the development span before it is cut into a purged expanding
walk-forward (``PurgedWalkForward`` on the unique timestamps, purge = H bars). Symbols: the
``holdout_symbols`` never enter a panel fit (leave-symbols-out) and are scored beside the
others, always at times after the training times. Each fold is one engine task.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cascade_ml.errors import CascadeError
from cascade_ml.models.splits import PurgedWalkForward, final_split
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.dataset import TIMESTAMP, Panel
from cascade_ml.panel.fold import Fold, run_fold, usable

log = logging.getLogger(__name__)


@dataclass
class PanelResult:
    """Out-of-sample forecasts of every fold (``fold == n_folds`` is the final period)."""

    oos: pd.DataFrame
    choices: list[dict]
    folds: list[Fold]
    timings: dict = field(default_factory=dict)


def time_folds(panel: Panel, cfg: PanelConfig) -> list[Fold]:
    """Walk-forward folds over the development times, then the final period as the last fold."""
    times = pd.DatetimeIndex(np.sort(panel.frame.loc[usable(panel.frame), TIMESTAMP].unique()))
    if len(times) < panel.horizon * 10:
        raise CascadeError(f"the panel spans only {len(times)} timestamps", "panel")
    dev, final = final_split(times, cfg.final_frac, panel.horizon)
    dev_times = times[dev]
    folds = []
    splitter = PurgedWalkForward(cfg.n_folds, panel.horizon, 0, cfg.min_train_frac)
    for k, (tr, te) in enumerate(splitter.split(dev_times)):
        folds.append(Fold(k, dev_times[tr[-1]], dev_times[te[0]], dev_times[te[-1]]))
    if len(final):
        folds.append(Fold(cfg.n_folds, dev_times[-1], times[final[0]], times[final[-1]]))
    return folds


def _fold_task(fold: Fold, frame: pd.DataFrame, inputs: list[str], cfg: PanelConfig,
               horizon: int, side: str, params: dict | None) -> tuple[pd.DataFrame, dict]:
    started = time.perf_counter()
    keep = fold.k == cfg.n_folds  # the final period's models are the ones a bundle serves
    out, choices = run_fold(fold, frame, inputs, cfg, horizon, side, params, keep=keep)
    choices["seconds"] = time.perf_counter() - started
    return out, choices


def evaluate_panel(engine, panel: Panel, cfg: PanelConfig, side: str = "long",
                   params: dict | None = None, folds: list[Fold] | None = None) -> PanelResult:
    """Run every fold on the engine; the frame is shipped to the workers once."""
    started = time.perf_counter()
    folds = folds if folds is not None else time_folds(panel, cfg)
    results = engine.map(_fold_task, folds, panel.frame, panel.inputs, cfg, panel.horizon, side,
                         params)
    oos = pd.concat([r[0] for r in results]).sort_index()
    choices = [r[1] for r in results]
    for c in choices:
        log.info("panel fold %s: %s rows in %.1f s, linear %s, shrink %.2f, har weight %.2f",
                 c["fold"], c["test_rows"], c["seconds"], c["linear"], c["shrink"],
                 c["har_weight"])
    return PanelResult(oos, choices, folds, {"evaluate_s": time.perf_counter() - started})
