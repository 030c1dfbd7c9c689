"""Relative paths of the derived tables serving reads and writes (see docs/architecture.md)."""

from __future__ import annotations


def features_relpath(symbol: str) -> str:
    return f"features/symbol={symbol}/features.parquet"


def scores_relpath(symbol: str) -> str:
    return f"scores/symbol={symbol}/scores.parquet"
