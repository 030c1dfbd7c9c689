"""Retries of exchange calls: the one place that decides what may be asked again.

- A rate limit (HTTP 429) or an IP ban (418) refused the request before it was executed
  (Binance: "the request was not processed"): wait what ``Retry-After`` says (else back off
  exponentially) and ask again. ccxt's own rate limiter (``enableRateLimit``) spaces the
  requests in between.
- A timeout, a 5xx or a dropped connection after the request left: a read is asked again after
  a back-off; an order is NEVER sent again. Its fate is unknown (executed or not), so it is
  raised as :class:`AnswerLost` and resolved by reconciliation (``trading.reconcile``), which
  looks the order up by its client order id.
- Anything else (a rejection: margin, a bad order, a duplicate client id) is the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import ccxt

log = logging.getLogger(__name__)
T = TypeVar("T")


class AnswerLost(Exception):  # noqa: N818 - names the situation, like ccxt's exceptions
    """A non-idempotent request (an order) left and its answer did not come back."""

    def __init__(self, cause: ccxt.BaseError) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


@dataclass(frozen=True)
class Backoff:
    """At most ``attempts`` tries; waits ``base_s x 2^k`` (a Retry-After overrides), each at
    most ``cap_s``."""

    attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 60.0

    def wait(self, attempt: int, retry_after: float | None) -> float:
        wait = retry_after if retry_after is not None else self.base_s * 2 ** attempt
        return min(max(wait, 0.0), self.cap_s)


def retry_after(exchange: ccxt.Exchange) -> float | None:
    """Seconds the last answer's ``Retry-After`` header asks to wait (None: not given)."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def call(exchange: ccxt.Exchange, fn: Callable[..., T], *args: object, idempotent: bool,
         backoff: Backoff | None = None, sleep: Callable[[float], None] = time.sleep,
         **kwargs: object) -> T:
    """``fn(*args, **kwargs)`` (a method of ``exchange``) with the retries of the module
    docstring; ``idempotent=False`` for orders and cancels."""
    backoff = backoff or Backoff()
    for attempt in range(backoff.attempts):
        try:
            return fn(*args, **kwargs)
        except ccxt.DDoSProtection as exc:  # 429 / 418: refused, not executed
            if attempt == backoff.attempts - 1:
                raise
            wait = backoff.wait(attempt, retry_after(exchange))
            log.warning("%s: %s; retrying in %.2f s", exchange.id, type(exc).__name__, wait)
        except (ccxt.RequestTimeout, ccxt.ExchangeNotAvailable, ccxt.NetworkError) as exc:
            if not idempotent:
                raise AnswerLost(exc) from exc
            if attempt == backoff.attempts - 1:
                raise
            wait = backoff.wait(attempt, None)
            log.warning("%s: %s; retrying the read in %.2f s", exchange.id, type(exc).__name__,
                        wait)
        sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
