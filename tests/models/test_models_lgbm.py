"""One LightGBM mapping and one calibration for the per-symbol and the panel models."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from cascade_ml.models.calibration import Calibration, fit_calibration, logit, sigmoid
from cascade_ml.models.config import LgbmParams
from cascade_ml.models.estimators import CascadeClassifier
from cascade_ml.models.lgbm import lgbm_params
from cascade_ml.panel.bundle import PanelBundle
from cascade_ml.panel.estimators import PanelClassifier, TreeCorrection


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 1500
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame["y"] = 0.7 * frame["a"] - 0.3 * frame["b"] ** 2 + rng.normal(scale=0.5, size=n)
    frame["cascade"] = (frame["b"] + rng.normal(size=n) > 1.4).astype(float)
    frame["timestamp"] = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    return frame


def test_one_setting_means_the_same_in_both_apis(rows: pd.DataFrame) -> None:
    """The panel (lgb.train) and the per-symbol estimators (scikit-learn API) fed the same
    LgbmParams grow the same trees."""
    params = LgbmParams(n_estimators=40, num_leaves=5, min_child_samples=30).model_dump()
    x = rows[["a", "b", "c"]].to_numpy(np.float32)
    panel = TreeCorrection(["a", "b", "c"], params, seed=3, threads=1, stride=1).fit(
        rows, np.zeros(len(rows)))
    sk = lgb.LGBMRegressor(**lgbm_params(params, seed=3, threads=1)).fit(x, rows["y"])
    np.testing.assert_allclose(panel.predict(rows), sk.predict(x), rtol=0, atol=1e-12)
    assert panel.booster_.num_trees() == 40
    tree_leaves = [t["num_leaves"] for t in panel.booster_.dump_model()["tree_info"]]
    assert max(tree_leaves) <= 5


def test_threads_and_seed_are_the_callers(rows: pd.DataFrame) -> None:
    p = lgbm_params({"num_leaves": 9}, seed=11, threads=2, objective="binary")
    assert (p["n_jobs"], p["random_state"], p["num_leaves"], p["objective"]) == (2, 11, 9,
                                                                                 "binary")
    assert p["deterministic"] is True


def test_panel_and_symbol_classifiers_share_the_calibration(rows: pd.DataFrame) -> None:
    """Platt on the panel classifier's probabilities is ``models.calibration``'s map: the
    calibrated value is sigmoid(a logit(p) + b) with the fitted (a, b)."""
    params = LgbmParams(n_estimators=30, num_leaves=5, min_child_samples=30).model_dump()
    clf = PanelClassifier(["a", "b", "c"], params, seed=1, threads=1, stride=1).fit(rows)
    p = clf.proba(rows)
    cal = fit_calibration(p, rows["cascade"].to_numpy(int), "platt")
    assert cal.method == "platt"
    np.testing.assert_allclose(cal.apply(p), 1 / (1 + np.exp(-(cal.a * np.log(p / (1 - p))
                                                                + cal.b))), rtol=1e-9)
    sym = CascadeClassifier(lgbm=params, calibration="platt", n_jobs=1).fit(
        rows[["a", "b", "c"]].to_numpy(), rows["cascade"].to_numpy(int))
    assert isinstance(sym.calibration_, Calibration) and sym.calibration_.method == "platt"


def test_panel_bundle_applies_the_stored_calibration() -> None:
    """The panel bundle applies the shared map it stored: Platt on a probability is Platt on
    the classifier's raw score, sigmoid(a raw + b), worked by hand."""
    a, b = 0.8, -1.2
    raw = np.array([-6.0, -2.0, 0.0, 1.5, 4.0])
    expected = 1 / (1 + np.exp(-(a * raw + b)))  # by hand, on the raw score
    stored = {"calibration": Calibration("platt", a=a, b=b).to_dict()}
    bundle = PanelBundle(stored, tree=None, classifier=None, z_sorted=np.zeros(1))
    got = bundle.calibration.apply(sigmoid(raw))
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    np.testing.assert_allclose(logit(np.array([0.5, 0.8])), [0.0, np.log(4.0)], rtol=1e-12)
