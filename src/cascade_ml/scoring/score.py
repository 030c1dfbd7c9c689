"""Batch scoring of one or all task symbols: input rows -> forecaster -> forecasts + decision.

The forecaster is whatever kind serves the symbol (a per-symbol bundle, or the universe's panel
bundle when ``models_dir`` is ``panel.bundle_dir``), loaded and checked by
``cascade_ml.forecasting.load_forecaster``; its rows are merged into
``scores/symbol=<S>/scores.parquet`` by ``cascade_ml.forecasting.scores.merge_scores``, so scoring
the same bar twice leaves one row (the later run wins) and a killed run leaves the previous table
intact (atomic write). This step reads stored tables only: bringing data and features up to date
is the job of the steps before it (see ``cascade_ml.pipeline.score_step``). With
``policy.forecast_halflife_bars`` set, each row's decision reads its vol forecast smoothed over
the stored ones before it (``cascade_ml.forecasting.smoothing``), as the backtest's policy does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cascade_ml.contracts.layout import features_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.forecasting import forecaster_dir, load_forecaster
from cascade_ml.forecasting.scores import (
    decision_columns,
    forecast_frame,
    merge_scores,
    vol_history,
    with_history,
)
from cascade_ml.policy import PolicyConfig
from cascade_ml.scoring.config import ScoringConfig


@dataclass(frozen=True)
class ScoreResult:
    """What one symbol's scoring did (``error`` set when it failed)."""

    symbol: str
    rows_scored: int = 0
    rows_total: int = 0
    last_timestamp: pd.Timestamp | None = None
    model_version: str | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        if not self.ok:
            return f"{self.symbol}: FAILED: {self.error}"
        return (f"{self.symbol}: scored {self.rows_scored} row(s) up to {self.last_timestamp} "
                f"with model {self.model_version}; table has {self.rows_total} row(s) "
                f"({self.seconds:.2f} s)")


def score_symbol(store: MarketStore, task: TaskConfig, scoring: ScoringConfig,
                 policy: PolicyConfig, models_dir: Path, symbol: str) -> ScoreResult:
    """Score one symbol's newest rows and merge them into its scores table; CascadeError on bad
    input (no bundle, no input rows, mismatched features), with nothing written."""
    started = time.perf_counter()
    forecaster = load_forecaster(models_dir, symbol, task)
    rows = forecaster.input_rows(store, symbol, last=scoring.score_rows)
    if not len(rows):
        raise CascadeError("no feature rows to score", forecaster.input_table(symbol))
    rel = features_path(symbol)  # the triggers and betas of the decision (any forecaster kind)
    features = store.read_table(rel) if (store.root / rel).exists() else None
    out = forecast_frame(forecaster, rows, symbol)
    # the vol forecasts the smoothed forecast reads: the stored ones, these rows in their place
    history = (with_history(vol_history(store, symbol), out)
               if policy.forecast_halflife_bars > 0 else None)
    out = out.join(decision_columns(symbol, out, features, task, policy,
                                    scoring.default_position_notional, history))
    out["model_version"] = str(forecaster.version)
    out["feature_timestamp"] = rows.index
    out["scored_at"] = pd.Timestamp.now(tz="UTC")
    merged = merge_scores(store, symbol, out, horizon=forecaster.horizon,
                          model_version=forecaster.version,
                          meta={"kind": forecaster.kind,
                                "bundle_dir": str(forecaster_dir(models_dir, symbol))})
    return ScoreResult(symbol, len(out), len(merged), rows.index[-1], str(forecaster.version),
                       time.perf_counter() - started)


def score(store: MarketStore, task: TaskConfig, scoring: ScoringConfig, policy: PolicyConfig,
          models_dir: Path, symbols: list[str] | None = None) -> list[ScoreResult]:
    """Score each symbol (default: every symbol of the task); one failure never stops the
    others, it is reported in that symbol's result."""
    results = []
    for symbol in symbols or list(task.symbols):
        try:
            results.append(score_symbol(store, task, scoring, policy, models_dir, symbol))
        except CascadeError as exc:
            results.append(ScoreResult(symbol, error=exc.message))
    return results
