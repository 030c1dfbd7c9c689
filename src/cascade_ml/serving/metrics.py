"""Prometheus metrics in a registry per app, so several apps (tests, benchmarks) never clash."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class ServiceMetrics:
    """Request counts/latencies per route template, forecast ages, fail-safes and reloads."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("cascade_requests_total", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("cascade_request_seconds", "HTTP request latency by route",
                                 ["method", "route"], buckets=_BUCKETS, registry=self.registry)
        self.forecast_age = Gauge("cascade_forecast_age_seconds",
                                  "Seconds since the close of the bar behind the latest forecast",
                                  ["symbol"], registry=self.registry)
        self.forecast_stale = Gauge("cascade_forecast_stale", "1 when the latest forecast is stale",
                                    ["symbol"], registry=self.registry)
        self.failsafe = Counter("cascade_failsafe_decisions_total",
                                "Decisions answered with the fail-safe", ["symbol", "reason"],
                                registry=self.registry)
        self.reloads = Counter("cascade_model_reloads_total", "Model bundle loads by outcome",
                               ["symbol", "outcome"], registry=self.registry)
        self.model_loaded = Gauge("cascade_model_loaded", "1 when a model bundle is serving",
                                  ["symbol"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware) timing every HTTP request.

    The route label is the matched path template (``/v1/forecasts/{symbol}``), never the raw path,
    so unknown symbols or scanners cannot blow up the label set.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, routes: Sequence[BaseRoute] = (),
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = tuple(routes)  # the app's routes, to label requests refused before routing
        self.clock = clock

    def _label(self, scope: Scope) -> str:
        """The matched route template; requests answered before routing (401) are matched here."""
        route = scope.get("route")
        if route is not None:
            return getattr(route, "path", "unmatched")
        for candidate in self.routes:
            match, _ = candidate.matches(scope)
            if match == Match.FULL:
                return getattr(candidate, "path", "unmatched")
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            label = self._label(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, label, str(status)).inc()
            self.metrics.latency.labels(method, label).observe(self.clock() - started)
