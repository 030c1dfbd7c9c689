"""Panel forecasters: pooled linear HAR variants, a LightGBM correction, a cascade classifier.

All volatility models forecast ``y = log(fwd_rv / H) - lvl`` (the standardised log variance of
Bollerslev, Hood, Huss & Pedersen 2018, with the symbol's trailing level in place of a fixed
effect, so an unseen perp needs no coefficient of its own) and map back with
``var = exp(pred + lvl) * H * smearing``. Each has ``fit(frame) -> self`` and
``predict(frame) -> np.ndarray`` of standardised log variances; the frames are panel rows.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cascade_ml.models.baselines import window_ols
from cascade_ml.models.lgbm import lgbm_params
from cascade_ml.models.metrics import qlike_loss
from cascade_ml.panel.dataset import LVL

LINEAR_KINDS = {
    "panel_har": ("d", "w", "m"),
    "panel_shar": ("d", "w", "m", "asym_d", "asym_w"),
    "panel_harq": ("d", "w", "m", "harq"),
    "panel_harx": ("d", "w", "m", "asym_d", "harq", "mkt_median_d", "mkt_btc_d"),
}
"""Pooled HAR (Corsi 2009 on standardised logs), semivariance HAR (Patton & Sheppard 2015, as
the signed-variance share), HARQ (Bollerslev, Patton & Quaedvlieg 2016: the daily term damped
by measurement error) and HAR with market state."""


def har_terms(frame: pd.DataFrame) -> pd.DataFrame:
    """d, w, m with cold-start fills (a missing month takes the week, a missing week the day)."""
    d = frame["d"]
    w = frame["w"].fillna(d)
    m = frame["m"].fillna(w)
    return pd.DataFrame({"d": d, "w": w, "m": m}, index=frame.index)


class LinearPanel:
    """OLS of y on a fixed design over pooled rows; missing extras enter as 0 (their mean)."""

    def __init__(self, kind: str = "panel_har") -> None:
        self.kind = kind
        self.terms = LINEAR_KINDS[kind]

    def design(self, frame: pd.DataFrame) -> np.ndarray:
        har = har_terms(frame)
        cols = []
        for t in self.terms:
            if t in har:
                x = har[t].to_numpy(float)
            elif t == "harq":  # daily term times (log quarticity ratio - its training mean)
                q = frame["harq_q"].to_numpy(float) - self.q_mean_
                x = har["d"].to_numpy(float) * np.nan_to_num(q)
            else:
                x = frame[t].to_numpy(float) - self.means_[t]
            cols.append(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))
        return np.column_stack([np.ones(len(frame)), *cols])

    def fit(self, frame: pd.DataFrame) -> LinearPanel:
        self.q_mean_ = float(np.nanmean(frame["harq_q"])) if "harq_q" in frame else 0.0
        self.means_ = {t: float(np.nanmean(frame[t])) for t in self.terms
                       if t not in ("d", "w", "m", "harq") and t in frame}
        X, y = self.design(frame), frame["y"].to_numpy(float)
        self.coef_, *_ = np.linalg.lstsq(X, y, rcond=None)
        self.smearing_ = float(np.mean(np.exp(y - X @ self.coef_)))
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.design(frame) @ self.coef_ + np.log(self.smearing_)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "coef": [float(c) for c in self.coef_],
                "smearing": self.smearing_, "q_mean": self.q_mean_, "means": self.means_}


class RollingPanelHAR:
    """The pooled HAR (``panel_har``) fitted the strong way (Audrino & Chassot 2024): OLS over
    the pooled rows whose label closed within the last ``window`` bars before each refit
    (0 = every earlier row), re-estimated every ``refit_every`` bars.

    A refit at time ``tau`` reads only rows ``s`` with ``s + H bars <= tau`` (their outcome is
    public), so a forecast at ``t`` never depends on a row after ``t - H``. The window is
    chosen by ``choose`` on rows the caller passes (the fold's validation slice, inside the
    training span); ``forecast`` never revisits it. Windows are in bars (for a symbol without
    gaps, the same rows as ``RollingHAR``'s row windows)."""

    def __init__(self, horizon: int, bar: pd.Timedelta, windows: tuple[int, ...] = (0,),
                 refit_every: int = 24, min_rows: int = 100) -> None:
        self.horizon, self.bar = horizon, bar
        self.windows, self.refit_every, self.min_rows = tuple(windows), refit_every, min_rows

    def forecast(self, source: pd.DataFrame, target: pd.DataFrame, window: int) -> np.ndarray:
        """Standardised log forecasts of ``target`` rows, refitted on ``source`` rows (with
        ``y``) as their labels close; NaN where a refit has fewer than ``min_rows`` rows."""
        har = LinearPanel("panel_har")
        src = source[np.isfinite(source["y"].to_numpy(float))]
        step = self.bar.value
        ends = src["timestamp"].to_numpy("datetime64[ns]").astype("int64") + self.horizon * step
        order = np.argsort(ends, kind="stable")
        ends, x = ends[order], har.design(src)[order]
        ly = src["y"].to_numpy(float)[order]
        t = target["timestamp"].to_numpy("datetime64[ns]").astype("int64")
        out = np.full(len(target), np.nan)
        if not len(t) or not len(ends):
            return out
        block = (t - t.min()) // (self.refit_every * step)
        taus = t.min() + np.unique(block) * self.refit_every * step
        ks = np.searchsorted(ends, taus, side="right")
        los = (np.searchsorted(ends, taus - window * step, side="right") if window
               else np.zeros_like(ks))
        cuts = np.unique(np.concatenate([[0], ks, los]))
        xtx, xty = _prefix_moments(x, ly, cuts)
        x_t = har.design(target)
        for b, k, lo in zip(np.unique(block), ks, los, strict=True):
            if k - lo < self.min_rows:
                continue
            i, j = np.searchsorted(cuts, k), np.searchsorted(cuts, lo)
            coef, smear = window_ols(x[lo:k], ly[lo:k], xtx[i] - xtx[j], xty[i] - xty[j])
            rows = block == b
            out[rows] = x_t[rows] @ coef + np.log(smear)
        return out

    def choose(self, source: pd.DataFrame, select: pd.DataFrame) -> RollingPanelHAR:
        """The window with the lowest mean QLIKE on ``select`` rows, each forecast the same
        rolling way from ``source`` (ties to the first listed); sets ``window_``, ``losses_``."""
        self.losses_ = {}
        for w in self.windows:
            var = to_variance(self.forecast(source, select, w), select, self.horizon)
            ok = np.isfinite(var)
            self.losses_[w] = qlike(select[ok], var[ok]) if ok.any() else float("inf")
        self.window_ = min(self.windows, key=lambda w: self.losses_[w])
        return self


def _prefix_moments(x: np.ndarray, ly: np.ndarray,
                    cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X'X and X'y of the rows before each position in ``cuts`` (sorted, from 0): summed
    segment by segment, so memory grows with the cuts, not the rows."""
    xtx = np.zeros((len(cuts), x.shape[1], x.shape[1]))
    xty = np.zeros((len(cuts), x.shape[1]))
    for n, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True), start=1):
        xtx[n] = xtx[n - 1] + x[a:b].T @ x[a:b]
        xty[n] = xty[n - 1] + x[a:b].T @ ly[a:b]
    return xtx, xty


def strided(frame: pd.DataFrame, stride: int) -> pd.DataFrame:
    """Every ``stride``-th hour of each symbol (labels of neighbouring hours overlap)."""
    if stride <= 1:
        return frame
    hours = frame["timestamp"].astype("int64") // 3_600_000_000_000
    return frame[(hours % stride) == 0]


class TreeCorrection:
    """LightGBM on the panel inputs, fitted to the residual of a base linear forecast."""

    def __init__(self, inputs: list[str], params: dict, seed: int, threads: int,
                 stride: int) -> None:
        self.inputs, self.params = inputs, params
        self.seed, self.threads, self.stride = seed, threads, stride

    def fit(self, frame: pd.DataFrame, base: np.ndarray) -> TreeCorrection:
        sub = strided(frame.assign(_base=base), self.stride)
        data = lgb.Dataset(sub[self.inputs].to_numpy(np.float32),
                           sub["y"].to_numpy(float) - sub["_base"].to_numpy(float),
                           free_raw_data=True)
        self.booster_ = lgb.train(lgbm_params(self.params, seed=self.seed, threads=self.threads,
                                              objective="regression"), data)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster_.predict(frame[self.inputs].to_numpy(np.float32))


def to_variance(std_log: np.ndarray, frame: pd.DataFrame, horizon: int) -> np.ndarray:
    """Standardised log forecasts back to variances over H bars."""
    return np.exp(np.asarray(std_log, float) + frame[LVL].to_numpy(float)) * horizon


def qlike(frame: pd.DataFrame, var: np.ndarray) -> float:
    return float(np.mean(qlike_loss(frame["fwd_rv"].to_numpy(float), var)))


def best_weight(loss_of_weight, grid: np.ndarray | None = None) -> float:
    """The weight in [0, 1] (steps of 0.05) with the lowest loss; ties go to the smaller one."""
    grid = np.round(np.linspace(0, 1, 21), 2) if grid is None else grid
    losses = [loss_of_weight(float(g)) for g in grid]
    return float(grid[int(np.argmin(losses))])


# ------------------------------------------------------------------------------ cascade
class PooledLogistic:
    """Logistic regression on a few scale-free price-only columns, pooled over symbols."""

    def __init__(self, columns: list[str], C: float = 0.1, seed: int = 42) -> None:
        self.columns, self.C, self.seed = columns, C, seed

    def _x(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame.reindex(columns=self.columns).to_numpy(float)
        return np.where(np.isfinite(x), x, np.nan)

    def fit(self, frame: pd.DataFrame) -> PooledLogistic:
        self.pipe_ = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                   StandardScaler(),
                                   LogisticRegression(C=self.C, max_iter=2000,
                                                      random_state=self.seed))
        self.pipe_.fit(self._x(frame), frame["cascade"].to_numpy(int))
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pipe_.predict_proba(self._x(frame))[:, 1]


class PanelClassifier:
    """LightGBM cascade classifier on the panel inputs; its probabilities are calibrated later
    (``models.calibration``, as the per-symbol classifier's)."""

    def __init__(self, inputs: list[str], params: dict, seed: int, threads: int,
                 stride: int) -> None:
        self.inputs, self.params = inputs, params
        self.seed, self.threads, self.stride = seed, threads, stride

    def fit(self, frame: pd.DataFrame) -> PanelClassifier:
        sub = strided(frame, self.stride)
        data = lgb.Dataset(sub[self.inputs].to_numpy(np.float32),
                           sub["cascade"].to_numpy(float), free_raw_data=True)
        self.booster_ = lgb.train(lgbm_params(self.params, seed=self.seed, threads=self.threads,
                                              objective="binary"), data)
        return self

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated cascade probability of each row."""
        return self.booster_.predict(frame[self.inputs].to_numpy(np.float32))


# ------------------------------------------------------------------------------ adverse move
def pinball(y: np.ndarray, q_pred: np.ndarray, q: float) -> float:
    """Mean pinball (quantile) loss of ``q_pred`` as the ``q`` quantile of ``y``."""
    diff = np.asarray(y, float) - np.asarray(q_pred, float)
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def multipliers(adverse: np.ndarray, sigma: np.ndarray, quantiles: list[float]) -> dict:
    """Empirical quantiles of adverse / sigma (filtered historical simulation multipliers)."""
    z = np.asarray(adverse, float) / np.maximum(np.asarray(sigma, float), 1e-9)
    z = z[np.isfinite(z)]
    return {q: float(np.quantile(z, q)) for q in quantiles}


def exceed_prob(z_sorted: np.ndarray, threshold_over_sigma: np.ndarray) -> np.ndarray:
    """P(adverse / sigma > c) from the sorted training z's (empirical survival function)."""
    n = len(z_sorted)
    below = np.searchsorted(z_sorted, np.asarray(threshold_over_sigma, float), side="right")
    return (n - below + 0.5) / (n + 1.0)
