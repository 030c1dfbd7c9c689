"""Panel evaluation across time and across symbols.

Time: one calendar for the whole universe. The last ``final_frac`` of timestamps is the
untouched final period; the development span before it is cut into a purged expanding
walk-forward (``PurgedWalkForward`` on the unique timestamps, purge = H bars). Symbols: the
``holdout_symbols`` never enter a panel fit (leave-symbols-out) and are scored beside the
others, always at times after the training times. Each fold's fit is one engine task; the
HAR weights are then chosen fold by fold, each on data before its test window.
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
from cascade_ml.panel.fold import (
    Fold,
    FoldFit,
    choose_fold_weights,
    finish_fold,
    fit_fold,
    history_rows,
    usable,
)

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


def _fit_task(fold: Fold, frame: pd.DataFrame, inputs: list[str], cfg: PanelConfig,
              horizon: int, bar: pd.Timedelta, params: dict | None) -> FoldFit:
    started = time.perf_counter()
    keep = fold.k == cfg.n_folds  # the final period's models are the ones a bundle serves
    fit = fit_fold(fold, frame, inputs, cfg, horizon, bar, params, keep=keep)
    fit.choices["seconds"] = time.perf_counter() - started
    return fit


def finish_folds(fits: list[FoldFit], frame: pd.DataFrame, cfg: PanelConfig,
                 bar: pd.Timedelta, side: str = "long") -> tuple[pd.DataFrame, list[dict]]:
    """HAR weights and weight-dependent outputs of each fold, in time order: fold k's weights
    see its validation slice and the out-of-sample rows of folds before k (cheap, serial)."""
    outs, choices, history = [], [], []
    for fit in sorted(fits, key=lambda f: f.fold.k):
        past = pd.concat(history) if history else None
        weights = choose_fold_weights(fit, cfg, bar, past)
        out, chosen = finish_fold(fit, weights, cfg, side)
        outs.append(out)
        choices.append(chosen)
        history.append(history_rows(fit, frame))
    return pd.concat(outs).sort_index(), choices


def evaluate_panel(engine, panel: Panel, cfg: PanelConfig, side: str = "long",
                   params: dict | None = None, folds: list[Fold] | None = None, *,
                   bar: pd.Timedelta) -> PanelResult:
    """Fit every fold on the engine (the frame is shipped to the workers once), then choose the
    HAR weights fold by fold. ``bar`` is the task's interval (the purge is H bars of it)."""
    started = time.perf_counter()
    folds = folds if folds is not None else time_folds(panel, cfg)
    fits = engine.map(_fit_task, folds, panel.frame, panel.inputs, cfg, panel.horizon, bar,
                      params)
    oos, choices = finish_folds(fits, panel.frame, cfg, bar, side)
    for c in choices:
        log.info("panel fold %s: %s rows in %.1f s, linear %s, shrink %.2f, pooled har weight "
                 "%.2f", c["fold"], c["test_rows"], c["seconds"], c["linear"], c["shrink"],
                 c["har_weight"])
    return PanelResult(oos, choices, folds, {"evaluate_s": time.perf_counter() - started})
