"""Assembling and running the loop: live (wall clock, the configured exchange, APScheduler) or as
a replay (simulated clock, the replay exchange over the bundled history). Both build the same
``LiveLoop`` and the same jobs; ``cascade-ml live`` calls ``run_live_loop`` / ``run_replay``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from cascade_ml.atomic import sweep_temps
from cascade_ml.data.collect import CollectPlan
from cascade_ml.data.sources.fear_greed import AlternativeMe, FearGreedSource, StoredFearGreed
from cascade_ml.data.store import MarketStore, to_utc
from cascade_ml.errors import CascadeError
from cascade_ml.live.clock import Clock, SimClock, WallClock
from cascade_ml.live.config import ReplayConfig
from cascade_ml.live.loop import CycleReport, LiveLoop, LoopPaths, LoopSections
from cascade_ml.live.schedule import Job, cron_trigger, cycle_trigger, next_fire
from cascade_ml.tracking import TrackingConfig
from cascade_ml.trading.book import PaperBook
from cascade_ml.trading.execution import Executor

if TYPE_CHECKING:
    from cascade_ml.data.sources.replay import ReplayExchange

log = logging.getLogger(__name__)
Echo = Callable[[str], None]


# ---------------------------------------------------------------------------- paths
def live_paths(sections: LoopSections, store_root: Path, models_dir: Path,
               tracking: TrackingConfig) -> LoopPaths:
    """Live: the pipeline's own store, bundle folder and registry, and the configured book."""
    live = sections.live
    return LoopPaths(store_root, models_dir, tracking, live.db_url,
                     live.state_dir / "loop_state.json")


def replay_paths(sections: LoopSections) -> LoopPaths:
    """A replay keeps everything under ``live.replay.dir``; in universe mode (``panel.enabled``)
    it serves the pipeline's panel bundle (``panel.bundle_dir``, only read: the loop does not
    train the panel)."""
    d = sections.live.replay.dir
    tracking = TrackingConfig(uri=f"sqlite:///{d / 'mlflow' / 'mlflow.db'}",
                              artifact_root=d / "mlflow" / "artifacts")
    models = sections.panel.bundle_dir if sections.panel.enabled else d / "models"
    return LoopPaths(d / "store", models, tracking, replay_book_url(sections.live.replay),
                     d / "loop_state.json")


def replay_db_url(replay_dir: Path) -> str:
    return f"sqlite:///{Path(replay_dir) / 'book.db'}"


def replay_book_url(replay: ReplayConfig) -> str:
    """The replay's book: ``live.replay.db_url`` if set, else ``<dir>/book.db``."""
    return replay.db_url or replay_db_url(replay.dir)


# ---------------------------------------------------------------------------- assembling
def _jobs(loop: LiveLoop, sections: LoopSections) -> list[Job]:
    live = sections.live
    jobs = [Job("cycle", cycle_trigger(sections.task.interval, live.bar_delay_s), loop.cycle)]
    if live.retrain_cron:
        jobs.insert(0, Job("retrain", cron_trigger(live.retrain_cron), loop.retrain))
    return jobs


def _next_retrain(sections: LoopSections) -> Callable[[pd.Timestamp], pd.Timestamp | None] | None:
    cron = sections.live.retrain_cron
    if not cron:
        return None
    trigger = cron_trigger(cron)
    return lambda after: next_fire(trigger, after)


def build_loop(sections: LoopSections, paths: LoopPaths, *, clock: Clock, exchange,  # noqa: ANN001 - a ccxt exchange
               fear_greed: FearGreedSource | None, executor: Executor | None = None,
               persist_features_every: int = 1) -> tuple[LiveLoop, list[Job]]:
    """The loop over ``exchange`` (market data and, in paper mode, fill prices) and its jobs."""
    from cascade_ml.data.sources.exchange import venue_of

    live, task = sections.live, sections.task
    if venue_of(exchange) != task.venue:
        raise CascadeError(f"live.exchange {exchange.id} stores its data as venue "
                           f"{venue_of(exchange)!r}, but task.venue is {task.venue!r}", "live")
    plan = CollectPlan(exchange=exchange, symbols=tuple(task.all_symbols),
                       timeframe=task.interval, since=live.since,
                       open_interest_timeframe=live.open_interest_timeframe,
                       fear_greed=fear_greed if live.fear_greed else None)
    if executor is None:
        book = PaperBook(paths.db_url, initial_cash=sections.trading.initial_equity,
                         quote=live.quote)
        executor = (Executor(book, mode="paper", policy=sections.policy, exchange=exchange)
                    if live.mode == "paper"
                    else Executor(book, mode=live.mode, policy=sections.policy,
                                  exchange_name=live.exchange, hedge_mode=live.hedge_mode))
    loop = LiveLoop(sections, paths, clock=clock, plan=plan, executor=executor,
                    next_retrain=_next_retrain(sections),
                    persist_features_every=persist_features_every)
    return loop, _jobs(loop, sections)


# ---------------------------------------------------------------------------- live
def run_live_loop(sections: LoopSections, paths: LoopPaths, echo: Echo = print) -> None:
    """Run the loop against the configured exchange until stopped (SIGINT / SIGTERM)."""
    from cascade_ml.data.sources.exchange import make_exchange
    from cascade_ml.live.schedule import run_live

    live = sections.live
    exchange = make_exchange(live.exchange)
    fear_greed = AlternativeMe(live.fear_greed_url)
    loop, jobs = build_loop(sections, paths, clock=WallClock(), exchange=exchange,
                            fear_greed=fear_greed)
    loop.on_cycle.append(lambda r: [echo(s.line()) for s in r.symbols])
    _serve_metrics(loop, live.metrics_port)
    echo(f"live loop ({live.mode}): store {paths.store}, models {paths.models_dir}, book "
         f"{paths.db_url}; cycle every {sections.task.interval} + {live.bar_delay_s:g} s, "
         f"retrain {live.retrain_cron or 'never'}")
    loop.start()
    grace = max(int(sections.task.bar.total_seconds() // 2), 1)
    run_live(jobs, misfire_grace_s=grace, run_first_now="cycle")


def _serve_metrics(loop: LiveLoop, port: int | None) -> None:
    if port is None:
        return
    from cascade_ml.live.metrics import LoopMetrics

    metrics = LoopMetrics()
    metrics.serve(port)
    loop.on_cycle.append(metrics.update)


# ---------------------------------------------------------------------------- replay
@dataclass(frozen=True)
class ReplaySummary:
    """The figures of a replay run (this process only: a restarted run counts its own part)."""

    start: pd.Timestamp
    end: pd.Timestamp
    cycles: int
    retrains: int
    seconds: float
    decisions: int
    fail_safe: int
    orders: int
    fills: int
    refused: int
    equity: float
    db_url: str
    stops: int = 0
    liquidations: int = 0

    @property
    def bars_per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds > 0 else float("nan")

    def lines(self) -> list[str]:
        return [f"replay {self.start:%Y-%m-%d %H:%M} .. {self.end:%Y-%m-%d %H:%M}: "
                f"{self.cycles} bars in {self.seconds:.1f} s ({self.bars_per_second:.2f} bars/s), "
                f"{self.retrains} retraining(s)",
                f"book: {self.decisions} decisions ({self.fail_safe} fail-safe), {self.orders} "
                f"orders, {self.fills} fills, {self.refused} refused, {self.stops} stop(s), "
                f"{self.liquidations} liquidation(s); equity "
                f"{self.equity:,.2f}", f"book at {self.db_url}"]


def replay_start(state_last_bar: pd.Timestamp | None, start: pd.Timestamp,
                 bar: pd.Timedelta, delay_s: float) -> pd.Timestamp:
    """Where a replay's clock starts: at ``start``, or just after the cycle of the last bar a
    previous run finished (that cycle fired at its close plus the delay)."""
    if state_last_bar is None:
        return start
    done = state_last_bar + bar + pd.Timedelta(seconds=delay_s) + pd.Timedelta(milliseconds=1)
    return max(start, done)


def run_replay(sections: LoopSections, start: pd.Timestamp | str, end: pd.Timestamp | str, *,
               fresh: bool = False, echo: Echo = print, report_every: int = 24,
               max_cycles: int | None = None,
               watch: Callable[[LiveLoop, CycleReport], None] | None = None) -> ReplaySummary:
    """Replay ``[start, end]`` (the cycles of the bars closing at ``start`` .. ``end``) on the
    history of ``live.replay.source``; resumes a killed run of the same window. ``watch`` is
    called after every cycle with the loop and the cycle's report."""
    from cascade_ml.data.sources.replay import ReplayExchange
    from cascade_ml.live.schedule import run_replay as fire
    from cascade_ml.live.seed import seed_store, source_store
    from cascade_ml.live.state import LoopState

    live = sections.live
    if live.mode == "live":
        raise CascadeError("a replay never trades live: use paper, or testnet (against the "
                           "simulated venue)", "live")
    start, end = to_utc(start), to_utc(end)
    if end <= start:
        raise CascadeError(f"the replay ends ({end}) before it starts ({start})")
    paths = replay_paths(sections)
    d = live.replay.dir
    if fresh:
        for name in ("store", "models", "mlflow", "book.db", "loop_state.json", VENUE_FILE):
            target = d / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    history = source_store(live.replay.source, d / "source")
    state = LoopState.load(paths.state_file)
    if state.window_from is None:
        rows = seed_store(history, MarketStore(paths.store), start)
        echo(f"seeded {paths.store} with {rows} rows known at {start}")
        state.window_from, state.window_until = start, end
        state.save(paths.state_file)
    elif (state.window_from, state.window_until) != (start, end):
        raise CascadeError(f"{d} holds a replay of {state.window_from} .. {state.window_until}",
                           hint="replay that window to resume it, or pass --fresh to start over")
    sweep_temps(d, recursive=True)  # temps of writes a killed run left (atomic.sweep_temps)

    clock = SimClock(replay_start(state.last_bar, start, sections.task.bar, live.bar_delay_s))
    exchange = ReplayExchange(history, clock, venue=live.replay.venue)
    # nobody serves a replay's features table while it runs: written once a day (and at the
    # end); rows not yet written are rebuilt from the store by a restarted run
    executor = venue_executor(sections, paths, exchange) if live.mode == "testnet" else None
    loop, jobs = build_loop(sections, paths, clock=clock, exchange=exchange,
                            fear_greed=StoredFearGreed(history), executor=executor,
                            persist_features_every=24)
    counts = {"cycles": 0, "retrains": 0}

    def on_cycle(report: CycleReport) -> None:
        counts["cycles"] += 1
        if report_every and (counts["cycles"] % report_every == 0
                             or any(s.decision.fail_safe for s in report.symbols)):
            for s in report.symbols:
                echo(s.line())

    loop.on_cycle.append(on_cycle)
    if watch is not None:
        loop.on_cycle.append(lambda report: watch(loop, report))
    _serve_metrics(loop, live.metrics_port)
    trained = loop.start()
    jobs = [Job(j.name, j.trigger, _counted(j, counts, echo)) for j in jobs]
    began = time.perf_counter()
    end_fire = end + pd.Timedelta(seconds=live.bar_delay_s)
    try:
        fire(jobs, clock, end_fire, stop=lambda: max_cycles is not None
             and counts["cycles"] >= max_cycles)
    finally:
        loop.flush()
    if executor is not None:
        # answers lost in the last cycle are looked up by the next cycle's reconciliation; a
        # replay has no next cycle (nor has a restart after its end), so it looks them up now
        executor.reconcile(sections.task.symbols, sections.task.all_symbols, clock.now)
    seconds = time.perf_counter() - began
    if executor is not None and executor.exchange is not None:
        venue = executor.exchange.session.get_adapter("https://")
        echo(f"simulated venue: faults injected {getattr(venue, 'fault_counts', {})}")
    summary = _summary(loop, start, end, counts, seconds, paths.db_url, trained)
    loop.book.close()
    return summary


VENUE_FILE = "venue.json"
VENUE_KEYS = {"CASCADE_ML_TESTNET_API_KEY": "simulated-venue",
              "CASCADE_ML_TESTNET_API_SECRET": "simulated-venue"}


def venue_executor(sections: LoopSections, paths: LoopPaths, market: ReplayExchange) -> Executor:
    """A testnet replay's executor: the real ccxt Binance USD-M client with the simulated venue
    over the replay mounted as its transport (``trading.venue``; the venue's account in
    ``<replay dir>/venue.json`` outlives the process, like an exchange). No keys are needed and
    no request reaches the network."""
    from cascade_ml.data.sources.exchange import market_symbol
    from cascade_ml.trading.venue import SimulatedBinance, venue_client

    live = sections.live
    sim = SimulatedBinance(market, policy=sections.policy, faults=live.replay.faults,
                           balance=sections.trading.initial_equity,
                           path=live.replay.dir / VENUE_FILE, timeframe=sections.task.interval)
    book = PaperBook(paths.db_url, initial_cash=sections.trading.initial_equity,
                     quote=live.quote)
    return Executor(book, mode="testnet", policy=sections.policy,
                    exchange=venue_client(sim, rate_limit_ms=live.replay.rate_limit_ms),
                    env=VENUE_KEYS, hedge_mode=live.hedge_mode,
                    prices=lambda i: float(market.fetch_ticker(market_symbol(market, i))["last"]))


def _counted(job: Job, counts: dict[str, int], echo: Echo) -> Callable[[], object]:
    if job.name != "retrain":
        return job.run

    def run() -> object:
        report = job.run()
        counts["retrains"] += 1
        for line in getattr(report, "lines", []):
            echo(f"retrain: {line}")
        return report

    return run


def _summary(loop: LiveLoop, start: pd.Timestamp, end: pd.Timestamp, counts: dict[str, int],
             seconds: float, db_url: str, trained: list[str]) -> ReplaySummary:
    frames = loop.book.frames()
    orders, decisions = frames["orders"], frames["decisions"]
    status = orders["status"].value_counts() if len(orders) else pd.Series(dtype=int)
    return ReplaySummary(start=start, end=end, cycles=counts["cycles"],
                         retrains=counts["retrains"] + bool(trained), seconds=seconds,
                         decisions=len(decisions),
                         fail_safe=int(decisions["fail_safe"].astype(bool).sum())
                         if len(decisions) else 0,
                         orders=len(orders), fills=len(frames["fills"]),
                         refused=int(status.get("refused", 0)),
                         equity=loop.book.state().equity, db_url=db_url,
                         stops=_events(orders, "stop"), liquidations=_events(orders, "liq"))


def _events(orders: pd.DataFrame, order_type: str) -> int:
    """Positions closed by a stop (or a liquidation): one per (symbol, bar)."""
    if not len(orders):
        return 0
    hit = orders[orders["order_type"] == order_type]
    return int(len(hit.drop_duplicates(["symbol", "bar_ts"])))
