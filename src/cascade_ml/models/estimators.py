"""The two forecast models, as scikit-learn estimators around LightGBM.

Each estimator does the fitting and stores what it fitted as one object of
``cascade_ml.models.forecast`` (``forecast_``); its predictions go through that object, and the
bundle saves exactly that object, so the numbers evaluated here are the numbers served.

``VolatilityForecaster`` forecasts forward realized variance as a correction to a level the
trees cannot extrapolate on their own (``levels``, a ``LevelTransform``): by default a HAR-RV
fit re-estimated on the training rows (else an anchor column such as last week's RV scaled to
H). Level inputs are fed as log ratios to that level, so a forest fitted in a calm year still
applies in a wild one. ``objective="gamma"`` (the estimator's default) boosts RV under the Gamma
deviance with log link, which is twice QLIKE, and estimates E[RV] directly; ``objective="l2"``
(the pipeline default, steadier out of sample on NEAR) regresses log RV and maps back with
Duan's smearing factor ``mean(exp(residual))`` (``exp(E[log RV]) < E[RV]``).
``fit`` takes ``y`` = log RV and ``predict`` returns log RV (the sklearn contract: same scale);
``predict_variance`` returns the variance over H bars. With ``shrink_frac`` > 0 the tree
correction is scaled by a weight ``shrink_`` in [0, 1] chosen by QLIKE on the last
``shrink_frac`` of the training rows (HAR and trees refitted on the rows before it, minus a gap
of ``shrink_gap`` rows): on short windows, where the trees overfit, the forecast leans on HAR.

``CascadeClassifier`` fits LightGBM on the earlier part of its training rows and a calibration
map (isotonic or Platt) on the later part, with a gap of ``calib_gap`` rows so the inner label
windows do not overlap. Rows must be passed in time order. Test data never reaches either.
``features`` (column positions) restricts its inputs: other columns are blanked at fit time, so
the booster never references them and prediction needs no mask.

Both take their LightGBM settings as one ``lgbm`` dict (keys of ``LGBM_DEFAULTS`` or any other
LightGBM parameter); ``random_state`` and ``n_jobs`` stay separate, as in scikit-learn.
Parameters are checked in ``fit`` against ``_parameter_constraints`` (scikit-learn's validator).
"""

from __future__ import annotations

from dataclasses import replace
from numbers import Integral, Real

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from cascade_ml.contracts.columns import quantile_key
from cascade_ml.models.calibration import Calibration, fit_calibration
from cascade_ml.models.forecast import CascadeModel, LevelTransform, VolatilityModel
from cascade_ml.models.lgbm import lgbm_params

_COMMON_CONSTRAINTS = {
    "lgbm": [dict, None], "min_coverage": [Interval(Real, 0, 1, closed="both")],
    "random_state": ["random_state"], "n_jobs": [Integral, None]}


def _lgbm_kwargs(est, **extra) -> dict:
    """The estimator's LightGBM parameters (its ``lgbm`` dict, seed and threads)."""
    return lgbm_params(est.lgbm, seed=est.random_state, threads=est.n_jobs, **extra)


def mask_sparse(X: np.ndarray, min_coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Blank columns known in fewer than ``min_coverage`` of the training rows.

    A source that starts late (funding since 2023-11, open interest for 30 days) would otherwise
    be learned from a sliver of history. A column that is all NaN at fit time is never split on,
    so prediction needs no mask: the trees simply do not reference it.
    """
    used = np.isfinite(X).mean(axis=0) >= min_coverage if len(X) else np.ones(X.shape[1], bool)
    if used.all():
        return X, used
    X = np.array(X, dtype=float, copy=True)
    X[:, ~used] = np.nan
    return X, used


def fit_har(design: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """OLS of log RV on the HAR design, intercept shifted by the HAR smearing factor (the level
    is log E[RV], not E[log RV])."""
    ok = np.isfinite(design).all(axis=1)
    coef, *_ = np.linalg.lstsq(design[ok], y[ok], rcond=None)
    coef[0] += np.log(np.mean(np.exp(np.clip(y[ok] - design[ok] @ coef, -50, 50))))
    return tuple(float(c) for c in coef)


class VolatilityForecaster(RegressorMixin, BaseEstimator):
    """LightGBM on log forward RV; variance forecasts with a smearing bias correction."""

    _parameter_constraints = {
        **_COMMON_CONSTRAINTS, "levels": [LevelTransform, None], "quantiles": ["array-like", None],
        "objective": [StrOptions({"gamma", "l2"})],
        "shrink_frac": [Interval(Real, 0, 1, closed="left")],
        "shrink_gap": [Interval(Integral, 0, None, closed="left")]}

    def __init__(self, *, lgbm: dict | None = None, levels: LevelTransform | None = None,
                 quantiles: tuple[float, ...] | None = None, objective: str = "gamma",
                 min_coverage: float = 0.0, shrink_frac: float = 0.0, shrink_gap: int = 0,
                 random_state: int = 42, n_jobs: int = 2) -> None:
        self.lgbm = lgbm
        self.levels = levels
        self.quantiles = quantiles
        self.objective = objective
        self.min_coverage = min_coverage
        self.shrink_frac = shrink_frac
        self.shrink_gap = shrink_gap
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # fitted state, all held by ``forecast_`` (what the bundle saves)
    @property
    def shrink_(self) -> float:
        """Weight of the tree correction (0 = level only, 1 = full)."""
        return self.forecast_.shrink

    @property
    def smearing_(self) -> float:
        return self.forecast_.smearing

    def offset(self, X) -> np.ndarray:
        """The fitted level the trees correct (log variance over H bars)."""
        check_is_fitted(self)
        return self.forecast_.transform.offset(np.asarray(X, dtype=float))

    def tree_inputs(self, X) -> np.ndarray:
        """Rows as the fitted trees see them (level inputs as log ratios to the level)."""
        check_is_fitted(self)
        X = np.asarray(X, dtype=float)
        transform = self.forecast_.transform
        return transform.tree_inputs(X, transform.offset(X))

    def _fit_trees(self, X, y) -> tuple:
        """Level, trees and the training rows' correction on (X, y)."""
        levels = self.levels or LevelTransform()
        if levels.har:
            levels = replace(levels, har_coef=fit_har(levels.har_design(X), y))
        off = levels.offset(X)
        Xt, used = mask_sparse(levels.tree_inputs(X, off), self.min_coverage)
        if self.objective == "gamma":
            # Gamma deviance with log link = 2 x QLIKE: boosting minimises the evaluation loss
            # directly and estimates E[RV], so no smearing is needed.
            model = lgb.LGBMRegressor(**_lgbm_kwargs(self, objective="gamma")).fit(
                Xt, np.exp(np.clip(y, -50, 50)), init_score=off)
        else:
            model = lgb.LGBMRegressor(**_lgbm_kwargs(self)).fit(Xt, y - off)
        corr = model.booster_.predict(Xt, raw_score=True)
        return levels, model.booster_, off, corr, Xt, used

    def _smearing(self, y, off, corr) -> float:
        if self.objective == "gamma":
            return 1.0
        return float(np.mean(np.exp(np.clip(y - off - corr, -50, 50))))

    def _fit_shrink(self, X, y) -> float:
        """Weight of the tree correction (0 = HAR/anchor only, 1 = full), chosen on a later slice
        of the training rows by QLIKE, with HAR and trees refitted on the earlier rows only."""
        n = len(y)
        n_val = int(n * self.shrink_frac)
        stop = n - n_val - self.shrink_gap
        if not self.shrink_frac or n_val < 50 or stop < 50:
            return 1.0
        levels, booster, off_in, corr_in, _, _ = self._fit_trees(X[:stop], y[:stop])
        Xv, yv = X[n - n_val:], y[n - n_val:]
        off_v = levels.offset(Xv)
        corr_v = booster.predict(levels.tree_inputs(Xv, off_v), raw_score=True)
        rv = np.exp(np.clip(yv, -50, 50))
        best, best_loss = 1.0, np.inf
        for w in np.linspace(0.0, 1.0, 21):
            f = np.exp(np.clip(off_v + w * corr_v, -50, 50)) * self._smearing(
                y[:stop], off_in, w * corr_in)
            loss = float(np.mean(rv / f - np.log(rv / f) - 1))
            if loss < best_loss - 1e-12:
                best, best_loss = float(w), loss
        return best

    def fit(self, X, y):
        self._validate_params()
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", y_numeric=True)
        y = np.asarray(y, dtype=float)
        shrink = self._fit_shrink(X, y)
        levels, booster, off, corr, Xt, self.used_features_ = self._fit_trees(X, y)
        quantiles = {
            quantile_key(q): lgb.LGBMRegressor(**_lgbm_kwargs(self, objective="quantile", alpha=q))
            .fit(Xt, y - off).booster_ for q in (self.quantiles or ())}
        self.forecast_ = VolatilityModel(
            levels, booster, shrink=shrink, smearing=self._smearing(y, off, shrink * corr),
            objective=self.objective, quantiles=quantiles)
        return self

    def _rows(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, ensure_all_finite="allow-nan")

    def predict(self, X):
        """Forecast of log forward RV (log of the mean for ``gamma``, mean log for ``l2``)."""
        X = self._rows(X)  # NotFittedError before fit
        return self.forecast_.log_forecast(X)

    def predict_variance(self, X):
        """Forecast of forward RV (a variance over H bars), bias-corrected."""
        X = self._rows(X)  # NotFittedError before fit
        return self.forecast_.variance(X)

    def predict_quantiles(self, X) -> dict[str, np.ndarray]:
        """Variance quantiles (quantiles survive the exp map, so no correction)."""
        X = self._rows(X)  # NotFittedError before fit
        return self.forecast_.quantile_forecasts(X)


class CascadeClassifier(ClassifierMixin, BaseEstimator):
    """Binary LightGBM for cascade events, calibrated on a later slice of its own training rows."""

    _parameter_constraints = {
        **_COMMON_CONSTRAINTS, "class_weight": [StrOptions({"balanced"}), None],
        "calibration": [StrOptions({"isotonic", "platt"})],
        "calibration_frac": [Interval(Real, 0, 1, closed="left")],
        "calib_gap": [Interval(Integral, 0, None, closed="left")],
        "features": ["array-like", None]}

    def __init__(self, *, lgbm: dict | None = None, class_weight: str | None = "balanced",
                 calibration: str = "isotonic", calibration_frac: float = 0.2,
                 calib_gap: int = 0, min_coverage: float = 0.0,
                 features: tuple[int, ...] | None = None, random_state: int = 42,
                 n_jobs: int = 2) -> None:
        self.lgbm = lgbm
        self.class_weight = class_weight
        self.calibration = calibration
        self.calibration_frac = calibration_frac
        self.calib_gap = calib_gap
        self.min_coverage = min_coverage
        self.features = features
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    @property
    def calibration_(self) -> Calibration:
        return self.forecast_.calibration

    def _booster(self, X, y) -> lgb.Booster:
        extra = {}
        pos = float(np.sum(y == 1))
        if self.class_weight == "balanced" and 0 < pos < len(y):
            extra["scale_pos_weight"] = float(np.sum(y == 0)) / pos
        return lgb.LGBMClassifier(**_lgbm_kwargs(self, **extra)).fit(X, y).booster_

    def fit(self, X, y):
        self._validate_params()
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan")
        kind = type_of_target(y, raise_unknown=True)
        if kind != "binary":
            raise ValueError(f"Only binary classification is supported. Got target type {kind!r}.")
        self.classes_ = np.unique(y)
        X, self.used_features_ = mask_sparse(X, self.min_coverage)
        if self.features is not None:  # columns outside the set are blanked: never split on
            keep = np.zeros(X.shape[1], bool)
            keep[list(self.features)] = True
            X = np.where(keep, X, np.nan)
            self.used_features_ = self.used_features_ & keep
        y01 = (y == self.classes_[-1]).astype(int)
        n = len(y01)
        n_cal = int(n * self.calibration_frac)
        stop = n - n_cal - self.calib_gap
        inner, cal = slice(0, stop), slice(n - n_cal, n)
        if stop > 1 and n_cal > 1 and len(np.unique(y01[inner])) == 2:
            booster = self._booster(X[inner], y01[inner])
            calibration = fit_calibration(booster.predict(X[cal]), y01[cal], self.calibration)
            self.calibration_rows_ = np.arange(n)[cal]
        else:  # too few rows to hold some out: uncalibrated, said so by the identity map
            booster = self._booster(X, y01)
            calibration = Calibration()
            self.calibration_rows_ = np.arange(0)
        self.forecast_ = CascadeModel(booster, calibration)
        return self

    def raw_proba(self, X) -> np.ndarray:
        """Uncalibrated positive-class probability."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        return self.forecast_.raw_proba(X)

    def predict_proba(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        p = self.forecast_.proba(X)
        return np.column_stack([1 - p, p])

    def predict(self, X):
        check_is_fitted(self)
        return self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]
