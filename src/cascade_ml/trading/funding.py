"""Funding, one sign convention: a leg of signed quantity ``qty`` (long > 0) at a settlement of
``rate`` priced at ``mark`` receives ``-qty x mark x rate`` (longs pay a positive rate, shorts
receive it). Paid on every leg, each at its own perp's rate."""

from __future__ import annotations


def funding_amount(qty: float, mark: float, rate: float) -> float:
    """Quote received by a leg at one settlement (paid < 0)."""
    return -qty * mark * rate
