"""The loop's Prometheus metrics: the monitor's gauges (same names as the service's), the
circuit breakers' (``cascade_breaker_*``), the book and the loop itself, served on
``live.metrics_port`` for Grafana (ops/grafana)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from cascade_ml.live.loop import CycleReport
from cascade_ml.monitoring.exporter import export_breakers, export_reports


class LoopMetrics:
    """Gauges updated after every cycle (``loop.on_cycle.append(metrics.update)``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.equity = Gauge("cascade_live_equity", "Paper book equity (quote).", registry=r)
        self.bar = Gauge("cascade_live_last_bar_timestamp_seconds",
                         "Open time of the last bar the loop decided on.", registry=r)
        self.seconds = Gauge("cascade_live_cycle_seconds", "Duration of the last cycle.",
                             registry=r)
        self.fail_safe = Gauge("cascade_live_fail_safe", "1 when the symbol's last decision "
                               "failed safe.", ["symbol"], registry=r)
        self.hedge = Gauge("cascade_live_hedge_ratio", "Target hedge ratio of the last decision.",
                           ["symbol"], registry=r)
        self.age = Gauge("cascade_live_forecast_age_seconds", "Age of the forecast decided on.",
                         ["symbol"], registry=r)
        self.failed_sources = Gauge("cascade_live_collect_failures",
                                    "Sources that failed in the last cycle.", registry=r)

    def update(self, report: CycleReport) -> None:
        self.bar.set(report.bar.timestamp())
        self.seconds.set(report.seconds)
        self.failed_sources.set(len(report.collected.failed))
        for s in report.symbols:
            self.equity.set(s.equity)
            self.fail_safe.labels(s.symbol).set(float(s.decision.fail_safe))
            self.hedge.labels(s.symbol).set(s.decision.hedge_ratio)
            self.age.labels(s.symbol).set(s.forecast_age_s)
        export_reports(self.registry, [s.monitor for s in report.symbols])
        export_breakers(self.registry, report.breakers)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
