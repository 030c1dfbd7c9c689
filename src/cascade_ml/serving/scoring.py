"""Batch scoring: newest feature rows -> champion bundle -> forecasts + default decision -> store.

Run on a schedule (``cascade-ml score``) or as the pipeline's last step. Rows are merged into
``scores/symbol=<S>/scores.parquet`` on the feature timestamp, so scoring the same bar twice leaves
one row (the later run wins) and a killed run leaves the previous table intact (atomic write).
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import typer

from cascade_ml.config import PipelineConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.serving.decisions import default_decision_columns
from cascade_ml.serving.paths import features_relpath, scores_relpath

log = logging.getLogger(__name__)

FORECAST_COLUMNS = ("var_forecast", "vol_forecast", "cascade_prob", "var_q50", "var_q90", "var_q99")


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


def _maybe_ingest(config: PipelineConfig) -> None:
    """Fetch fresh data first when sources are configured and the ingest module is present."""
    if not config.sources:
        return
    try:
        ingest = importlib.import_module("cascade_ml.data.ingest")
    except ModuleNotFoundError:
        log.warning("sources configured but cascade_ml.data.ingest is not available; scoring "
                    "the data already in the store")
        return
    ingest.run_step(config)


def latest_features(store: MarketStore, config: PipelineConfig, symbol: str) -> pd.DataFrame:
    """The symbol's feature table, first brought up to date when the store has its bars.

    ``features.build.build_and_store`` skips the work when its manifest shows the same inputs and
    configuration, and otherwise rebuilds from data available by each row's bar close (no
    look-ahead), writing the same table the service reads, so batch and live scores agree.
    """
    if store.partitions("ohlcv", symbol):
        from cascade_ml.features.build import build_and_store

        build_and_store(store, symbol, config.task, config.features)
    return store.read_table(features_relpath(symbol))


def score_symbol(store: MarketStore, config: PipelineConfig, symbol: str) -> ScoreResult:
    """Score one symbol, merge its rows into the scores table; CascadeError on bad input."""
    from cascade_ml.models.bundle import load_bundle

    started = time.perf_counter()
    bundle_dir = config.serving.bundle_dir / symbol
    bundle = load_bundle(bundle_dir)
    features = latest_features(store, config, symbol)
    if not len(features):
        raise CascadeError("no feature rows to score", features_relpath(symbol))
    bundle.validate_features(list(features.columns))
    rows = features.tail(config.serving.score_rows)
    x = rows[list(bundle.feature_names)].to_numpy(dtype=np.float64)
    preds = bundle.predict(x)

    out = pd.DataFrame(index=rows.index.copy())
    out.index.name = "timestamp"
    for col in FORECAST_COLUMNS:
        if col in preds:
            out[col] = np.asarray(preds[col], dtype=np.float64)
    decisions = default_decision_columns(symbol, out, rows, config, bundle)
    out = out.join(decisions)
    out["model_version"] = str(bundle.version)
    out["feature_timestamp"] = rows.index
    out["scored_at"] = pd.Timestamp.now(tz="UTC")

    rel = scores_relpath(symbol)
    if (store.root / rel).exists():
        stored = store.read_table(rel)
        stored = stored[~stored.index.isin(out.index)]
        merged = pd.concat([stored, out]).sort_index(kind="stable")
    else:
        merged = out
    store.write_table(rel, merged, {"symbol": symbol, "model_version": str(bundle.version),
                                    "bundle_dir": str(bundle_dir)})
    return ScoreResult(symbol, len(out), len(merged), rows.index[-1], str(bundle.version),
                       time.perf_counter() - started)


def score(store: MarketStore, config: PipelineConfig, symbols: list[str] | None = None, *,
          update: bool = True) -> list[ScoreResult]:
    """Score each symbol (default: the pipeline's targets); one failure never stops the others.

    ``update`` first fetches new data from the configured sources (the pipeline turns it off when
    its own ingest step already ran).
    """
    if update:
        _maybe_ingest(config)
    results = []
    for symbol in symbols or list(config.task.symbols):
        try:
            results.append(score_symbol(store, config, symbol))
        except CascadeError as exc:
            results.append(ScoreResult(symbol, error=exc.message))
    return results


def run_step(config: PipelineConfig) -> None:
    """Pipeline step ``score``: print one line per symbol; raise if any symbol failed."""
    results = score(MarketStore(config.store.root), config, update="ingest" not in config.steps)
    for result in results:
        typer.echo(result.summary())
    failed = [r.symbol for r in results if not r.ok]
    if failed:
        raise CascadeError(f"scoring failed for {failed}", "step score")
