"""Breaker alerts: a log line, a JSON POST received by a real HTTP server on a loopback socket,
the Prometheus gauges; an unreachable webhook is logged and never stops the loop."""

from __future__ import annotations

import logging
import socket

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from webhook_server import recording_server

from cascade_ml.monitoring.alerts import send_alerts
from cascade_ml.monitoring.breakers import BreakerConfig, BreakerState
from cascade_ml.monitoring.exporter import export_breakers

DAY1 = pd.Timestamp("2026-04-01T00:00:00Z")


@pytest.fixture
def webhook():
    with recording_server() as (url, received):
        yield url, received


def _tripped() -> tuple[BreakerState, list]:
    state = BreakerState()
    cfg = BreakerConfig()
    state.check_book(cfg, 10_000.0, DAY1)
    return state, state.check_book(cfg, 9_400.0, DAY1 + pd.Timedelta("3h"))


def test_a_trip_is_logged_and_posted_to_the_webhook(webhook, caplog) -> None:  # noqa: ANN001
    url, received = webhook
    state, events = _tripped()
    cfg = BreakerConfig(webhook_url=url)
    with caplog.at_level(logging.INFO, logger="cascade_ml.monitoring.alerts"):
        assert send_alerts(events, cfg) == 1
        assert send_alerts(state.reset(None), cfg) == 1
    assert [r.levelname for r in caplog.records] == ["ERROR", "INFO"]
    assert caplog.records[0].getMessage().startswith(
        "CIRCUIT BREAKER TRIPPED: circuit breaker daily_loss tripped")
    assert caplog.records[1].getMessage() == ("circuit breaker daily_loss reset: reset by the "
                                              "operator")
    assert [r["path"] for r in received] == ["/hook", "/hook"]
    assert received[0]["type"] == "application/json"
    trip, reset = received[0]["body"], received[1]["body"]
    assert (trip["event"], trip["breaker"], trip["scope"]) == ("trip", "daily_loss", "book")
    assert trip["at"] == "2026-04-01T03:00:00+00:00" and "lost 600.00" in trip["reason"]
    assert (reset["event"], reset["note"]) == ("reset", "reset by the operator")


def test_an_unreachable_webhook_is_logged_and_the_alert_dropped(caplog) -> None:  # noqa: ANN001
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, events = _tripped()
    cfg = BreakerConfig(webhook_url=f"http://127.0.0.1:{port}/hook", webhook_timeout_s=2)
    with caplog.at_level(logging.ERROR, logger="cascade_ml.monitoring.alerts"):
        assert send_alerts(events, cfg) == 0
    assert any("alert webhook" in r.getMessage() and "failed" in r.getMessage()
               for r in caplog.records)


def test_the_breakers_are_exported_as_gauges() -> None:
    state, _ = _tripped()
    state.check_stale(BreakerConfig(), "NEAR", 1, DAY1 + pd.Timedelta("3h"))
    registry = CollectorRegistry()
    export_breakers(registry, state.status())
    text = generate_latest(registry).decode()
    assert 'cascade_breaker_tripped{breaker="daily_loss",scope="book"} 1.0' in text
    assert 'cascade_breaker_tripped{breaker="max_drawdown",scope="book"} 0.0' in text
    assert 'cascade_breaker_tripped{breaker="stale_data",scope="NEAR"} 0.0' in text
    assert 'cascade_breaker_value{breaker="daily_loss",scope="book"} 0.06' in text
    assert 'cascade_breaker_limit{breaker="max_drawdown",scope="book"} 0.15' in text
    assert 'cascade_breaker_limit{breaker="stale_data",scope="NEAR"} 3.0' in text
    state.reset(None)
    export_breakers(registry, state.status())  # the same collector, updated
    text = generate_latest(registry).decode()
    assert 'cascade_breaker_tripped{breaker="daily_loss",scope="book"} 0.0' in text
