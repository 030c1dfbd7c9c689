"""The two estimators honour the scikit-learn contract (sklearn's own estimator checks)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator

from cascade_ml.models.estimators import CascadeClassifier, VolatilityForecaster

SMALL = dict(lgbm={"n_estimators": 20, "min_child_samples": 5}, n_jobs=1)
ESTIMATORS = [VolatilityForecaster(**SMALL), VolatilityForecaster(objective="l2", **SMALL),
              CascadeClassifier(**SMALL)]

# Checks that cannot apply, with the reason. They still run and must fail (strict xfail):
_CLF_EXPECTED = {
    # class_weight takes only "balanced" (mapped to LightGBM's scale_pos_weight) or None: a
    # per-class dict makes no sense for one binary event, and the check passes a dict.
    "check_class_weight_classifiers": "class_weight accepts only 'balanced' or None",
}
# Not generated at all: sklearn's array-API input checks test torch/cupy arrays and skip
# themselves unless SCIPY_ARRAY_API is set; LightGBM consumes numpy only, so they never apply.
_NOT_APPLICABLE = ("check_array_api_input",)


def _name(check) -> str:
    return (check.func if isinstance(check, partial) else check).__name__


def _cases():
    for est in ESTIMATORS:
        expected = _CLF_EXPECTED if isinstance(est, CascadeClassifier) else {}
        for item in estimator_checks_generator(est, expected_failed_checks=expected,
                                               mark="xfail", xfail_strict=True):
            values, marks = (item.values, item.marks) if hasattr(item, "marks") else (item, ())
            e, check = values
            if _name(check) in _NOT_APPLICABLE:
                continue
            kw = getattr(check, "keywords", {})
            label = _name(check) + ("" if not kw else str(sorted(kw.items())))
            kind = getattr(e, "objective", "binary")
            yield pytest.param(e, check, marks=marks, id=f"{type(e).__name__}-{kind}-{label}")


@pytest.mark.parametrize(("estimator", "check"), list(_cases()))
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_not_applicable_checks_are_the_only_ones_left_out():
    generated = {_name(c) for est in ESTIMATORS for _, c in estimator_checks_generator(est)}
    assert set(_NOT_APPLICABLE) <= generated
    assert len(generated) > 40


@pytest.mark.parametrize(("estimator", "message"), [
    (VolatilityForecaster(objective="poisson"), "objective"),
    (VolatilityForecaster(lgbm=[("n_estimators", 5)]), "lgbm"),
    (CascadeClassifier(calibration="beta"), "calibration"),
    (CascadeClassifier(min_coverage=1.5), "min_coverage"),
])
def test_bad_parameters_are_refused_at_fit_by_name(estimator, message):
    X, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2
    with pytest.raises(ValueError, match=message):
        estimator.fit(X, y)


def test_one_lgbm_dict_sets_the_boosters():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    lgbm = {"n_estimators": 7, "num_leaves": 3, "min_child_samples": 5}
    vol = VolatilityForecaster(lgbm=lgbm, quantiles=(0.9,), objective="l2", n_jobs=1).fit(
        X, X[:, 0] - 5)
    clf = CascadeClassifier(lgbm=lgbm, n_jobs=1).fit(X, (X[:, 1] > 1).astype(int))
    assert vol.forecast_.booster.num_trees() == 7
    assert vol.forecast_.quantiles["var_q90"].num_trees() == 7
    assert clf.forecast_.booster.num_trees() == 7
    assert vol.get_params()["lgbm"] is lgbm  # stored as given (sklearn contract)
