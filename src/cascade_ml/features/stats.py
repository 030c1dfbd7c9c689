"""Small rolling statistics shared by the families; all look backward only."""

from __future__ import annotations

import numpy as np
import pandas as pd


def min_periods(window: int, frac: float) -> int:
    """How many observations a rolling window needs before it reports a value."""
    return max(2, int(np.ceil(window * frac))) if window > 1 else 1


def log_return(close: pd.Series) -> pd.Series:
    """Log return of each bar against the previous row."""
    return np.log(close).diff()


def rolling_z(values: pd.Series, window: int, frac: float, *, prior: bool = False) -> pd.Series:
    """Z-score against a trailing window; ``prior`` excludes the current row from the baseline.

    A flat baseline (zero spread) gives NaN rather than an infinite score.
    """
    base = values.shift(1) if prior else values
    roll = base.rolling(window, min_periods=min_periods(window, frac))
    std = roll.std()
    return (values - roll.mean()) / std.where(std > 0)


def rolling_pct(values: pd.Series, window: int, frac: float) -> pd.Series:
    """Percentile rank (0..1] of the current value within the trailing window including it."""
    return values.rolling(window, min_periods=min_periods(window, frac)).rank(pct=True)


def safe_log(values: pd.Series) -> pd.Series:
    """Natural log with non-positive values as NaN (never -inf)."""
    return np.log(values.where(values > 0))


def flag(condition: pd.Series, *inputs: pd.Series) -> pd.Series:
    """1.0 / 0.0 from a boolean condition, NaN where any input is missing."""
    out = condition.astype(float)
    missing = np.zeros(len(out), dtype=bool)
    for series in inputs:
        missing |= series.isna().to_numpy()
    out[missing] = np.nan
    return out
