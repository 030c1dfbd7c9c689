"""What the service holds in memory, and the poller that refreshes it.

Requests only read ``ServingState.models``, ``ServingState.forecasts`` and
``ServingState.monitors`` (plain dicts whose values are immutable records). The poller builds new
records off the request path and swaps them in with a single dict assignment, so a request sees
either the old bundle/forecast or the new one, never a mix, and in-flight requests keep the
reference they already took.

The monitor's verdict (the report the live loop stores at ``contracts.layout.monitor_path``) is
attached to the forecast it judges: a report on the forecast's bar or a newer one puts its
``degrade_reasons`` on the served ``Forecast`` (``monitor_reasons``), so a decision and the
reasons it must fail safe for always come from one record. The response is graded as in the
live loop (``monitoring.fallback``): missing or stale inputs fail safe, drift alone swaps the
forecast the policy reads for the baseline forecaster's (HAR and climatology) on the same bar
and names it (``Forecast.baseline``). A report on an older bar than the forecast is ignored for
decisions (it judged inputs the forecast no longer uses) but still shown and exported.

With ``policy.forecast_halflife_bars`` set, the served forecast's policy block reads its vol
smoothed over the stored vol forecasts of the bars before it (``forecasting.smoothing``, the
scores table's last ``window_bars``), as the backtest's policy does; ``Forecast.smoothing`` says
why when there are none (a first bar) and the answer's reasons repeat it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import SERVED_FORECASTS, VOL_FORECAST
from cascade_ml.contracts.layout import features_path, monitor_path, scores_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.forecasting import Forecaster, forecaster_dir, read_forecaster
from cascade_ml.forecasting.inputs import (
    ContextColumns,
    context_columns,
    finite,
    policy_context,
    policy_forecast,
    trailing_vol,
)
from cascade_ml.forecasting.loader import check_task
from cascade_ml.forecasting.smoothing import smoothed_forecast, window_bars
from cascade_ml.monitoring.exporter import export_reports
from cascade_ml.monitoring.fallback import Fallbacks, baseline_reason
from cascade_ml.monitoring.health import MonitorReport
from cascade_ml.monitoring.persist import StoredReport, read_report
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.policy.schemas import CrossAsset, Triggers
from cascade_ml.policy.schemas import Forecast as PolicyForecast
from cascade_ml.serving.metrics import ServiceMetrics
from cascade_ml.serving.tables import mtime, read_if_changed

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ModelSlot:
    """A loaded forecaster (any kind) and where it came from."""

    bundle: Forecaster
    version: str
    path: Path
    signature: tuple
    loaded_at: float


@dataclass(frozen=True, eq=False)  # identity hash: cheap, and unchanged forecasts keep theirs
class Forecast:
    """The latest forecast for one symbol, as served, with the policy blocks built from it once."""

    symbol: str
    timestamp: pd.Timestamp  # feature bar open time
    available_at: float  # epoch seconds of that bar's close: when the forecast could exist
    model_version: str
    values: dict[str, float]
    source: str  # "scores" (batch scoring), "live" (scored by the service on the latest row) or
    # "predictions" (the walk-forward's out-of-sample forecast, served for a past time: as_of)
    policy: PolicyForecast  # the values as the policy reads them (sigma_h = vol, not variance)
    triggers: Triggers = field(default_factory=Triggers)  # from the forecast bar's feature row
    cross: CrossAsset = field(default_factory=CrossAsset)
    trailing_vol: float | None = None  # the perp's trailing realised vol at that bar, annualised
    monitor_reasons: tuple[str, ...] = ()  # the monitor's degrade reasons on this bar's inputs
    baseline: str | None = None  # drift alone: ``policy`` is the baseline forecaster's, and why
    smoothing: str | None = None  # why ``policy``'s vol is not smoothed though a half-life is set

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.available_at


@dataclass(frozen=True, eq=False)
class MonitorSlot:
    """The monitor's latest stored report on one symbol, summarised once for ``/v1/models``."""

    bar: pd.Timestamp  # open time of the feature bar the report judged
    report: MonitorReport
    reasons: tuple[str, ...]
    summary: dict

    @classmethod
    def of(cls, stored: StoredReport) -> MonitorSlot:
        report = stored.report
        return cls(stored.bar, report, tuple(report.degrade_reasons), report.to_dict())

    def covers(self, forecast: Forecast | None) -> bool:
        """True when the report judged the forecast's bar or a newer one: its reasons hold for
        that forecast. An older report says nothing about the inputs the forecast used."""
        return forecast is not None and self.bar >= forecast.timestamp

    def block(self, forecast: Forecast | None) -> dict:
        """``to_dict()`` plus the bar judged and whether it governs the served forecast."""
        return {**self.summary, "bar": self.bar.isoformat(), "in_force": self.covers(forecast)}


@dataclass
class ServingState:
    """Everything the request handlers read; replaced piecewise by the poller."""

    models: dict[str, ModelSlot] = field(default_factory=dict)
    forecasts: dict[str, Forecast] = field(default_factory=dict)
    load_errors: dict[str, str] = field(default_factory=dict)
    monitors: dict[str, MonitorSlot] = field(default_factory=dict)
    monitor_errors: dict[str, str] = field(default_factory=dict)
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


def forecast_record(symbol: str, ts: object, version: str, raw: Mapping[str, object],
                    source: str, bar: pd.Timedelta, horizon_hours: float) -> Forecast:
    """A served ``Forecast`` of one stored or scored row (its served columns, finite ones only),
    available at the close of its bar ``ts``."""
    values = {k: v for k in SERVED_FORECASTS if (v := finite(raw.get(k))) is not None}
    ts = pd.Timestamp(ts)
    return Forecast(symbol, ts, (ts + bar).timestamp(), version, values, source,
                    policy_forecast(values, horizon_hours))


class Poller:
    """Reload forecasters, scores, input and feature rows of the task's symbols when their files
    change. Symbols served by one folder (the universe's panel bundle) share one loaded
    forecaster; its input rows are read per symbol from the table it names."""

    def __init__(self, store: MarketStore, task: TaskConfig, models_dir: Path, policy: PolicyConfig,
                 max_age_s: float, state: ServingState, metrics: ServiceMetrics) -> None:
        self.store = store
        self.task = task
        self.models_dir = Path(models_dir)
        self.max_age_s = max_age_s
        self.state = state
        self.metrics = metrics
        self.bar = task.bar
        self.halflife = policy.forecast_halflife_bars
        self.columns: dict[str, ContextColumns] = {
            s: context_columns(task.references_for(s), policy, task.bar) for s in task.symbols}
        self._seen_bundles: dict[str, tuple] = {}
        # table path -> (file mtime, value read from it)
        # scores: the newest stored forecast and the stored vol forecasts (smoothing's history)
        self._scores: dict[str, tuple[int | None, tuple[Forecast | None, pd.Series]]] = {}
        self._features: dict[str, tuple[int | None, pd.DataFrame | None]] = {}
        self._monitors: dict[str, tuple[int | None, MonitorSlot | None]] = {}
        self._live: dict[str, tuple[tuple, Forecast]] = {}
        self._read: dict[Path, tuple[tuple, Forecaster]] = {}  # folder -> (signature, loaded)
        self._inputs: dict[str, tuple[tuple, pd.DataFrame | None]] = {}
        self.fallbacks = Fallbacks(store, task.horizon,
                                   lambda s: store.read_table(features_path(s)))

    # ------------------------------------------------------------------ one poll
    def poll(self) -> None:
        """One refresh of every symbol; errors are recorded, never raised into the server."""
        errors = []
        for symbol in self.task.symbols:
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
        for symbol, fc in self.state.forecasts.items():
            age = fc.age(now)
            self.metrics.forecast_age.labels(symbol).set(age)
            self.metrics.forecast_stale.labels(symbol).set(1.0 if age > self.max_age_s else 0.0)
        for symbol in self.task.symbols:
            loaded = 1.0 if symbol in self.state.models else 0.0
            self.metrics.model_loaded.labels(symbol).set(loaded)

    def _poll_symbol(self, symbol: str) -> None:
        monitor = self._refresh_monitor(symbol)
        features = self._read_features(symbol)
        self._reload_bundle(symbol)
        scored, history = self._read_scores(symbol)
        chosen = _newest(scored, self._live_forecast(symbol))
        if chosen is not None and self.halflife > 0:  # as the backtest's policy reads it
            policy, note = smoothed_forecast(chosen.policy, history, chosen.timestamp,
                                             self.halflife, self.bar)
            chosen = replace(chosen, policy=policy, smoothing=note)
        if chosen is not None and features is not None and chosen.timestamp in features.index:
            row = features.loc[chosen.timestamp].to_dict()
            triggers, cross = policy_context(row, self.columns[symbol])
            chosen = replace(chosen, triggers=triggers, cross=cross,
                             trailing_vol=trailing_vol(row, self.columns[symbol]))
        if chosen is not None and monitor is not None and monitor.covers(chosen):
            chosen = replace(chosen, monitor_reasons=monitor.reasons)
        current = self.state.forecasts.get(symbol)
        if chosen is not None and current is not None and _key(current) == _key(chosen):
            return  # unchanged: keep the same object (per-forecast work stays cached)
        if chosen is not None and chosen.monitor_reasons:
            chosen = self._graded(chosen, monitor.report, features)
        if chosen is not None:
            self.state.forecasts = {**self.state.forecasts, symbol: chosen}
        elif symbol in self.state.forecasts:
            self.state.forecasts = {k: v for k, v in self.state.forecasts.items() if k != symbol}

    def _graded(self, forecast: Forecast, report: MonitorReport,
                features: pd.DataFrame | None) -> Forecast:
        """Drift alone: the forecast with the baseline's values for the policy
        (``monitoring.fallback``); anything else, or no baseline to be had, as it is (the
        decision fails safe on ``monitor_reasons``)."""
        slot = self.state.models.get(forecast.symbol)
        if (slot is None or features is None or forecast.timestamp not in features.index
                or report.fail_safe_reasons):
            return forecast
        _, values = self.fallbacks.grade(forecast.symbol, slot.bundle, features,
                                         forecast.timestamp, (), report.drift_reasons)
        if values is None:
            return forecast
        policy = policy_forecast(values, self.task.horizon_hours)
        return replace(forecast, policy=policy, baseline=baseline_reason(
            policy, self.task.horizon_hours, forecast.model_version, report.drift_reasons))

    # ------------------------------------------------------------------ bundles
    def _reload_bundle(self, symbol: str) -> None:
        directory = forecaster_dir(self.models_dir, symbol)
        signature = _file_signature(directory)
        if signature == self._seen_bundles.get(symbol):
            return
        self._seen_bundles[symbol] = signature
        if not signature:
            return  # folder removed: keep serving the loaded bundle, if any
        try:
            bundle = self._read_folder(directory, signature)
            check_task(bundle, symbol, self.task, str(directory))
            if (self.store.root / bundle.input_table(symbol)).exists():
                bundle.input_rows(self.store, symbol, last=1)  # refuses mismatched columns
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

    def _read_folder(self, directory: Path, signature: tuple) -> Forecaster:
        """The forecaster in ``directory``, read once per version of its files."""
        cached = self._read.get(directory)
        if cached is not None and cached[0] == signature:
            return cached[1]
        forecaster = read_forecaster(directory)
        self._read[directory] = (signature, forecaster)
        return forecaster

    def _load_failed(self, symbol: str, message: str) -> None:
        kept = self.state.models.get(symbol)
        note = f"kept version {kept.version}" if kept else "no model serving"
        log.error("bundle for %s not loaded (%s): %s", symbol, note, message)
        self.state.load_errors = {**self.state.load_errors, symbol: message}
        self.metrics.reloads.labels(symbol, "error").inc()

    # ------------------------------------------------------------------ monitor reports
    def _refresh_monitor(self, symbol: str) -> MonitorSlot | None:
        """The symbol's monitor slot, re-read when its report file changes; exported to
        /metrics on change. An unreadable report keeps the previous one and is shown as
        ``monitor_error`` in /v1/models (logged once)."""
        try:
            slot = self._read_if_changed(
                self._monitors, monitor_path(symbol),
                lambda stored: None if stored is None else MonitorSlot.of(stored),
                read=lambda rel: read_report(self.store.root / rel, symbol))
        except CascadeError as exc:
            if self.state.monitor_errors.get(symbol) != exc.message:
                log.error("monitor report of %s not read (previous one kept): %s", symbol,
                          exc.message)
                self.state.monitor_errors = {**self.state.monitor_errors, symbol: exc.message}
            return self.state.monitors.get(symbol)
        if symbol in self.state.monitor_errors:
            self.state.monitor_errors = {k: v for k, v in self.state.monitor_errors.items()
                                         if k != symbol}
        if slot is not self.state.monitors.get(symbol):
            monitors = {k: v for k, v in self.state.monitors.items() if k != symbol}
            if slot is not None:
                monitors[symbol] = slot
            self.state.monitors = monitors
            export_reports(self.metrics.registry, [m.report for m in monitors.values()])
        return slot

    # ------------------------------------------------------------------ tables
    def _read_features(self, symbol: str) -> pd.DataFrame | None:
        """The last few feature rows, re-read only when the table file changes."""
        return self._read_if_changed(self._features, features_path(symbol),
                                     lambda frame: frame.tail(4))

    def _read_scores(self, symbol: str) -> tuple[Forecast | None, pd.Series]:
        """The newest stored forecast and the last ``window_bars`` stored vol forecasts (the
        smoothed forecast's history), re-read only when the scores table changes."""
        def newest(frame: pd.DataFrame) -> tuple[Forecast | None, pd.Series]:
            if not len(frame):
                return None, _NO_HISTORY
            row = frame.iloc[-1]
            history = (frame[VOL_FORECAST].astype(float).tail(window_bars(self.halflife))
                       if self.halflife > 0 and VOL_FORECAST in frame.columns else _NO_HISTORY)
            return self._forecast(symbol, frame.index[-1], str(row.get("model_version", "")),
                                  row.to_dict(), "scores"), history

        read = self._read_if_changed(self._scores, scores_path(symbol), newest)
        return (None, _NO_HISTORY) if read is None else read  # None: no table yet

    def _read_if_changed(self, cache: dict, rel: str, convert: Callable[[Any], Any],
                         read: Callable[[str], Any] | None = None) -> Any:
        """``serving.tables.read_if_changed`` on this poller's store."""
        return read_if_changed(self.store, cache, rel, convert, read)

    def _forecast(self, symbol: str, ts: object, version: str, raw: dict,
                  source: str) -> Forecast:
        return forecast_record(symbol, ts, version, raw, source, self.bar,
                               self.task.horizon_hours)

    def _read_inputs(self, symbol: str, slot: ModelSlot) -> pd.DataFrame | None:
        """The newest input rows of the serving forecaster, re-read only when its input table
        changes (or another forecaster serves)."""
        rel = slot.bundle.input_table(symbol)
        key = (rel, mtime(self.store.root / rel), slot.signature)
        cached = self._inputs.get(symbol)
        if cached is not None and cached[0] == key:
            return cached[1]
        rows = slot.bundle.input_rows(self.store, symbol, last=4) if key[1] is not None else None
        self._inputs[symbol] = (key, rows)
        return rows

    def _live_forecast(self, symbol: str) -> Forecast | None:
        """Score the newest input row with the serving forecaster (once per row and version)."""
        slot = self.state.models.get(symbol)
        if slot is None:
            return None
        rows = self._read_inputs(symbol, slot)
        if rows is None or not len(rows):
            return None
        ts = pd.Timestamp(rows.index[-1])
        key = (slot.version, slot.signature, ts)
        cached = self._live.get(symbol)
        if cached is not None and cached[0] == key:
            return cached[1]
        out = slot.bundle.predict(rows.to_numpy(dtype=np.float64)[-1:], symbol)
        forecast = self._forecast(symbol, ts, slot.version, {k: v[0] for k, v in out.items()},
                                  "live")
        self._live[symbol] = (key, forecast)
        return forecast


_NO_HISTORY = pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))


def _key(fc: Forecast) -> tuple:
    return (fc.timestamp, fc.model_version, fc.source, fc.values, fc.triggers, fc.cross,
            fc.trailing_vol, fc.monitor_reasons, fc.smoothing)


def _newest(scored: Forecast | None, live: Forecast | None) -> Forecast | None:
    """The forecast on the newest bar; on the same bar the service's own (current model) wins."""
    if scored is None or live is None:
        return scored or live
    if live.timestamp > scored.timestamp:
        return live
    if live.timestamp == scored.timestamp and live.model_version != scored.model_version:
        return live
    return scored
