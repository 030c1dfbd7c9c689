"""Panel evaluation across time and across symbols.

Time: one calendar for the whole universe. The timestamps from ``final_start`` on (else the last
``final_frac`` of them) are the untouched final period; the development span before it, less
the held-out periods and H bars around each, is cut into a purged expanding walk-forward
(``PurgedWalkForward`` on the unique timestamps, purge = H bars). Each held-out period is one
more fold (``k = -1, -2, ...``) fitted on the rows before it. Symbols: the
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

from cascade_ml.errors import CascadeError, ConfigError
from cascade_ml.models.splits import (
    PurgedWalkForward,
    bar_interval,
    final_split,
    holdout_exclusion,
    in_period,
)
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


def time_folds(panel: Panel, cfg: PanelConfig, bar: pd.Timedelta | None = None) -> list[Fold]:
    """The held-out periods' folds (``k < 0``), the walk-forward folds over the development
    times outside them, then the final period as the last fold. ``bar``: the task's interval
    (default: the calendar's median step)."""
    times = pd.DatetimeIndex(np.sort(panel.frame.loc[usable(panel.frame), TIMESTAMP].unique()))
    h = panel.horizon
    if len(times) < h * 10:
        raise CascadeError(f"the panel spans only {len(times)} timestamps", "panel")
    bar = bar if bar is not None else bar_interval(times)
    dev, final = final_split(times, cfg.final_frac, h, cfg.final_start, min_dev=h * 10,
                             where="panel.final_start")
    dev_times = times[dev]
    if len(final) and cfg.holdout_periods:
        late = holdout_exclusion(times[final], cfg.holdout_periods, h, bar)
        if late.any():
            raise ConfigError(f"a holdout period (or its {h} bars of purge) reaches into the "
                              f"final period starting {times[final[0]]}",
                              "panel.holdout_periods")
    held = []
    for i, period in enumerate(cfg.holdout_periods):
        inside = times[in_period(times, period)]
        before = times[times + h * bar <= (inside[0] if len(inside) else times[-1])]
        if len(inside) == 0 or len(before) < h * 10:
            raise ConfigError(f"holdout period {period.name} ({period.start:%Y-%m-%d}.."
                              f"{period.end:%Y-%m-%d}) has {len(inside)} bars and {len(before)} "
                              "bars before it to fit on", "panel.holdout_periods",
                              hint=f"both need data (at least {h * 10} bars before it)")
        held.append(Fold(-1 - i, before[-1], inside[0], inside[-1], period.name))
    wf_times = dev_times[~holdout_exclusion(dev_times, cfg.holdout_periods, h, bar)]
    folds = []
    splitter = PurgedWalkForward(cfg.n_folds, h, 0, cfg.min_train_frac)
    for k, (tr, te) in enumerate(splitter.split(wf_times)):
        folds.append(Fold(k, wf_times[tr[-1]], wf_times[te[0]], wf_times[te[-1]]))
    if len(final):
        folds.append(Fold(cfg.n_folds, dev_times[-1], times[final[0]], times[final[-1]]))
    return held + folds


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
    see its validation slice and the out-of-sample rows of folds before k (cheap, serial).

    A held-out period's fold (``k < 0``) comes last, with the walk-forward rows before its
    validation slice as history; its rows are never history for another fold."""
    outs, choices, history = {}, {}, []
    ordered = sorted(fits, key=lambda f: (f.fold.k < 0, f.fold.k))
    for fit in ordered:
        past = pd.concat(history) if history else None
        weights = choose_fold_weights(fit, cfg, bar, past)
        outs[fit.fold.k], choices[fit.fold.k] = finish_fold(fit, weights, cfg, side)
        if 0 <= fit.fold.k < cfg.n_folds:
            history.append(history_rows(fit, frame))
    return (pd.concat(outs.values()).sort_index(),
            [choices[k] for k in sorted(choices)])


def evaluate_panel(engine, panel: Panel, cfg: PanelConfig, side: str = "long",
                   params: dict | None = None, folds: list[Fold] | None = None, *,
                   bar: pd.Timedelta) -> PanelResult:
    """Fit every fold on the engine (the frame is shipped to the workers once), then choose the
    HAR weights fold by fold. ``bar`` is the task's interval (the purge is H bars of it)."""
    started = time.perf_counter()
    folds = folds if folds is not None else time_folds(panel, cfg, bar)
    fits = engine.map(_fit_task, folds, panel.frame, panel.inputs, cfg, panel.horizon, bar,
                      params)
    oos, choices = finish_folds(fits, panel.frame, cfg, bar, side)
    for c in choices:
        log.info("panel fold %s: %s rows in %.1f s, linear %s, shrink %.2f, pooled har weight "
                 "%.2f", c["fold"], c["test_rows"], c["seconds"], c["linear"], c["shrink"],
                 c["har_weight"])
    return PanelResult(oos, choices, folds, {"evaluate_s": time.perf_counter() - started})
