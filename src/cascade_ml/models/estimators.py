"""The two forecast models, as scikit-learn estimators around LightGBM.

``VolatilityForecaster`` forecasts forward realized variance as a correction to a level the
trees cannot extrapolate on their own: by default a HAR-RV fit re-estimated on the training
rows (else an anchor column such as last week's RV scaled to H). Level inputs are fed as log
ratios to that level, so a forest fitted in a calm year still applies in a wild one.
``objective="gamma"`` (the estimator's default) boosts RV under the Gamma deviance with log
link, which is twice QLIKE, and estimates E[RV] directly; ``objective="l2"`` (the pipeline
default, steadier out of sample on NEAR) regresses log RV and maps back with Duan's smearing
factor ``mean(exp(residual))`` (``exp(E[log RV]) < E[RV]``).
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
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from cascade_ml.models.calibration import Calibration, fit_calibration


def _lgbm_kwargs(est, **extra) -> dict:
    """LightGBM params from an estimator's stored settings, seeded and deterministic."""
    return dict(
        n_estimators=est.n_estimators, learning_rate=est.learning_rate, num_leaves=est.num_leaves,
        min_child_samples=est.min_child_samples, subsample=est.subsample,
        subsample_freq=est.subsample_freq, colsample_bytree=est.colsample_bytree,
        reg_lambda=est.reg_lambda, random_state=est.random_state, n_jobs=est.n_jobs,
        deterministic=True, force_row_wise=True, verbose=-1, **extra)


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


def quantile_key(q: float) -> str:
    """Column name of a variance quantile, e.g. 0.99 -> ``var_q99``."""
    return f"var_q{round(q * 100):d}"


class VolatilityForecaster(RegressorMixin, BaseEstimator):
    """LightGBM on log forward RV; variance forecasts with a smearing bias correction."""

    def __init__(self, n_estimators: int = 300, learning_rate: float = 0.03, num_leaves: int = 15,
                 min_child_samples: int = 50, subsample: float = 0.8, subsample_freq: int = 1,
                 colsample_bytree: float = 0.8, reg_lambda: float = 1.0,
                 quantiles: tuple[float, ...] | None = None, anchor: int | None = None,
                 anchor_scale: float = 1.0, relative: tuple[int, ...] = (),
                 relative_scale: tuple[float, ...] = (), har: tuple[int, ...] = (),
                 har_scale: tuple[float, ...] = (), relative_log: tuple[int, ...] = (),
                 objective: str = "gamma", min_coverage: float = 0.0,
                 shrink_frac: float = 0.0, shrink_gap: int = 0,
                 random_state: int = 42,
                 n_jobs: int = 2) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.quantiles = quantiles
        self.anchor = anchor
        self.anchor_scale = anchor_scale
        self.relative = relative
        self.relative_scale = relative_scale
        self.har = har
        self.har_scale = har_scale
        self.relative_log = relative_log
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

    def _har_design(self, X) -> np.ndarray:
        cols = [np.log(np.maximum(np.asarray(X[:, j], float) * s, 1e-12))
                for j, s in zip(self.har, self.har_scale, strict=True)]
        return np.column_stack([np.ones(len(X)), *cols])

    def offset(self, X) -> np.ndarray:
        """The level the trees correct: a HAR fit (``har`` columns, OLS on the training rows),
        else log(anchor column * scale), else 0."""
        if self.har:
            return self._har_design(X) @ self.har_coef_
        if self.anchor is None:
            return np.zeros(len(X))
        return np.log(np.maximum(np.asarray(X[:, self.anchor], float) * self.anchor_scale,
                                 1e-12))

    def tree_inputs(self, X) -> np.ndarray:
        """Inputs as the trees see them: ``relative`` columns become log(col*scale) - offset.

        Level features (RV over a day, week, month) drift across regimes; their log ratio to the
        anchor is scale-free, so a forest fitted in a calm year still applies in a wild one.
        """
        if not self.relative and not self.relative_log:
            return X
        X = np.array(X, dtype=float, copy=True)
        off = self.offset(X)
        for j, scale in zip(self.relative, self.relative_scale, strict=True):
            X[:, j] = np.log(np.maximum(X[:, j] * scale, 1e-12)) - off
        for j in self.relative_log:  # columns that already hold a log variance
            X[:, j] = X[:, j] - off
        return X

    def _fit_har(self, X, y) -> np.ndarray:
        design = self._har_design(X)
        ok = np.isfinite(design).all(axis=1)
        coef, *_ = np.linalg.lstsq(design[ok], y[ok], rcond=None)
        # intercept shifted by the HAR smearing factor: the offset is log E[RV], not E[log RV]
        coef[0] += np.log(np.mean(np.exp(np.clip(y[ok] - design[ok] @ coef, -50, 50))))
        return coef

    def _fit_trees(self, X, y) -> tuple:
        """HAR level, trees and smearing factor on (X, y); sets ``har_coef_`` when HAR is used."""
        if self.har:
            self.har_coef_ = self._fit_har(X, y)
        off = self.offset(X)
        Xt, used = mask_sparse(self.tree_inputs(X), self.min_coverage)
        if self.objective == "gamma":
            # Gamma deviance with log link = 2 x QLIKE: boosting minimises the evaluation loss
            # directly and estimates E[RV], so no smearing is needed.
            model = lgb.LGBMRegressor(**_lgbm_kwargs(self, objective="gamma")).fit(
                Xt, np.exp(np.clip(y, -50, 50)), init_score=off)
        elif self.objective == "l2":
            model = lgb.LGBMRegressor(**_lgbm_kwargs(self)).fit(Xt, y - off)
        else:
            raise ValueError(f"objective must be 'gamma' or 'l2', got {self.objective!r}")
        return model, off, Xt, used

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
        model, off_in, Xt_in, _ = self._fit_trees(X[:stop], y[:stop])
        corr_in = model.predict(Xt_in, raw_score=True)
        Xv, yv = X[n - n_val:], y[n - n_val:]
        off_v = self.offset(Xv)
        corr_v = model.predict(self.tree_inputs(Xv), raw_score=True)
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
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", y_numeric=True)
        y = np.asarray(y, dtype=float)
        self.shrink_ = self._fit_shrink(X, y)
        self.model_, off, Xt, self.used_features_ = self._fit_trees(X, y)
        corr = self.model_.predict(Xt, raw_score=True)
        self.smearing_ = self._smearing(y, off, self.shrink_ * corr)
        self.quantile_models_ = {
            quantile_key(q): lgb.LGBMRegressor(**_lgbm_kwargs(self, objective="quantile",
                                                              alpha=q)).fit(Xt, y - off)
            for q in (self.quantiles or ())}
        return self

    def predict(self, X):
        """Forecast of log forward RV (log of the mean for ``gamma``, mean log for ``l2``)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        off = self.offset(X)  # init_score is not part of the booster's raw score
        return off + self.shrink_ * self.model_.predict(self.tree_inputs(X), raw_score=True)

    def predict_variance(self, X):
        """Forecast of forward RV (a variance over H bars), bias-corrected."""
        return np.exp(self.predict(X)) * self.smearing_

    def predict_quantiles(self, X) -> dict[str, np.ndarray]:
        """Variance quantiles (quantiles survive the exp map, so no correction)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        Xt = self.tree_inputs(X)
        off = self.offset(X)
        return {k: np.exp(m.predict(Xt, raw_score=True) + off)
                for k, m in self.quantile_models_.items()}


class CascadeClassifier(ClassifierMixin, BaseEstimator):
    """Binary LightGBM for cascade events, calibrated on a later slice of its own training rows."""

    def __init__(self, n_estimators: int = 300, learning_rate: float = 0.03, num_leaves: int = 15,
                 min_child_samples: int = 50, subsample: float = 0.8, subsample_freq: int = 1,
                 colsample_bytree: float = 0.8, reg_lambda: float = 1.0,
                 class_weight: str | None = "balanced", calibration: str = "isotonic",
                 calibration_frac: float = 0.2, calib_gap: int = 0, min_coverage: float = 0.0,
                 features: tuple[int, ...] | None = None, random_state: int = 42,
                 n_jobs: int = 2) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
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

    def _booster(self, X, y) -> lgb.LGBMClassifier:
        extra = {}
        pos = float(np.sum(y == 1))
        if self.class_weight == "balanced" and 0 < pos < len(y):
            extra["scale_pos_weight"] = float(np.sum(y == 0)) / pos
        return lgb.LGBMClassifier(**_lgbm_kwargs(self, **extra)).fit(X, y)

    def fit(self, X, y):
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
            self.model_ = self._booster(X[inner], y01[inner])
            raw = self.model_.predict_proba(X[cal])[:, 1]
            self.calibration_ = fit_calibration(raw, y01[cal], self.calibration)
            self.calibration_rows_ = np.arange(n)[cal]
        else:  # too few rows to hold some out: uncalibrated, said so by the identity map
            self.model_ = self._booster(X, y01)
            self.calibration_ = Calibration()
            self.calibration_rows_ = np.arange(0)
        return self

    def raw_proba(self, X) -> np.ndarray:
        """Uncalibrated positive-class probability."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        return self.model_.predict_proba(X)[:, 1]

    def predict_proba(self, X):
        check_is_fitted(self)
        p = np.clip(self.calibration_.apply(self.raw_proba(X)), 0.0, 1.0)
        return np.column_stack([1 - p, p])

    def predict(self, X):
        check_is_fitted(self)
        return self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]
