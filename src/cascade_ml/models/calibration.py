"""Probability calibration stored as plain arrays, so serving needs only numpy.

Isotonic: the fitted step function's knots, applied with ``np.interp`` (clipped at the ends).
Platt: ``p = 1 / (1 + exp(-(a * logit(raw) + b)))``. scikit-learn is imported only to fit.
The per-symbol classifier and the panel's LightGBM classifier are both calibrated here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) with p clipped to [1e-6, 1 - 1e-6] (finite for 0 and 1)."""
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), overflow-safe."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, dtype=float), -50, 50)))


@dataclass
class Calibration:
    """A monotone map from raw model probability to calibrated probability."""

    method: str = "identity"
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    a: float = 1.0
    b: float = 0.0

    def apply(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=float)
        if self.method == "isotonic":
            return np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        if self.method == "platt":
            return sigmoid(self.a * logit(raw) + self.b)
        return raw

    def to_dict(self) -> dict:
        return {"method": self.method, "x": list(self.x), "y": list(self.y),
                "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(method=data["method"], x=[float(v) for v in data.get("x", [])],
                   y=[float(v) for v in data.get("y", [])], a=float(data.get("a", 1.0)),
                   b=float(data.get("b", 0.0)))


def fit_calibration(raw: np.ndarray, y: np.ndarray, method: str) -> Calibration:
    """Fit the map on held-in data; with one class only there is nothing to learn (identity)."""
    from sklearn.isotonic import IsotonicRegression  # fit-time only: applying needs numpy alone
    from sklearn.linear_model import LogisticRegression

    raw = np.asarray(raw, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(np.unique(y)) < 2 or len(raw) < 2:
        return Calibration()
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return Calibration("isotonic", x=iso.X_thresholds_.tolist(), y=iso.y_thresholds_.tolist())
    if method == "platt":
        lr = LogisticRegression(C=1e6).fit(logit(raw).reshape(-1, 1), y)
        return Calibration("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    raise ValueError(f"unknown calibration method {method!r}")
