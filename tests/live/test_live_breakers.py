"""Graded responses in the loop: a tripped circuit breaker makes every decision it covers the
fail-safe, blocks new risk, alerts (log, metric, a real loopback webhook) and survives a restart
until its reset; drift alone decides on the baseline forecaster (HAR and climatology)."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from loop_helpers import FROM, HOUR, UNTIL, copy_replay, ledger_is_consistent, write_pipeline
from webhook_server import recording_server

from cascade_ml.contracts.layout import labels_path
from cascade_ml.data.sources.fear_greed import StoredFearGreed
from cascade_ml.data.sources.replay import ReplayExchange
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.live.clock import SimClock
from cascade_ml.live.loop import LoopSections
from cascade_ml.live.run import build_loop, replay_paths
from cascade_ml.live.state import LoopState
from cascade_ml.models.bundle import load_bundle
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.trading.book import PaperBook

NOW = FROM + pd.Timedelta("10s")  # the first cycle of the window


def _loop(sections: LoopSections, start: pd.Timestamp):  # noqa: ANN202
    history = MarketStore(sections.live.replay.dir / "source")
    clock = SimClock(start)
    loop, _ = build_loop(sections, replay_paths(sections), clock=clock,
                         exchange=ReplayExchange(history, clock),
                         fear_greed=StoredFearGreed(history))
    loop.start()
    return loop, clock


def _run(loop, clock, hours: range) -> list:  # noqa: ANN001
    reports = []
    for hour in hours:
        clock.set(NOW + hour * HOUR)
        reports.append(loop.cycle())
    return reports


# ---------------------------------------------------------------------------- max drawdown
@pytest.fixture(scope="module")
def tripped(replay_base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Six cycles with a maximum drawdown of 0.0001 %: the first mark below the running peak
    trips it. The webhook is a real HTTP server on a loopback socket."""
    folder = tmp_path_factory.mktemp("drawdown")
    with recording_server() as (url, received):
        _, sections = copy_replay(replay_base, folder, breakers={
            "max_drawdown": 1e-6, "daily_loss_limit": None, "webhook_url": url})
        loop, clock = _loop(sections, NOW)
        logs: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: logs.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("cascade_ml.monitoring.alerts").addHandler(handler)
        try:
            reports = _run(loop, clock, range(6))
        finally:
            logging.getLogger("cascade_ml.monitoring.alerts").removeHandler(handler)
        loop.book.close()
    return {"sections": sections, "reports": reports, "received": list(received),
            "logs": logs, "folder": folder}


def fixture_rows(frame: pd.DataFrame, reports: list) -> pd.DataFrame:
    """The book's rows of the fixture's own cycles: the restart test runs more cycles on the same
    replay (after the operator's reset), in whatever order the tests run."""
    return frame[pd.to_datetime(frame["bar_ts"], utc=True) <= reports[-1].bar]


def test_max_drawdown_trips_at_the_first_mark_below_the_peak(tripped: dict) -> None:
    reports = tripped["reports"]
    paths = replay_paths(tripped["sections"])
    with PaperBook(paths.db_url, migrate=False) as book:
        decisions = fixture_rows(book.frames()["decisions"], reports)
    first = next(i for i, r in enumerate(reports) if r.alerts)
    assert [a.kind for a in reports[first].alerts] == ["trip"]
    drawdown = [next(s.value for s in r.breakers if s.breaker == "max_drawdown")
                for r in reports]
    assert max(drawdown[:first]) < 1e-6 <= drawdown[first]
    flags = [r.symbols[0].decision.fail_safe for r in reports]
    assert flags == [False] * first + [True] * (len(reports) - first), flags
    assert decisions["fail_safe"].tolist() == flags
    why = reports[first].symbols[0].decision.reasons[0]
    assert why.startswith("FAIL-SAFE: monitor: circuit breaker max_drawdown tripped")
    assert "until an operator resets it" in why
    assert all(any("circuit breaker max_drawdown" in r for r in reasons)
               for reasons in decisions["reasons"].iloc[first:])
    ledger_is_consistent(paths.db_url)


def test_a_tripped_breaker_adds_no_risk(tripped: dict) -> None:
    reports = tripped["reports"]
    first = next(i for i, r in enumerate(reports) if r.alerts)
    with PaperBook(replay_paths(tripped["sections"]).db_url, migrate=False) as book:
        orders = fixture_rows(book.frames()["orders"], reports)
    after = orders[pd.to_datetime(orders["bar_ts"], utc=True) >= reports[first].bar]
    main = after[(after["leg"] == "main") & (after["status"] == "filled")]
    assert (main["side"] == "sell").all(), main  # the long main leg only shrinks
    for r in reports[first:]:
        d = r.symbols[0].decision
        assert d.binding["size"] in ("current_notional", "risk_budget", "leverage_cap",
                                     "stop_reached")
        # failing safe: the band's 70 % top and at most 1x
        assert d.fail_safe and d.hedge_ratio == 0.70 and d.leverage_cap <= 1.0


def test_the_trip_is_alerted_by_log_metric_and_webhook(tripped: dict) -> None:
    from prometheus_client import generate_latest

    from cascade_ml.live.metrics import LoopMetrics

    trips = [m for m in tripped["logs"] if m.startswith("CIRCUIT BREAKER TRIPPED")]
    assert len(trips) == 1 and "circuit breaker max_drawdown tripped" in trips[0]
    bodies = [r["body"] for r in tripped["received"]]
    assert [(b["event"], b["breaker"], b["scope"]) for b in bodies] == [
        ("trip", "max_drawdown", "book")]  # one trip, one alert, not one per cycle
    metrics = LoopMetrics()
    metrics.update(tripped["reports"][-1])
    text = generate_latest(metrics.registry).decode()
    assert 'cascade_breaker_tripped{breaker="max_drawdown",scope="book"} 1.0' in text
    assert 'cascade_breaker_tripped{breaker="stale_data",scope="NEAR"} 0.0' in text


def test_a_restart_keeps_it_tripped_until_the_operator_resets_it(tripped: dict) -> None:
    from typer.testing import CliRunner

    from cascade_ml.cli.main import app

    sections = tripped["sections"]
    state_file = replay_paths(sections).state_file
    assert "max_drawdown" in LoopState.load(state_file).extra["breakers"]["tripped"]
    loop, clock = _loop(sections, NOW + 6 * HOUR)  # a restarted process
    assert [t.breaker for t in loop.breakers.tripped.values()] == ["max_drawdown"]
    again = _run(loop, clock, range(6, 7))[0]
    loop.book.close()
    assert again.symbols[0].decision.fail_safe and again.alerts == []
    # the operator resets it (the loop stopped); the rest of the window runs on a sane limit
    pipeline = write_pipeline(tripped["folder"], sections.live.replay.dir,
                              breakers={"max_drawdown": 0.15})
    result = CliRunner().invoke(app, ["live", "--pipeline", str(pipeline), "--replay", "--from",
                                      str(FROM), "--until", str(UNTIL), "--every", "0",
                                      "--reset-breakers", "max_drawdown"])
    assert result.exit_code == 0, result.output
    assert "circuit breaker max_drawdown reset: reset by the operator" in result.output
    with PaperBook(replay_paths(sections).db_url, migrate=False) as book:
        decisions = book.frames()["decisions"]
    later = decisions[pd.to_datetime(decisions["bar_ts"], utc=True) > again.bar]
    assert len(later) and not later["fail_safe"].any()
    wrong = subprocess.run(  # the real entry point: a clear error, exit 2, nothing run
        [sys.executable, "-c", "from cascade_ml.cli.main import main; main()", "live",
         "--pipeline", str(pipeline), "--replay", "--from", str(FROM), "--until", str(UNTIL),
         "--reset-breakers", "max_drawdwn"], capture_output=True, text=True, timeout=300)
    assert wrong.returncode == 2 and "no circuit breaker named max_drawdwn" in wrong.stderr
    assert "Traceback" not in wrong.stderr


# ---------------------------------------------------------------------------- stale data
def test_stale_data_trips_after_three_bars_without_a_fresh_row(replay_base: Path,
                                                               tmp_path: Path) -> None:
    """NEAR candles stop at the window's start: its newest row ages one bar per cycle, and at 3
    bars the stale-data breaker trips (the monitor's own staleness reason already failed it safe
    at 2); the book's other reasons name the breaker."""
    _, sections = copy_replay(replay_base, tmp_path, breakers={"stale_intervals": 3})
    history = MarketStore(tmp_path / "replay" / "source")
    key = PartitionKey("ohlcv", "binance", "NEAR", "1h")
    near = history.read_partition(key)
    history.write_table(key.relpath(), near[near.index + HOUR <= FROM],
                        {"dataset": "ohlcv", "venue": "binance", "symbol": "NEAR",
                         "interval": "1h"})
    loop, clock = _loop(sections, NOW)
    reports = _run(loop, clock, range(5))
    loop.book.close()
    behind = [r.breakers for r in reports]
    values = [next(s.value for s in b if s.breaker == "stale_data") for b in behind]
    assert values == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [bool(r.alerts) for r in reports] == [False, False, False, True, False]
    reasons = [r.symbols[0].decision.reasons for r in reports]
    assert [any("circuit breaker stale_data tripped for NEAR" in x for x in rs)
            for rs in reasons] == [False, False, False, True, True]
    assert all(r.symbols[0].decision.fail_safe for r in reports[2:])


# ---------------------------------------------------------------------------- drift
def test_drift_alone_decides_on_har_and_climatology_not_the_fail_safe(replay_base: Path,
                                                                      tmp_path: Path) -> None:
    """An alarm allowed to fire on every training bar (limits at the lowest training window's
    PSI) calls the inputs drifted: the decision is made on HAR-RV and the climatological cascade
    rate of the bundle's training span, computed here by hand, and is not the fail-safe."""
    _, sections = copy_replay(replay_base, tmp_path)
    sections = dataclasses.replace(sections, monitoring=MonitoringConfig(
        drift_alarm_rate=1.0, psi_alert=1e-6))
    loop, clock = _loop(sections, NOW)
    reports = _run(loop, clock, range(2))
    loop.book.close()
    for r in reports:
        c = r.symbols[0]
        assert c.monitor.drift_reasons and c.monitor.fail_safe_reasons == []
        assert c.fallback and not c.decision.fail_safe
        assert c.decision.reasons[0].startswith("BASELINE: forecast by HAR + climatology (vol ")
        assert "instead of model v1, whose inputs drifted: input " in c.decision.reasons[0]
        assert c.line().split(": ", 1)[1].startswith("BASELINE ")

    # by hand: OLS of log fwd_rv on the logs of rv_24h/24, rv_168h/168, rv_720h/720 over the
    # training span, times the mean exp(residual); the climatology is the span's cascade rate
    store = MarketStore(replay_paths(sections).store)
    labels = store.read_table(labels_path("NEAR", 24))
    table = loop.features["NEAR"].table
    trained = load_bundle(tmp_path / "replay" / "models" / "NEAR").training_span
    span = pd.Timestamp(trained["start"]), pd.Timestamp(trained["end"])
    rows = table.index[(table.index >= span[0]) & (table.index <= span[1])]
    rows = rows.intersection(labels.index)

    def design(index: pd.Index) -> np.ndarray:
        f = table.loc[index]
        return np.column_stack([np.ones(len(f)), np.log(f["rv_24h"] / 24),
                                np.log(f["rv_168h"] / 168), np.log(f["rv_720h"] / 720)])

    x, y = design(rows), np.log(labels.loc[rows, "fwd_rv"].to_numpy(float))
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    coef = np.linalg.lstsq(x[ok], y[ok], rcond=None)[0]
    smear = np.mean(np.exp(y[ok] - x[ok] @ coef))
    rate = labels.loc[rows, "cascade"].dropna().mean()
    with PaperBook(replay_paths(sections).db_url, migrate=False) as book:
        decisions = book.frames()["decisions"]
    assert not decisions["fail_safe"].any()
    for r, (_, d) in zip(reports, decisions.iterrows(), strict=True):
        var = float(np.exp(design(pd.DatetimeIndex([r.bar])) @ coef)[0] * smear)
        assert d["forecast_vol"] == pytest.approx(np.sqrt(var), rel=1e-9)
        assert d["cascade_prob"] == pytest.approx(rate, rel=1e-12)
        assert d["reasons"][0].startswith("BASELINE: ")
