"""Turn exchange-specific market names into the base-asset symbols used as partition keys."""

from __future__ import annotations

import re

from cascade_ml.errors import CascadeError

_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USD")
_SUFFIXES = ("_PERP", "-PERP", "PERP")
_VALID = re.compile(r"^[A-Z0-9]{1,20}$")


def normalize_symbol(raw: str) -> str:
    """``NEARUSDT``, ``NEAR_USDT_USDT``, ``NEAR/USDT:USDT``, ``NEARUSD_PERP.A`` -> ``NEAR``.

    Only a quote currency at the end is stripped, so names like ``USDC`` alone stay themselves.
    """
    text = str(raw).strip().upper()
    if not text:
        raise CascadeError("empty symbol")
    text = text.split(".")[0]  # Coinalyze exchange suffix (.A = Binance)
    for sep in ("/", "_", "-", ":"):
        if sep in text:
            head = text.split(sep)[0]
            if head and head != "PERP":
                text = head
                break
    for suffix in _SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
    for quote in _QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            text = text[: -len(quote)]
            break
    if text == "MARKET" or _VALID.match(text):
        return text
    raise CascadeError(f"cannot read a base asset from symbol {raw!r}")
