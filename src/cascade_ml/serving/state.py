"""What the service holds in memory, and the poller that refreshes it.

Requests only read ``ServingState.models`` and ``ServingState.forecasts`` (plain dicts whose values
are immutable records). The poller builds new records off the request path and swaps them in with a
single dict assignment, so a request sees either the old bundle/forecast or the new one, never a
mix, and in-flight requests keep the reference they already took.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cascade_ml.config import PipelineConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.serving.decisions import CONTEXT_COLUMNS
from cascade_ml.serving.metrics import ServiceMetrics
from cascade_ml.serving.paths import features_relpath, scores_relpath

log = logging.getLogger(__name__)

FORECAST_KEYS = ("var_forecast", "vol_forecast", "cascade_prob", "var_q50", "var_q90", "var_q99")


@dataclass(frozen=True)
class ModelSlot:
    """A loaded bundle and where it came from."""

    bundle: object
    version: str
    path: Path
    signature: tuple
    loaded_at: float


@dataclass(frozen=True, eq=False)  # identity hash: per-forecast work is cached on the object
class Forecast:
    """The latest forecast for one symbol, as served."""

    symbol: str
    timestamp: pd.Timestamp  # feature bar open time
    available_at: float  # epoch seconds of that bar's close: when the forecast could exist
    model_version: str
    values: dict[str, float]
    source: str  # "scores" (batch scoring) or "live" (scored by the service on the latest row)
    context: dict[str, float] = field(default_factory=dict)  # triggers, betas of that bar

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.available_at


@dataclass
class ServingState:
    """Everything the request handlers read; replaced piecewise by the poller."""

    models: dict[str, ModelSlot] = field(default_factory=dict)
    forecasts: dict[str, Forecast] = field(default_factory=dict)
    load_errors: dict[str, str] = field(default_factory=dict)
    last_poll: float = 0.0
    poll_error: str | None = None


def _file_signature(directory: Path) -> tuple:
    """mtime/size of every file of a bundle dir: any rewrite of any file changes it."""
    if not directory.is_dir():
        return ()
    items = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            st = path.stat()
            items.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(items)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _clean(value: object) -> float | None:
    if value is None:
        return None
    out = float(value)  # type: ignore[arg-type]
    return None if math.isnan(out) else out


class Poller:
    """Reload bundles, scores and the latest feature rows when their files change."""

    def __init__(self, config: PipelineConfig, state: ServingState,
                 metrics: ServiceMetrics) -> None:
        self.config = config
        self.state = state
        self.metrics = metrics
        self.store = MarketStore(config.store.root)
        self.bar = pd.Timedelta(config.task.interval)
        self._seen_bundles: dict[str, tuple] = {}
        # table path -> (file mtime, value read from it)
        self._scores: dict[str, tuple[int | None, Forecast | None]] = {}
        self._features: dict[str, tuple[int | None, pd.DataFrame | None]] = {}
        self._live: dict[str, tuple[tuple, Forecast]] = {}

    # ------------------------------------------------------------------ discovery
    def symbols(self) -> list[str]:
        """Configured targets plus every symbol with a bundle folder."""
        found = set(self.config.task.symbols)
        root = self.config.serving.bundle_dir
        if root.is_dir():
            found |= {p.name for p in root.iterdir() if (p / "bundle.json").exists()}
        return sorted(found)

    # ------------------------------------------------------------------ one poll
    def poll(self) -> None:
        """One refresh of every symbol; errors are recorded, never raised into the server."""
        errors = []
        for symbol in self.symbols():
            try:
                self._poll_symbol(symbol)
            except Exception as exc:  # keep serving what we have; expose the problem
                message = f"{symbol}: {type(exc).__name__}: {exc}"
                if message not in (self.state.poll_error or ""):  # log a persistent one once
                    log.exception("refresh of %s failed", symbol)
                errors.append(message)
        self.state.poll_error = "; ".join(errors) or None
        self.state.last_poll = time.time()
        self.update_gauges()

    def update_gauges(self) -> None:
        now = time.time()
        max_age = self.config.policy.max_data_age_s
        for symbol, fc in self.state.forecasts.items():
            age = fc.age(now)
            self.metrics.forecast_age.labels(symbol).set(age)
            self.metrics.forecast_stale.labels(symbol).set(1.0 if age > max_age else 0.0)
        for symbol in self.symbols():
            loaded = 1.0 if symbol in self.state.models else 0.0
            self.metrics.model_loaded.labels(symbol).set(loaded)

    def _poll_symbol(self, symbol: str) -> None:
        features = self._read_features(symbol)
        self._reload_bundle(symbol, features)
        scored = self._read_scores(symbol)
        live = self._live_forecast(symbol, features)
        chosen = _newest(scored, live)
        if chosen is not None and features is not None and chosen.timestamp in features.index:
            row = features.loc[chosen.timestamp]
            context = {c: v for c in CONTEXT_COLUMNS
                       if c in row.index and (v := _clean(row[c])) is not None}
            chosen = replace(chosen, context=context)
        current = self.state.forecasts.get(symbol)
        if chosen is not None and current is not None and _key(current) == _key(chosen):
            return  # unchanged: keep the same object (per-forecast work stays cached)
        if chosen is not None:
            self.state.forecasts = {**self.state.forecasts, symbol: chosen}
        elif symbol in self.state.forecasts:
            self.state.forecasts = {k: v for k, v in self.state.forecasts.items() if k != symbol}

    # ------------------------------------------------------------------ bundles
    def _reload_bundle(self, symbol: str, features: pd.DataFrame | None) -> None:
        from cascade_ml.models.bundle import load_bundle

        directory = self.config.serving.bundle_dir / symbol
        signature = _file_signature(directory)
        if signature == self._seen_bundles.get(symbol):
            return
        self._seen_bundles[symbol] = signature
        if not signature:
            return  # folder removed: keep serving the loaded bundle, if any
        try:
            bundle = load_bundle(directory)
            if features is not None:
                bundle.validate_features(list(features.columns))
        except CascadeError as exc:
            self._load_failed(symbol, exc.message)
            return
        except Exception as exc:  # a corrupt model file may raise anything from lightgbm
            self._load_failed(symbol, f"{type(exc).__name__}: {exc}")
            return
        slot = ModelSlot(bundle, str(bundle.version), directory, signature, time.time())
        self.state.models = {**self.state.models, symbol: slot}  # the atomic swap
        self.state.load_errors = {k: v for k, v in self.state.load_errors.items() if k != symbol}
        self.metrics.reloads.labels(symbol, "ok").inc()
        log.info("serving %s model version %s from %s", symbol, slot.version, directory)

    def _load_failed(self, symbol: str, message: str) -> None:
        kept = self.state.models.get(symbol)
        note = f"kept version {kept.version}" if kept else "no model serving"
        log.error("bundle for %s not loaded (%s): %s", symbol, note, message)
        self.state.load_errors = {**self.state.load_errors, symbol: message}
        self.metrics.reloads.labels(symbol, "error").inc()

    # ------------------------------------------------------------------ tables
    def _read_features(self, symbol: str) -> pd.DataFrame | None:
        """The last few feature rows, re-read only when the table file changes."""
        return self._read_if_changed(self._features, features_relpath(symbol),
                                     lambda frame: frame.tail(4))

    def _read_scores(self, symbol: str) -> Forecast | None:
        """The newest stored forecast, re-read only when the scores table changes."""
        return self._read_if_changed(
            self._scores, scores_relpath(symbol),
            lambda frame: self._forecast_from_row(symbol, frame.index[-1], frame.iloc[-1])
            if len(frame) else None)

    def _read_if_changed(self, cache: dict, rel: str,
                         convert: Callable[[pd.DataFrame], Any]) -> Any:
        """``convert(table)``, cached per file modification time (None when there is no file)."""
        mtime = _mtime(self.store.root / rel)
        cached = cache.get(rel)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        value = convert(self.store.read_table(rel)) if mtime is not None else None
        cache[rel] = (mtime, value)
        return value

    def _forecast_from_row(self, symbol: str, ts: pd.Timestamp, row: pd.Series) -> Forecast:
        values = {k: v for k in FORECAST_KEYS
                  if k in row.index and (v := _clean(row[k])) is not None}
        ts = pd.Timestamp(ts)
        return Forecast(symbol, ts, (ts + self.bar).timestamp(), str(row.get("model_version", "")),
                        values, "scores")

    def _live_forecast(self, symbol: str, features: pd.DataFrame | None) -> Forecast | None:
        """Score the newest feature row with the serving bundle (once per row and version)."""
        slot = self.state.models.get(symbol)
        if slot is None or features is None or not len(features):
            return None
        ts = pd.Timestamp(features.index[-1])
        key = (slot.version, slot.signature, ts)
        cached = self._live.get(symbol)
        if cached is not None and cached[0] == key:
            return cached[1]
        bundle = slot.bundle
        x = features[list(bundle.feature_names)].to_numpy(dtype=np.float64)[-1:]
        out = bundle.predict(x)
        values = {k: v for k in FORECAST_KEYS if k in out and (v := _clean(out[k][0])) is not None}
        forecast = Forecast(symbol, ts, (ts + self.bar).timestamp(), slot.version, values, "live")
        self._live[symbol] = (key, forecast)
        return forecast


def _key(fc: Forecast) -> tuple:
    return (fc.timestamp, fc.model_version, fc.source, fc.values, fc.context)


def _newest(scored: Forecast | None, live: Forecast | None) -> Forecast | None:
    """The forecast on the newest bar; on the same bar the service's own (current model) wins."""
    if scored is None or live is None:
        return scored or live
    if live.timestamp > scored.timestamp:
        return live
    if live.timestamp == scored.timestamp and live.model_version != scored.model_version:
        return live
    return scored
