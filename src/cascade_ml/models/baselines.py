"""Baselines fitted on exactly the folds and rows the models see.

Every baseline is one subclass with the same two methods, so the walk-forward treats them alike:
``fit(features, y, train_index) -> self`` (``features`` is the whole feature table, which holds
only data known at each row's close; ``y`` are labels of the training rows; the rolling HAR
alone also reads earlier rows' labels once their window has closed, see ``RollingHAR``) and
``predict(features, index) -> np.ndarray``. Volatility baselines predict ``fwd_rv`` (variance
over H bars); cascade baselines predict a probability.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from arch import arch_model
from scipy.signal import lfilter
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from cascade_ml.contracts.columns import (
    HAR_COLUMNS,
    LEVEL_PATTERN,
    LOG_LEVEL_PATTERN,
    TRIGGER_COLUMNS,
)
from cascade_ml.models.config import HarRollConfig
from cascade_ml.models.metrics import qlike_loss

log = logging.getLogger(__name__)
_TINY = 1e-12


class Baseline:
    """A baseline forecaster: ``fit`` on training rows, ``predict`` any later rows."""

    name = "baseline"

    def __init__(self, horizon: int = 24) -> None:
        self.horizon = horizon

    def fit(self, features: pd.DataFrame, y: pd.Series, train_index: pd.Index) -> Baseline:
        return self

    def predict(self, features: pd.DataFrame, index: pd.Index) -> np.ndarray:
        raise NotImplementedError


# --------------------------------------------------------------------------- volatility
class NaiveRV(Baseline):
    """Last 24 h realized variance, scaled to H bars."""

    name = "naive"

    def predict(self, features, index):
        return features.loc[index, "rv_24h"].to_numpy(float) * self.horizon / 24.0


class EWMA(Baseline):
    """RiskMetrics: sigma2_{t+1} = lam sigma2_t + (1 - lam) r_t^2 on hourly returns, times H."""

    name = "ewma"

    def __init__(self, horizon: int = 24, lam: float = 0.94) -> None:
        super().__init__(horizon)
        self.lam = lam

    def predict(self, features, index):
        r2 = features["ret_1h"].fillna(0.0).to_numpy(float) ** 2
        init = float(np.mean(r2[: min(len(r2), 24)]))
        s, _ = lfilter([1 - self.lam], [1, -self.lam], r2, zi=[self.lam * init])
        return pd.Series(s, index=features.index).loc[index].to_numpy() * self.horizon


def _log(x: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(x, dtype=float), _TINY))


class HAR(Baseline):
    """HAR-RV re-estimated on each training window, in per-hour units, bias-corrected.

    log fwd_rv = c + b_d log(rv_24h/24) + b_w log(rv_168h/168) + b_m log(rv_720h/720),
    by OLS; mapped back with the smearing factor mean(exp(residual)).
    """

    name = "har"

    @staticmethod
    def design(features: pd.DataFrame, index: pd.Index) -> np.ndarray:
        f = features.loc[index]
        cols = [_log(f["rv_24h"] / 24), _log(f["rv_168h"] / 168), _log(f["rv_720h"] / 720)]
        return np.column_stack([np.ones(len(f)), *cols])

    def fit(self, features, y, train_index):
        X = self.design(features, train_index)
        target = _log(y.loc[train_index].to_numpy(float))
        self.coef_, *_ = np.linalg.lstsq(X, target, rcond=None)
        self.smearing_ = float(np.mean(np.exp(target - X @ self.coef_)))
        return self

    def predict(self, features, index):
        return np.exp(self.design(features, index) @ self.coef_) * self.smearing_


def window_ols(x: np.ndarray, ly: np.ndarray, xtx: np.ndarray | None = None,
               xty: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """OLS of ``ly`` on ``x`` (from the normal equations when given: a window of prefix sums),
    with the smearing factor mean(exp(residual)) of its residuals. Shared by the rolling HARs
    (per symbol here, pooled in ``cascade_ml.panel.estimators``)."""
    coef = None
    if xtx is not None:
        try:
            coef = np.linalg.solve(xtx, xty)
        except np.linalg.LinAlgError:  # singular window: the least-squares solution
            coef = None
    if coef is None:
        coef, *_ = np.linalg.lstsq(x, ly, rcond=None)
    return coef, float(np.mean(np.exp(ly - x @ coef)))


class RollingHAR(HAR):
    """HAR-RV fitted the strong way (Audrino & Chassot 2024, "HARd to Beat"): the same OLS as
    ``HAR`` on a rolling window of the last ``window`` usable rows (0 = expanding), re-estimated
    every ``refit_every`` forecast rows.

    Purged by construction: the refit for the block of rows starting at ``tau`` uses only rows
    ``s`` whose label window closed by the close of bar ``tau`` (``s + H bars <= tau``), so inside
    a test span it learns a row's outcome only once it is public. ``fit`` chooses the window
    from ``windows`` on the training rows alone (each candidate forecasts the last
    ``select_frac`` of them the same rolling way from training labels only; the lowest mean
    QLIKE wins, ties to the first listed) and sets ``coef_``/``smearing_`` to the fit on the last
    window of training rows. ``predict`` never revisits the choice, so the rows it forecasts (a
    final period) never decide it. ``y`` given to ``fit`` is kept: ``predict`` reads the labels
    of earlier rows, time-gated as above.
    """

    name = "har_roll"

    def __init__(self, horizon: int = 24, windows: tuple[int, ...] = (720, 2160, 4320, 8760, 0),
                 refit_every: int = 24, select_frac: float = 0.3, min_rows: int = 100) -> None:
        super().__init__(horizon)
        self.windows = tuple(windows)
        self.refit_every = refit_every
        self.select_frac = select_frac
        self.min_rows = min_rows

    def _prepare(self, features: pd.DataFrame, y: pd.Series) -> None:
        self.index_ = features.index
        self.X_ = self.design(features[list(HAR_COLUMNS)], features.index)
        label = y.reindex(features.index).to_numpy(float)
        self.ly_ = np.where(label > 0, _log(label), np.nan)
        step = pd.Timedelta(int(np.median(np.diff(features.index.asi8))), unit=features.index.unit)
        self.label_end_ = (features.index + self.horizon * step).asi8
        self.finite_ = np.isfinite(self.X_).all(axis=1) & np.isfinite(self.ly_)

    def _rolling(self, rows: np.ndarray, window: int, allowed: np.ndarray) -> np.ndarray:
        """Forecasts of feature rows ``rows`` (positions), refitted every ``refit_every`` rows on
        ``allowed`` rows whose labels closed by the block's first row."""
        usable = np.flatnonzero(self.finite_ & allowed)
        ends = self.label_end_[usable]
        x, ly = self.X_[usable], self.ly_[usable]
        zero = np.zeros((1, x.shape[1], x.shape[1]))
        xtx = np.concatenate([zero, np.cumsum(x[:, :, None] * x[:, None, :], axis=0)])
        xty = np.concatenate([zero[:, 0], np.cumsum(x * ly[:, None], axis=0)])
        times = self.index_.asi8
        out = np.full(len(rows), np.nan)
        for b in range(0, len(rows), self.refit_every):
            block = rows[b:b + self.refit_every]
            k = int(np.searchsorted(ends, times[block[0]], side="right"))
            lo = max(0, k - window) if window else 0
            if k - lo < self.min_rows:
                continue
            coef, smear = window_ols(x[lo:k], ly[lo:k], xtx[k] - xtx[lo], xty[k] - xty[lo])
            out[b:b + len(block)] = np.exp(self.X_[block] @ coef) * smear
        return out

    def fit(self, features, y, train_index):
        self._prepare(features, y)
        pos = self.index_.get_indexer(train_index)
        allowed = np.zeros(len(self.index_), dtype=bool)
        allowed[pos] = True
        sel = pos[int(len(pos) * (1 - self.select_frac)):]
        losses = {}
        for w in self.windows:
            pred = self._rolling(sel, w, allowed)
            ok = np.isfinite(pred) & self.finite_[sel]
            losses[w] = (float(np.mean(qlike_loss(np.exp(self.ly_[sel][ok]), pred[ok])))
                         if ok.any() else np.inf)
        self.losses_ = losses
        self.window_ = min(self.windows, key=lambda w: losses[w])  # ties: first listed
        last = np.flatnonzero(self.finite_ & allowed)[-self.window_ if self.window_ else 0:]
        self.coef_, self.smearing_ = window_ols(self.X_[last], self.ly_[last])
        return self

    def predict(self, features, index):
        if not features.index.equals(self.index_):
            raise ValueError("RollingHAR.predict needs the feature table it was fitted with")
        return self._rolling(self.index_.get_indexer(index), self.window_,
                             np.ones(len(self.index_), dtype=bool))


class GARCH(Baseline):
    """GARCH(1,1) (``o=0``) or GJR-GARCH (``o=1``) from ``arch``, zero mean, normal errors.

    Fitted once per training window on its last ``window`` hourly returns; the test rows are then
    filtered with the fixed parameters (``arch_model(...).fix``) over returns up to each row only,
    and the H-step variance path is summed. No refit per row.
    """

    name = "garch"

    def __init__(self, horizon: int = 24, window: int = 3000, o: int = 0) -> None:
        super().__init__(horizon)
        self.window = window
        self.o = o

    def _model(self, returns: pd.Series):
        return arch_model(returns * 100.0, mean="Zero", vol="GARCH", p=1, o=self.o, q=1,
                          rescale=False)

    def fit(self, features, y, train_index):
        ret = features["ret_1h"].fillna(0.0)
        end = ret.index.get_loc(train_index[-1])
        start = max(0, end + 1 - self.window)
        self.start_ = ret.index[start]
        res = self._model(ret.iloc[start:end + 1]).fit(disp="off", show_warning=False)
        self.params_ = res.params
        return self

    def predict(self, features, index):
        ret = features["ret_1h"].fillna(0.0)
        start = min(self.start_, index[0])
        series = ret.loc[start:index[-1]]
        fixed = self._model(series).fix(self.params_)
        fc = fixed.forecast(horizon=self.horizon, start=index[0], reindex=False)
        path = fc.variance.sum(axis=1) / 1e4
        return path.reindex(index).to_numpy(float)


# --------------------------------------------------------------------------- cascade
class Climatology(Baseline):
    """The training base rate, for every row."""

    name = "climatology"

    def fit(self, features, y, train_index):
        self.rate_ = float(np.mean(y.loc[train_index]))
        return self

    def predict(self, features, index):
        return np.full(len(index), self.rate_)


class Logistic(Baseline):
    """Logistic regression on the model's features; imputer and scaler see training rows only."""

    name = "logistic"

    def __init__(self, horizon: int = 24, columns: list[str] | None = None, C: float = 0.1,
                 seed: int = 42, min_coverage: float = 0.5) -> None:
        super().__init__(horizon)
        self.columns = columns
        self.C = C
        self.seed = seed
        self.min_coverage = min_coverage

    def _x(self, features, index, cols=None):
        cols = cols or self.used_
        x = features.loc[index, cols].to_numpy(float)
        x = np.where(np.isfinite(x), x, np.nan)
        for j, c in enumerate(cols):  # variance levels enter as logs (a linear model extrapolates)
            if LEVEL_PATTERN.search(c) and not LOG_LEVEL_PATTERN.search(c):
                x[:, j] = np.log(np.maximum(x[:, j], 1e-12))
        return x

    def fit(self, features, y, train_index):
        # the same coverage rule as the models: a source known for a sliver of the training rows
        # would be imputed there and extrapolated linearly once it appears
        cols = self.columns or list(features.columns)
        known = np.isfinite(self._x(features, train_index, cols)).mean(axis=0)
        self.used_ = [c for c, k in zip(cols, known, strict=True) if k >= self.min_coverage]
        self.pipe_ = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
            FunctionTransformer(np.clip, kw_args={"a_min": -5.0, "a_max": 5.0}),
            LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed))
        yt = y.loc[train_index].to_numpy(int)
        self.single_ = None if len(np.unique(yt)) == 2 else float(yt.mean())
        if self.single_ is None:  # unweighted: its probabilities are frequencies already
            self.pipe_.fit(self._x(features, train_index), yt)
        return self

    def predict(self, features, index):
        if self.single_ is not None:
            return np.full(len(index), self.single_)
        return self.pipe_.predict_proba(self._x(features, index))[:, 1]


class Rules(Baseline):
    """Count of fired rule triggers (NaN = not fired), mapped to its training event rate."""

    name = "rules"

    @staticmethod
    def score(features: pd.DataFrame, index: pd.Index) -> np.ndarray:
        cols = [c for c in TRIGGER_COLUMNS if c in features.columns]
        if not cols:
            return np.zeros(len(index), dtype=int)
        fired = np.nan_to_num(features.loc[index, cols].to_numpy(float)).round().sum(1)
        return fired.clip(0, len(TRIGGER_COLUMNS)).astype(int)

    def fit(self, features, y, train_index):
        s = self.score(features, train_index)
        yt = y.loc[train_index].to_numpy(float)
        base = float(yt.mean())
        # Laplace-style shrinkage to the base rate so a rare score level is not 0 or 1.
        self.rates_ = {int(k): float((yt[s == k].sum() + base * 10) / ((s == k).sum() + 10))
                       for k in range(len(TRIGGER_COLUMNS) + 1)}
        return self

    def predict(self, features, index):
        return np.array([self.rates_[int(k)] for k in self.score(features, index)])


def volatility_baselines(horizon: int, ewma_lambda: float = 0.94, garch_window: int = 3000,
                         har_roll: HarRollConfig | None = None) -> dict[str, Baseline]:
    roll = har_roll or HarRollConfig()
    return {"ewma": EWMA(horizon, ewma_lambda), "har": HAR(horizon),
            "har_roll": RollingHAR(horizon, tuple(roll.windows), roll.refit_every,
                                   roll.select_frac, roll.min_rows),
            "garch": GARCH(horizon, garch_window, o=0), "gjr": GARCH(horizon, garch_window, o=1),
            "naive": NaiveRV(horizon)}


def cascade_baselines(horizon: int, columns: list[str], seed: int = 42,
                      min_coverage: float = 0.5) -> dict[str, Baseline]:
    return {"climatology": Climatology(horizon),
            "logistic": Logistic(horizon, columns, seed=seed, min_coverage=min_coverage),
            "rules": Rules(horizon)}
