"""The live loop: at each bar close collect, build features, forecast, check, decide, execute;
retrain on a schedule. The same object runs live (wall clock, a real exchange) and in a replay
(simulated clock, the replay exchange); only the clock and the exchange differ.

One cycle, for the bar that closed last (``floor(now) - bar``):

1. ``collect``: candles, funding, open interest and Fear & Greed into the store, incrementally;
2. ``LiveFeatures.update``: the new feature rows, from a trailing window of history;
3. the bundle forecasts the newest row; the forecast and its age go to the policy, its vol
   smoothed over the stored ones with ``policy.forecast_halflife_bars`` set
   (``forecasting.smoothing``, as the backtest's policy reads it). In
   universe mode (a panel bundle serves the task, ``panel.enabled``) the row is the symbol's
   panel row at that bar, built this cycle from every symbol's feature rows known at it
   (``panel.newest.newest_panel``: its own scale-free columns and the market state), never
   from the stored panel table, which only the labels and score steps rebuild;
4. ``Guard.check`` (the monitor) and the circuit breakers (``monitoring.breakers``): missing or
   stale inputs and a tripped breaker make the decision the policy's fail-safe with the reasons
   named (``decide(..., monitor_reasons=...)``); drift alone is graded: the decision is made on
   the baseline forecaster (HAR and climatology, ``forecasting.baseline``) and says so. A panel
   bundle's guard watches the panel inputs it reads (its recent panel rows, profiled on panel
   rows of its training span), each in the family of the feature it is computed from;
5. the trading core (``trading.paper.PaperTrader``, the backtest engine's rules one bar at a
   time): first every position's bar (the protective stop and liquidation from the bar's high
   and low, marks, funding), then each symbol's decision applied at the close; its orders go
   through ``Executor.run_cycle``: within the caps, one book transaction per (symbol, bar) with
   the funding settled since the last cycle. The account (free cash, margin buckets, stops) is
   saved with the loop state;
6. the forecast merged into the scores table; the loop state saved. The monitor's report is
   written to the store (``contracts.layout.monitor_path``) before the forecast, so the service
   exports it and enforces its reasons on the same bar's forecast.

Restart safety: every write is atomic (store partitions and tables) or transactional (the
book), and each is idempotent on the bar: a restarted loop repeats the bar it was in, finds its
data already collected, its feature rows already built, and the book cycle already recorded (or
not at all), so nothing is duplicated or lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import SERVED_FORECASTS
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.cache import CachedMarketStore
from cascade_ml.data.collect import CollectPlan, CollectResult, collect
from cascade_ml.data.store import to_utc
from cascade_ml.errors import CascadeError, ModelBundleError
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.incremental import LiveFeatures
from cascade_ml.forecasting import Forecaster, forecaster_dir, load_forecaster, read_forecaster
from cascade_ml.forecasting.inputs import (
    context_columns,
    policy_context,
    policy_forecast,
    trailing_vol,
)
from cascade_ml.forecasting.pyfunc import log_forecast_model
from cascade_ml.forecasting.scores import merge_scores, vol_history
from cascade_ml.forecasting.smoothing import smoothed_forecast
from cascade_ml.labels.config import LabelConfig
from cascade_ml.live.clock import Clock
from cascade_ml.live.config import LiveConfig
from cascade_ml.live.state import LoopState
from cascade_ml.models.bundle import BUNDLE_FILE
from cascade_ml.models.config import ModelConfig
from cascade_ml.monitoring.alerts import send_alerts
from cascade_ml.monitoring.breakers import BreakerEvent, BreakerState, BreakerStatus
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.fallback import Fallbacks, baseline_reason
from cascade_ml.monitoring.guard import Guard, evaluation_span
from cascade_ml.monitoring.health import MonitorReport
from cascade_ml.monitoring.persist import write_report
from cascade_ml.monitoring.run import family_map, training_span_of
from cascade_ml.panel.bundle import KIND as PANEL_KIND
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.dataset import Panel, column_families
from cascade_ml.panel.newest import newest_panel, panel_row
from cascade_ml.policy import PolicyConfig, decide
from cascade_ml.policy.schemas import Decision, Freshness, PolicyInputs
from cascade_ml.policy.schemas import Forecast as PolicyForecast
from cascade_ml.tracking import TrackingConfig
from cascade_ml.trading.book import FundingEvent, PaperBook, funding_events
from cascade_ml.trading.config import TradingConfig
from cascade_ml.trading.execution import Executor
from cascade_ml.trading.paper import (
    BarPrices,
    PaperTrader,
    Settlement,
    bar_prices,
    targets_from_decision,
)

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class LoopSections:
    """The pipeline sections the loop reads (the CLI builds them; live never reads the file)."""

    task: TaskConfig
    features: FeatureConfig
    labels: LabelConfig
    models: ModelConfig
    policy: PolicyConfig
    monitoring: MonitoringConfig
    tracking: TrackingConfig
    live: LiveConfig
    trading: TradingConfig
    panel: PanelConfig = field(default_factory=PanelConfig)
    """Read in universe mode (a panel bundle serves the task): how its rows are built."""


@dataclass(frozen=True)
class LoopPaths:
    """Where this run keeps its store, models, MLflow registry, book and state."""

    store: Path
    models_dir: Path
    tracking: TrackingConfig
    db_url: str
    state_file: Path


@dataclass(frozen=True)
class SymbolCycle:
    """What one symbol's cycle did."""

    symbol: str
    bar: pd.Timestamp
    decision: Decision
    written: bool
    fills: int
    refused: int
    equity: float
    forecast_age_s: float
    model_version: str
    monitor: MonitorReport
    event: str = "held"  # the bar's settlement: flat, held, stop or liquidation
    fallback: bool = False  # decided on the baseline forecaster (the inputs drifted)

    def line(self) -> str:
        flag = "FAIL-SAFE " if self.decision.fail_safe else "BASELINE " if self.fallback else ""
        if self.event in ("stop", "liquidation"):
            flag = f"{self.event.upper()} {flag}"
        done = "" if self.written else " (already in the book)"
        why = ""
        if self.decision.fail_safe:
            why = "; " + "; ".join(r for r in self.decision.reasons if r.startswith("FAIL-SAFE"))
        return (f"{self.bar:%Y-%m-%d %H:%M} {self.symbol}: {flag}{self.decision.action} hedge "
                f"{self.decision.hedge_ratio:.0%} via {self.decision.hedge_instrument}, leverage "
                f"cap {self.decision.leverage_cap:.2f}x; fills {self.fills}, refused "
                f"{self.refused}; equity {self.equity:,.2f}; model v{self.model_version}{done}"
                f"{why}")


@dataclass
class CycleReport:
    """One cycle: what was collected and each symbol's outcome."""

    now: pd.Timestamp
    bar: pd.Timestamp
    collected: CollectResult
    symbols: list[SymbolCycle] = field(default_factory=list)
    seconds: float = 0.0
    breakers: list[BreakerStatus] = field(default_factory=list)
    alerts: list[BreakerEvent] = field(default_factory=list)  # trips and resets of this cycle


@dataclass(frozen=True)
class RetrainReport:
    """One retraining: per symbol the registered version, whether it was promoted, and why."""

    at: pd.Timestamp
    lines: list[str]


class LiveLoop:
    """The loop over one store, one book and one exchange (see the module docstring)."""

    def __init__(self, sections: LoopSections, paths: LoopPaths, *, clock: Clock,
                 plan: CollectPlan, executor: Executor,
                 next_retrain: Callable[[pd.Timestamp], pd.Timestamp | None] | None = None,
                 persist_features_every: int = 1) -> None:
        self.s, self.paths, self.clock, self.plan, self.executor = (sections, paths, clock,
                                                                    plan, executor)
        self.book: PaperBook = executor.book
        self.store = CachedMarketStore(paths.store)
        self.task = sections.task
        self.bar = sections.task.bar
        self.next_retrain = next_retrain
        self.state = LoopState.load(paths.state_file)
        self.trader = PaperTrader(self.task.symbols, self.task.all_symbols, self.task.side,
                                  sections.trading, sections.policy)
        if "trading" in self.state.extra:
            self.trader.load(self.state.extra["trading"])
        self.breakers = BreakerState.from_dict(self.state.extra.get("breakers"))
        self.fallbacks = Fallbacks(self.store, self.task.horizon,
                                   lambda s: self.features[s].table)  # fitted on drift
        self.features = {s: LiveFeatures(self.store, s, self.task, sections.features,
                                         sections.live.warmup_bars) for s in self.task.symbols}
        self.columns = {s: context_columns(self.task.references_for(s), sections.policy,
                                           self.task.bar)
                        for s in self.task.symbols}
        self.bundles: dict[str, Forecaster] = {}
        self.guards: dict[str, Guard] = {}
        self.last_panel: Panel | None = None  # universe mode: the panel rows of the last cycle
        self.panel_rows: dict[str, pd.DataFrame] = {}  # universe mode: what each guard watches
        self._history: tuple[str, Panel] | None = None
        self.on_cycle: list[Callable[[CycleReport], None]] = []
        self.persist_features_every = max(persist_features_every, 1)

    # ------------------------------------------------------------------ models
    def load_models(self) -> list[str]:
        """Load every symbol's bundle (training first where there is none); returns the
        symbols that had to be trained."""
        missing = [s for s in self.task.symbols
                   if not (forecaster_dir(self.paths.models_dir, s) / BUNDLE_FILE).exists()]
        if missing and self.s.panel.enabled:
            raise ModelBundleError("no universe bundle", str(self.paths.models_dir),
                                   hint="train it: cascade-ml run pipelines/universe.yaml")
        if missing:
            self.retrain(missing, scheduled=False)
        for symbol in self.task.symbols:
            if symbol not in self.bundles:
                self._use_bundle(symbol)
        return missing

    def _use_bundle(self, symbol: str) -> None:
        bundle = load_forecaster(self.paths.models_dir, symbol, self.task)
        table, family_of = self.features[symbol].table, None
        if bundle.kind == PANEL_KIND:  # the guard watches the panel rows the bundle reads
            table = self._panel_history(bundle).rows_of(symbol)
            family_of = column_families(bundle.feature_names,
                                        family_map(symbol, self.task, self.s.features))
            self.panel_rows[symbol] = table.tail(self._watched_rows)
        else:
            bundle.input_rows(self.store, symbol, last=1)  # refuses mismatched columns by name
        self.bundles[symbol] = bundle
        self.guards[symbol] = Guard(self.store, symbol, self.task, self.s.features,
                                    self.s.monitoring, bundle, table, family_of=family_of)
        for waiver in self.guards[symbol].waivers:
            log.info("%s v%s: %s", symbol, bundle.version, waiver.reason())

    @property
    def _watched_rows(self) -> int:
        return self.s.monitoring.recent_rows + self.s.monitoring.missing_rows

    def _panel_history(self, bundle: Forecaster) -> Panel:
        """Every symbol's panel rows from the start of the rows the panel bundle was trained
        and judged on (its guard's profile), built once per bundle version from the loop's
        feature tables (the stored panel table may be stale or absent)."""
        if self._history is not None and self._history[0] == bundle.version:
            return self._history[1]
        start = min(training_span_of(bundle)[0], evaluation_span(bundle)[0])
        tables = {s: f.table for s, f in self.features.items()}
        times = pd.DatetimeIndex([])
        for table in tables.values():
            times = times.union(table.index[table.index >= start])
        panel = newest_panel(tables, times, self.s.panel, self.task.horizon, self.task.side,
                             self.s.labels)
        self._history = (bundle.version, panel)
        return panel

    def retrain(self, symbols: list[str] | None = None, *, scheduled: bool = True
                ) -> RetrainReport:
        """Full features and labels on the loop's store, then the models step with its
        champion/challenger rule; a promoted champion is loaded for the next cycle. A failed
        retraining is reported and the champion keeps serving."""
        from cascade_ml.labels.build import build_and_store_labels
        from cascade_ml.models.train import train_symbol

        now = self.clock.now
        if self.s.panel.enabled:
            return self._reload_panel(now, scheduled)
        lines = []
        models = self.s.models.model_copy(update={"models_dir": self.paths.models_dir})
        for symbol in symbols or list(self.task.symbols):
            started = time.perf_counter()
            try:
                self.features[symbol].rebuild()
                build_and_store_labels(self.store, symbol, self.task, self.s.labels,
                                       oi_venues=self.s.features.oi_venues)
                report = train_symbol(self.store, symbol, self.task.horizon, models,
                                      self.paths.tracking, log_model=log_forecast_model,
                                      plots=False)
            except CascadeError as exc:
                if symbol not in self.bundles:
                    raise  # nothing to serve without a first model
                lines.append(f"{symbol}: retraining failed, the champion keeps serving: "
                             f"{exc.message}")
                continue
            lines.append(f"{symbol}: v{report.version} "
                         f"{'PROMOTED' if report.promoted else 'not promoted'} ({report.reason}); "
                         f"{time.perf_counter() - started:.1f} s")
            if report.promoted or symbol not in self.bundles:
                self._use_bundle(symbol)
        if scheduled:
            self.state.last_retrain = now
            self.state.retrains += 1
            self.state.next_retrain = self.next_retrain(now) if self.next_retrain else None
            self.state.save(self.paths.state_file)
        for line in lines:
            log.info("retrain at %s: %s", now, line)
        return RetrainReport(now, lines)

    def _reload_panel(self, now: pd.Timestamp, scheduled: bool) -> RetrainReport:
        """Universe mode: the panel is retrained by the pipeline's train step (``cascade-ml
        run``), not by the loop; at the retraining time the loop loads the bundle now in
        ``panel.bundle_dir`` (a newer version, if the pipeline exported one)."""
        serving = {b.version for b in self.bundles.values()}
        version = read_forecaster(self.paths.models_dir).version
        changed = serving != {version}
        if changed:  # a new bundle: its guards are fitted on its own training span
            for symbol in self.task.symbols:
                self._use_bundle(symbol)
        lines = [f"panel: serving v{version}{' (loaded)' if changed else ' (unchanged)'}; the "
                 "universe is retrained by the pipeline's train step"]
        if scheduled:
            self.state.last_retrain = now
            self.state.retrains += 1
            self.state.next_retrain = self.next_retrain(now) if self.next_retrain else None
            self.state.save(self.paths.state_file)
        log.info("retrain at %s: %s", now, lines[0])
        return RetrainReport(now, lines)

    def start(self) -> list[str]:
        """Load (or first train) the models; run a retraining the schedule owed while the loop
        was down; note when the next one is due. Returns the symbols first trained here."""
        trained = self.load_models()
        now = self.clock.now
        due = self.state.next_retrain
        if due is not None and due <= now:
            log.info("retraining that was due at %s (the loop was not running)", due)
            self.retrain()
        elif due is None and self.next_retrain is not None:
            self.state.next_retrain = self.next_retrain(now)
            self.state.save(self.paths.state_file)
        return trained

    def flush(self) -> None:
        """Write what is held in memory only (feature rows not yet persisted)."""
        for features in self.features.values():
            features.save()

    # ------------------------------------------------------------------ the cycle
    def closed_bar(self) -> pd.Timestamp:
        """Open time of the newest bar that has closed by now."""
        return self.clock.now.floor(self.bar) - self.bar

    def cycle(self) -> CycleReport:
        """One cycle for the bar that closed last (see the module docstring)."""
        started = time.perf_counter()
        now, bar = self.clock.now, self.closed_bar()
        self.store.refresh()
        report = CycleReport(now, bar, collect(self.store, self.plan, now))
        marks = self._marks(bar)
        # testnet / live: the book against the exchange first (trading.reconcile); legs it
        # booked (an answer that was lost) are the trading core's from now on
        for symbol in self.executor.reconcile(self.task.symbols, self.task.all_symbols, now):
            self.trader.adopt(symbol, {(v.leg, v.instrument): v.qty
                                       for v in self.book.state().legs_of(symbol)})
        settled = self._settle(bar, marks)
        persist = (self.state.cycles + 1) % self.persist_features_every == 0
        tables = {s: self.features[s].update(persist=persist) for s in self.task.symbols}
        newest = {s: self._newest_row(s, t, now) for s, t in tables.items()}
        panel = self.last_panel = self._panel(tables, newest)
        self._check_breakers(report, bar, newest)
        for symbol in self.task.symbols:
            report.symbols.append(self._symbol_cycle(symbol, bar, now, marks,
                                                     settled.get(symbol), tables[symbol],
                                                     newest[symbol], panel))
        self.state.extra["trading"] = self.trader.to_dict()
        self.state.extra["breakers"] = self.breakers.to_dict()
        self.state.last_bar = bar
        self.state.cycles += 1
        self.state.save(self.paths.state_file)
        report.seconds = time.perf_counter() - started
        for hook in self.on_cycle:
            hook(report)
        return report

    # ------------------------------------------------------------------ breakers and drift
    def _check_breakers(self, report: CycleReport, bar: pd.Timestamp,
                        newest: dict[str, pd.Series]) -> None:
        """The circuit breakers on the equity marked at this bar's close and on each symbol's
        newest row; trips and resets are alerted (log, webhook) and reported (metrics)."""
        cfg = self.s.live.breakers
        events = self.breakers.check_book(cfg, self.trader.total, bar)
        for symbol, row in newest.items():
            behind = max(int((bar - row.name) // self.bar), 0)
            events += self.breakers.check_stale(cfg, symbol, behind, bar)
        send_alerts(events, cfg)
        report.alerts, report.breakers = events, self.breakers.status()

    def _graded(self, symbol: str, bundle: Forecaster, monitor: MonitorReport,
                row_ts: pd.Timestamp) -> tuple[list[str], dict[str, float] | None]:
        """(reasons to fail safe, the baseline's forecast values or None): the graded response
        of ``monitoring.fallback``, a tripped breaker counted with the hard reasons."""
        hard = [*self.breakers.reasons(symbol), *monitor.fail_safe_reasons]
        return self.fallbacks.grade(symbol, bundle, self.features[symbol].table, row_ts, hard,
                                    monitor.drift_reasons)

    def _bar_no(self, bar: pd.Timestamp) -> int:
        return int(bar.value // self.bar.value)

    def _settle(self, bar: pd.Timestamp, marks: dict[str, float]
                ) -> dict[str, Settlement]:
        """The bar of every position in the trading core (once per bar: a bar the saved
        account already holds, after a restart, is not settled again)."""
        bar_no = self._bar_no(bar)
        if self.trader.last_bar is not None and bar_no <= self.trader.last_bar:
            return {}
        return self.trader.settle(bar_no, self._bar_prices(bar, marks))

    def _newest_row(self, symbol: str, table: pd.DataFrame, now: pd.Timestamp
                    ) -> pd.Series:
        """The symbol's newest feature row closed by ``now`` (its ``name`` is its bar)."""
        visible = table[table.index + self.bar <= now]
        if visible.empty:
            raise CascadeError(f"no feature row of {symbol} has closed by {now}", "live loop")
        return visible.iloc[-1]

    def _panel(self, tables: dict[str, pd.DataFrame], newest: dict[str, pd.Series]
               ) -> Panel | None:
        """Universe mode: every symbol's panel row at its newest bar, built this cycle from the
        feature rows known at that bar (``panel.newest``); None when no panel bundle serves."""
        if not any(b.kind == PANEL_KIND for b in self.bundles.values()):
            return None
        return newest_panel(tables, [row.name for row in newest.values()], self.s.panel,
                            self.task.horizon, self.task.side, self.s.labels)

    def _symbol_cycle(self, symbol: str, bar: pd.Timestamp, now: pd.Timestamp,
                      marks: dict[str, float], settled: Settlement | None,
                      table: pd.DataFrame, row: pd.Series, panel: Panel | None) -> SymbolCycle:
        bundle, guard = self.bundles[symbol], self.guards[symbol]
        row_ts = row.name
        x = self._input_row(bundle, symbol, row, panel)
        values = {k: float(v[0]) for k, v in bundle.predict(x, symbol).items()}
        # the vol forecast as the backtest's policy reads it: smoothed over the stored ones
        forecast, smoothing = self._smoothed(symbol, row_ts,
                                             policy_forecast(values, self.task.horizon_hours))
        context = row.to_dict()
        triggers, cross = policy_context(context, self.columns[symbol])
        trailing = trailing_vol(context, self.columns[symbol])
        if bundle.kind == PANEL_KIND and panel is not None:
            table = self._watch_panel(symbol, panel)
        monitor = guard.check(table, now)
        # stored before the forecast: the service never serves this bar's forecast without
        # this bar's verdict
        write_report(self.store.root, monitor, row_ts)

        if symbol not in marks:
            raise CascadeError(f"no {symbol} price in the store up to {bar}", "live loop")
        age = max((now - (row_ts + self.bar)).total_seconds(), 0.0)
        trader = self.trader
        inputs = PolicyInputs(symbol=symbol, forecast=forecast, triggers=triggers,
                              cross_asset=cross, trailing_vol_annual=trailing,
                              position=trader.policy_position(symbol, marks[symbol]),
                              equity=max(trader.position_equity, 1e-9),
                              freshness=Freshness(forecast_age_s=age, features_age_s=age))
        # graded response: breakers and missing / stale inputs fail safe, drift -> baseline
        fail_reasons, fallback = self._graded(symbol, bundle, monitor, row_ts)
        if fallback is not None:
            forecast = policy_forecast(fallback, self.task.horizon_hours)
            inputs = inputs.model_copy(update={"forecast": forecast})
        decision = decide(inputs, self.s.policy, monitor_reasons=[
            *fail_reasons, *self.executor.halt_reasons(symbol)])
        if fallback is not None:
            decision = decision.model_copy(update={"reasons": [
                baseline_reason(forecast, self.task.horizon_hours, str(bundle.version),
                                monitor.drift_reasons), *decision.reasons]})
        if smoothing is not None and fallback is None:
            decision = decision.model_copy(update={"reasons": [*decision.reasons, smoothing]})
        intents = []
        if settled is not None:  # None: this bar is already in the saved account
            targets = targets_from_decision(decision, symbol, forecast.sigma_h,
                                            forecast.cascade_prob, self.s.trading, self.s.policy,
                                            cross)
            intents = [*settled.orders, *trader.rebalance(symbol, self._bar_no(bar), targets,
                                                          marks)]
            decision = trader.explain(symbol, decision)  # a hedge moved instrument: why
        funding = [] if settled is not None and settled.closed else self._funding(symbol, now)
        result = self.executor.run_cycle(
            symbol, bar, decision, intents, marks=marks, as_of=now, funding=funding,
            model_version=str(bundle.version), forecast=forecast,
            stop=trader.positions[symbol].stop)  # the core's stop rests on the exchange
        # refused, failed or pending orders, an exchange stop the core did not see fire, or on an
        # exchange a partial fill: the trading core takes the book's legs; so it does on a bar
        # the book already held (a restart after the book's commit, before the state's save:
        # the core re-settled the bar as if its orders filled, the book says what they did)
        if not result.written or result.fills < len(intents) or result.stops_fired \
                or self.executor.mode != "paper":
            trader.adopt(symbol, {(v.leg, v.instrument): v.qty
                                  for v in self.book.state().legs_of(symbol)})
        self._store_forecast(symbol, row_ts, values, str(bundle.version), now)
        return SymbolCycle(symbol, bar, decision, result.written, result.fills, result.refused,
                           result.equity, age, str(bundle.version), monitor,
                           settled.event if settled is not None else "held",
                           fallback is not None)

    # ------------------------------------------------------------------ inputs of a cycle
    def _watch_panel(self, symbol: str, panel: Panel) -> pd.DataFrame:
        """The symbol's recent panel rows with this cycle's appended (what its guard judges)."""
        held, new = self.panel_rows[symbol], panel.rows_of(symbol)
        if len(held):
            new = new[new.index > held.index[-1]]
        rows = pd.concat([held, new]) if len(held) else new
        self.panel_rows[symbol] = rows.tail(self._watched_rows)
        return self.panel_rows[symbol]

    def _input_row(self, forecaster: Forecaster, symbol: str, row: pd.Series,
                   panel: Panel | None) -> np.ndarray:
        """The forecaster's input row for the bar of ``row`` (the symbol's newest feature row):
        the panel row built this cycle for a panel bundle, else the feature row itself."""
        names = list(forecaster.feature_names)
        where = f"{symbol} at {row.name}"
        if forecaster.kind == PANEL_KIND:
            if panel is None or (prow := panel_row(panel, symbol, row.name)) is None:
                raise CascadeError(f"no panel row of {symbol} at {row.name}", "live loop")
            row, where = prow, f"the panel row of {where}"
        missing = [n for n in names if n not in row.index]
        if missing:
            raise ModelBundleError(f"{where} lacks input(s) {missing} that {forecaster.kind} "
                                   f"bundle v{forecaster.version} reads", "live loop")
        return row.reindex(names).to_numpy(dtype=np.float64)[None, :]

    def _bars(self, symbol: str) -> pd.DataFrame | None:
        keys = [k for k in self.store.partitions("ohlcv", symbol, self.task.venue)
                if k.interval == self.task.interval]
        return self.store.read_partition(keys[0]) if keys else None

    def _marks(self, bar: pd.Timestamp) -> dict[str, float]:
        """Close of every instrument's newest bar up to ``bar`` (what the book marks at)."""
        marks = {}
        for symbol in self.task.all_symbols:
            bars = self._bars(symbol)
            if bars is not None:
                closed = bars["close"][bars.index <= bar].dropna()
                if len(closed):
                    marks[symbol] = float(closed.iloc[-1])
        return marks

    def _rates(self, instrument: str) -> pd.Series | None:
        keys = self.store.partitions("funding", instrument, self.task.venue)
        return self.store.read_partition(keys[0])["funding_rate"] if keys else None

    def _bar_prices(self, bar: pd.Timestamp, marks: dict[str, float]) -> dict[str, BarPrices]:
        """Every instrument's bar and the funding settling at its close, for the trading core."""
        bars = {s: b for s in self.task.all_symbols if (b := self._bars(s)) is not None}
        return bar_prices(bars, {s: r for s in bars if (r := self._rates(s)) is not None},
                          bar, self.bar, marks)

    def _funding(self, symbol: str, now: pd.Timestamp) -> list[FundingEvent]:
        """Settlements since the symbol's previous cycle, on every instrument, each priced at
        the close of the bar ending at the settlement."""
        prev = self.book.last_as_of(symbol)
        if prev is None:
            return []
        events = []
        for instrument in self.task.all_symbols:
            rates, bars = self._rates(instrument), self._bars(instrument)
            if rates is not None and bars is not None:
                events += funding_events(instrument, rates, bars["close"], to_utc(prev), now,
                                         self.bar)
        return events

    def _smoothed(self, symbol: str, row_ts: pd.Timestamp, forecast: PolicyForecast
                  ) -> tuple[PolicyForecast, str | None]:
        """The forecast with its vol smoothed over the symbol's stored vol forecasts before
        ``row_ts`` (``forecasting.smoothing``; the table is read only with a half-life set)."""
        halflife = self.s.policy.forecast_halflife_bars
        if halflife <= 0:
            return forecast, None
        return smoothed_forecast(forecast, vol_history(self.store, symbol), row_ts, halflife,
                                 self.bar)

    def _store_forecast(self, symbol: str, row_ts: pd.Timestamp, values: dict[str, float],
                        version: str, now: pd.Timestamp) -> None:
        """Merge the forecast into the scores table (the service serves it from there)."""
        out = pd.DataFrame({c: [values[c]] for c in SERVED_FORECASTS if c in values},
                           index=pd.DatetimeIndex([row_ts], name="timestamp"))
        out["model_version"] = version
        out["feature_timestamp"] = row_ts
        out["scored_at"] = now
        merge_scores(self.store, symbol, out, horizon=self.task.horizon, model_version=version,
                     meta={"bundle_dir": str(forecaster_dir(self.paths.models_dir, symbol)),
                           "source": "live loop"})
