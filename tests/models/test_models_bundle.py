"""The bundle reproduces the fitted estimators with numpy + lightgbm.Booster only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cascade_ml.contracts.columns import CASCADE_PROB, VAR_FORECAST, VOL_FORECAST, quantile_key
from cascade_ml.errors import ModelBundleError
from cascade_ml.models.bundle import export_bundle, load_bundle
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.evaluate import make_models

RTOL = 1e-12  # same code, same trees (LightGBM text files keep full precision)


@pytest.fixture(scope="module")
def fitted(near_small):
    cfg = ModelConfig(lgbm={"n_estimators": 40}, cascade_lgbm={"n_estimators": 40},
                      quantiles=[0.5, 0.9], num_threads=1)
    ds = near_small
    train = ds.rows[:2000]
    vol, clf = make_models(cfg, ds.feature_names, ds.horizon)
    vol.fit(ds.X(train), np.log(ds.labels.loc[train, "fwd_rv"].to_numpy()))
    clf.fit(ds.X(train), ds.labels.loc[train, "cascade"].to_numpy(int))
    return ds, vol, clf, cfg


def _export(tmp_path, fitted, name="NEAR"):
    ds, vol, clf, cfg = fitted
    return export_bundle(tmp_path / name, vol, clf, version="7", model_name="cascade-ml-NEAR-h24",
                         symbol="NEAR", horizon=24, interval="1h", feature_names=ds.feature_names,
                         training_span={"start": str(ds.rows[0]), "end": str(ds.rows[1999])},
                         metrics={"final": {"qlike": 0.3}}, config=cfg.model_dump(mode="json"))


def test_bundle_predicts_exactly_what_the_fitted_estimators_predict(tmp_path, fitted):
    """arch-style: the fast serving path and the estimators, on the same rows."""
    ds, vol, clf, _ = fitted
    bundle = load_bundle(_export(tmp_path, fitted))
    x = ds.X(ds.rows[2024:])  # rows after the training window, NaNs included where unknown
    out = bundle.predict(x)
    assert list(out) == [VAR_FORECAST, VOL_FORECAST, quantile_key(0.5), quantile_key(0.9),
                         CASCADE_PROB]
    assert_allclose(out[VAR_FORECAST], vol.predict_variance(x), rtol=RTOL)
    assert_allclose(out[VOL_FORECAST], np.sqrt(vol.predict_variance(x)), rtol=RTOL)
    for key, values in vol.predict_quantiles(x).items():
        assert_allclose(out[key], values, rtol=RTOL)
    assert_allclose(out[CASCADE_PROB], clf.predict_proba(x)[:, 1], rtol=RTOL)
    # the served variance is the estimator's log forecast mapped back with the smearing factor
    assert_allclose(out[VAR_FORECAST], np.exp(vol.predict(x)) * vol.smearing_, rtol=RTOL)
    # and the calibrated probability is not the booster's raw one (calibration is applied)
    assert not np.allclose(out[CASCADE_PROB], clf.raw_proba(x))
    one = bundle.predict(x[0])  # a single row as a 1-d array
    assert_allclose(one[VAR_FORECAST], out[VAR_FORECAST][:1], rtol=RTOL)


def test_bundle_json_carries_the_fitted_parameters(tmp_path, fitted):
    ds, vol, clf, cfg = fitted
    path = _export(tmp_path, fitted)
    bundle = load_bundle(path)
    assert bundle.version == "7" and bundle.symbol == "NEAR" and bundle.horizon == 24
    assert bundle.model_name == "cascade-ml-NEAR-h24"
    assert bundle.feature_names == ds.feature_names
    assert bundle.training_span["end"] == str(ds.rows[1999])
    assert bundle.metrics["final"]["qlike"] == 0.3
    assert 0.0 <= vol.shrink_ <= 1.0 and bundle.volatility.shrink == vol.shrink_
    assert bundle.volatility.transform.har_coef == vol.forecast_.transform.har_coef
    meta = json.loads((path / "bundle.json").read_text())
    assert len(meta["volatility"]["har_coef"]) == 4  # intercept + day, week, month
    assert meta["volatility"]["smearing"] == vol.smearing_
    assert meta["cascade"]["calibration"]["method"] == "platt"  # the default calibration map


def test_feature_mismatch_raises_model_bundle_error(tmp_path, fitted):
    bundle = load_bundle(_export(tmp_path, fitted))
    names = list(bundle.feature_names)
    bundle.validate_features(names)
    with pytest.raises(ModelBundleError, match="missing \\['rv_24h'\\]"):
        bundle.validate_features([n for n in names if n != "rv_24h"])
    with pytest.raises(ModelBundleError, match="unexpected \\['extra'\\]"):
        bundle.validate_features([*names, "extra"])
    with pytest.raises(ModelBundleError, match="order"):
        bundle.validate_features(names[::-1])
    with pytest.raises(ModelBundleError, match="feature columns"):
        bundle.predict(np.zeros((2, len(names) - 1)))


def test_missing_or_broken_bundle_is_a_clear_error(tmp_path, fitted):
    with pytest.raises(ModelBundleError, match="bundle.json missing"):
        load_bundle(tmp_path / "nothing")
    path = _export(tmp_path, fitted)
    (path / "cascade.txt").unlink()
    with pytest.raises(ModelBundleError, match="cascade.txt is missing"):
        load_bundle(path)
    (path / "bundle.json").write_text("{not json")
    with pytest.raises(ModelBundleError, match="malformed"):
        load_bundle(path / "bundle.json")


def test_export_replaces_atomically_and_leaves_no_temp_folders(tmp_path, fitted):
    _export(tmp_path, fitted)
    _export(tmp_path, fitted)  # over an existing bundle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["NEAR"]
    assert load_bundle(tmp_path / "NEAR").version == "7"
