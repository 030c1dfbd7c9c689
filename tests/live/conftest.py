"""Fixtures of the live tests (helpers in live_helpers.py)."""

from __future__ import annotations

import pytest
from live_helpers import OrderDesk


@pytest.fixture
def order_desk():
    """A factory: ``make(avg_price=5.1, error=None) -> (ccxt.binanceusdm, OrderDesk)``."""
    import ccxt

    def make(avg_price: float = 5.1, error: str | None = None):
        desk = OrderDesk(avg_price=avg_price, error=error)
        exchange = ccxt.binanceusdm({"enableRateLimit": False})
        exchange.session.mount("https://", desk)
        return exchange, desk

    return make
