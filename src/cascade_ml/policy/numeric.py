"""The few operations the policy formulas need, valid for plain floats *and* numpy arrays.

The rules in :mod:`cascade_ml.policy.rules` and :mod:`cascade_ml.policy.liquidation` are written
once with ordinary operators (``+ - * abs``, comparisons) and these helpers. Each helper uses numpy
when an operand is an ``ndarray`` (the backtest's columns) and plain Python otherwise (``decide``'s
single numbers), so one decision never pays numpy's per-call overhead (Python floats are checked
first: a served decision is a few dozen of these calls). The scalar versions give the same IEEE
results as numpy's ufuncs, including NaN and division by zero, which return nan/+-inf
instead of raising.
"""

from __future__ import annotations

import math

import numpy as np

Num = float | np.ndarray
nan = math.nan
inf = math.inf


def asnum(x: object) -> Num:
    """A single number becomes a Python float; anything else a float array (as ``np.asarray``)."""
    if type(x) is float:
        return x
    if isinstance(x, int | float | np.integer | np.floating):
        return float(x)
    return np.asarray(x, dtype=float)


def out(x: Num) -> Num:
    """A result as a Python float, or the array when there is more than one value."""
    if type(x) is float:
        return x
    if isinstance(x, np.ndarray) and x.ndim:
        return x
    return float(x)


def out_bool(x: object) -> bool | np.ndarray:
    """A condition as a Python bool, or the boolean array when there is more than one value."""
    if type(x) is bool:
        return x
    if isinstance(x, np.ndarray) and x.ndim:
        return x
    return bool(x)


def sqrt(x: Num) -> Num:
    if type(x) is float:
        return math.sqrt(x) if x >= 0 else nan
    if isinstance(x, np.ndarray):
        return np.sqrt(x)
    return math.sqrt(x) if x >= 0 else nan  # numpy: nan for negative or nan input


def div(a: Num, b: Num) -> Num:
    """``a / b`` with numpy's answers for a zero divisor (+-inf, nan for 0/0), no warning."""
    if not (type(a) is float and type(b) is float) and (
            isinstance(a, np.ndarray) or isinstance(b, np.ndarray)):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.true_divide(a, b)
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return nan
        return math.copysign(inf, a) * math.copysign(1.0, b)


def minimum(a: Num, b: Num) -> Num:
    """Element-wise minimum; nan when either is nan (``np.minimum``)."""
    if not (type(a) is float and type(b) is float) and (
            isinstance(a, np.ndarray) or isinstance(b, np.ndarray)):
        return np.minimum(a, b)
    if a != a or b != b:
        return nan
    return b if b < a else a


def maximum(a: Num, b: Num) -> Num:
    """Element-wise maximum; nan when either is nan (``np.maximum``)."""
    if not (type(a) is float and type(b) is float) and (
            isinstance(a, np.ndarray) or isinstance(b, np.ndarray)):
        return np.maximum(a, b)
    if a != a or b != b:
        return nan
    return b if b > a else a


def fmax(a: Num, b: Num) -> Num:
    """Element-wise maximum ignoring nan (``np.fmax``)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.fmax(a, b)
    if a != a:
        return b
    if b != b:
        return a
    return b if b > a else a


def clip(x: Num, lo: float, hi: float) -> Num:
    """``np.clip``: ``minimum(maximum(x, lo), hi)``; nan stays nan."""
    if isinstance(x, np.ndarray):
        return np.clip(x, lo, hi)
    if x < lo:
        x = lo
    return hi if x > hi else x


def isfinite(x: Num) -> bool | np.ndarray:
    """``np.isfinite`` (False for nan and +-inf)."""
    if isinstance(x, np.ndarray):
        return np.isfinite(x)
    return math.isfinite(x)


def logical_not(x: object) -> bool | np.ndarray:
    """``not x`` on a Python bool, ``~x`` on a boolean array (``~True`` would be -2)."""
    if isinstance(x, np.ndarray):
        return ~x
    return not x


def where(cond: object, a: Num, b: Num) -> Num:
    """``a`` where ``cond`` holds, else ``b`` (both already computed)."""
    if type(cond) is bool and type(a) is float and type(b) is float:
        return a if cond else b
    if isinstance(cond, np.ndarray) or isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.where(cond, a, b)
    return a if cond else b
