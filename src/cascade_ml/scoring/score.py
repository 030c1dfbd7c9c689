"""Batch scoring of one or all task symbols: features table -> bundle -> forecasts + decision.

Rows are merged into ``scores/symbol=<S>/scores.parquet`` on the feature timestamp, so scoring
the same bar twice leaves one row (the later run wins) and a killed run leaves the previous table
intact (atomic write). This step reads the stored features table only: bringing data and
features up to date is the job of the steps before it (see ``cascade_ml.pipeline.score_step``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import SERVED_FORECASTS
from cascade_ml.contracts.layout import bundle_dir, features_path, scores_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.policy import PolicyConfig, decide
from cascade_ml.policy.models import Freshness, PolicyInputs, Position
from cascade_ml.scoring.bundles import load_serving_bundle
from cascade_ml.scoring.config import ScoringConfig
from cascade_ml.scoring.inputs import context_columns, policy_context, policy_forecast

DECISION_COLUMNS = ("hedge_ratio", "hedge_instrument", "leverage_cap", "size_cap", "action",
                    "fail_safe", "reasons")


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


def default_position(task: TaskConfig, scoring: ScoringConfig) -> Position:
    """The position behind stored decisions. Prices are 1 because only ratios and caps are
    stored, which do not depend on the price level."""
    return Position(side=task.side, notional=scoring.default_position_notional, entry_price=1.0,
                    mark_price=1.0, leverage=1.0, hedge_ratio=0.0)


def decision_columns(symbol: str, forecasts: pd.DataFrame, features: pd.DataFrame,
                     task: TaskConfig, scoring: ScoringConfig,
                     policy: PolicyConfig) -> pd.DataFrame:
    """The policy's decision for the default position on each forecast row, decided as of the
    row's own bar close (age 0) with the triggers and betas of that bar's feature row."""
    columns = context_columns(task.references_for(symbol), policy.proxy_window)
    wanted = [c for c in columns.names if c in features.columns]
    context = features.loc[forecasts.index, wanted].to_dict("records")
    position = default_position(task, scoring)
    fresh = Freshness(forecast_age_s=0.0, features_age_s=0.0, max_age_s=policy.max_data_age_s)
    rows = []
    for values, row in zip(forecasts.to_dict("records"), context, strict=True):
        triggers, cross = policy_context(row, columns)
        decision = decide(PolicyInputs(
            symbol=symbol, forecast=policy_forecast(values, task.horizon_hours),
            triggers=triggers, cross_asset=cross, position=position, equity=position.notional,
            freshness=fresh), policy)
        rows.append((decision.hedge_ratio, decision.hedge_instrument, decision.leverage_cap,
                     decision.size_cap_notional, decision.action, decision.fail_safe,
                     " | ".join(decision.reasons)))
    return pd.DataFrame(rows, index=forecasts.index, columns=list(DECISION_COLUMNS))


def score_symbol(store: MarketStore, task: TaskConfig, scoring: ScoringConfig,
                 policy: PolicyConfig, models_dir: Path, symbol: str) -> ScoreResult:
    """Score one symbol's newest rows and merge them into its scores table; CascadeError on bad
    input (no bundle, no features, mismatched features), with nothing written."""
    started = time.perf_counter()
    bundle = load_serving_bundle(models_dir, symbol, task)
    if not (store.root / features_path(symbol)).exists():
        raise CascadeError("no features table", features_path(symbol),
                           hint="run the features step first")
    features = store.read_table(features_path(symbol))
    if not len(features):
        raise CascadeError("no feature rows to score", features_path(symbol))
    bundle.validate_features(list(features.columns))
    rows = features.tail(scoring.score_rows)
    preds = bundle.predict(rows[list(bundle.feature_names)].to_numpy(dtype=np.float64))

    out = pd.DataFrame(index=rows.index.copy())
    out.index.name = "timestamp"
    for col in SERVED_FORECASTS:
        if col in preds:
            out[col] = np.asarray(preds[col], dtype=np.float64)
    out = out.join(decision_columns(symbol, out, rows, task, scoring, policy))
    out["model_version"] = str(bundle.version)
    out["feature_timestamp"] = rows.index
    out["scored_at"] = pd.Timestamp.now(tz="UTC")

    rel = scores_path(symbol)
    if (store.root / rel).exists():
        stored = store.read_table(rel)
        merged = pd.concat([stored[~stored.index.isin(out.index)], out]).sort_index(kind="stable")
    else:
        merged = out
    store.write_table(rel, merged, {"symbol": symbol, "horizon": int(bundle.horizon),
                                    "model_version": str(bundle.version),
                                    "bundle_dir": str(bundle_dir(models_dir, symbol))})
    return ScoreResult(symbol, len(out), len(merged), rows.index[-1], str(bundle.version),
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
