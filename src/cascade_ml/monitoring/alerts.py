"""Alerts of the circuit breakers: a log line each, and a JSON POST to an optional webhook.

An alert that cannot be delivered (the webhook down, slow or refusing) is logged and dropped:
it never stops the loop, whose fail-safe already acted. The Prometheus side is
``monitoring.exporter.export_breakers``.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable

from cascade_ml.monitoring.breakers import BreakerConfig, BreakerEvent

log = logging.getLogger(__name__)


def post_json(url: str, payload: dict, timeout_s: float = 5.0) -> bool:
    """POST ``payload`` as JSON to ``url``; True when the server answered 2xx."""
    body = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "cascade-ml"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - the operator's URL
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.error("alert webhook %s failed: %s", url, exc)
        return False


def send_alerts(events: Iterable[BreakerEvent], cfg: BreakerConfig) -> int:
    """Log every event (a trip as an error, a reset as info) and POST it to the webhook when
    one is set; returns how many the webhook accepted."""
    accepted = 0
    for event in events:
        if event.kind == "trip":
            log.error("%s", event.line())
        else:
            log.info("%s", event.line())
        if cfg.webhook_url:
            accepted += post_json(cfg.webhook_url, event.payload(), cfg.webhook_timeout_s)
    return accepted
