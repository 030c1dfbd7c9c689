"""The bundle reproduces the in-memory models with numpy + lightgbm.Booster only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cascade_ml.errors import ModelBundleError
from cascade_ml.models.bundle import export_bundle, load_bundle
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.evaluate import make_models


@pytest.fixture(scope="module")
def fitted(near_small):
    cfg = ModelConfig(lgbm={"n_estimators": 40}, quantiles=[0.5, 0.9], num_threads=1)
    ds = near_small
    train = ds.rows[:2000]
    vol, clf = make_models(cfg, ds.feature_names)
    vol.fit(ds.X(train), np.log(ds.labels.loc[train, "fwd_rv"].to_numpy()))
    clf.fit(ds.X(train), ds.labels.loc[train, "cascade"].to_numpy(int))
    return ds, vol, clf, cfg


def _export(tmp_path, fitted, name="NEAR"):
    ds, vol, clf, cfg = fitted
    return export_bundle(tmp_path / name, vol, clf, version="7", symbol="NEAR", horizon=24,
                         feature_names=ds.feature_names,
                         training_span={"start": str(ds.rows[0]), "end": str(ds.rows[1999])},
                         metrics={"final": {"qlike": 0.3}}, config=cfg.model_dump(mode="json"))


def test_round_trip_predictions_equal_the_in_memory_models(tmp_path, fitted):
    ds, vol, clf, cfg = fitted
    path = _export(tmp_path, fitted)
    bundle = load_bundle(path)
    assert 0.0 <= vol.shrink_ <= 1.0 and bundle.volatility["shrink"] == vol.shrink_
    assert bundle.version == "7" and bundle.symbol == "NEAR" and bundle.horizon == 24
    assert bundle.feature_names == ds.feature_names
    assert bundle.training_span["end"] == str(ds.rows[1999])
    assert bundle.metrics["final"]["qlike"] == 0.3
    x = ds.X(ds.rows[2100:2400])
    out = bundle.predict(x)
    assert np.allclose(out["var_forecast"], vol.predict_variance(x), rtol=1e-10)
    assert np.allclose(out["vol_forecast"] ** 2, out["var_forecast"])
    assert np.allclose(out["cascade_prob"], clf.predict_proba(x)[:, 1], rtol=1e-10)
    q = vol.predict_quantiles(x)
    assert set(q) == {"var_q50", "var_q90"}
    assert np.allclose(out["var_q90"], q["var_q90"], rtol=1e-10)
    one = bundle.predict(x[0])  # a single row as a 1-d array
    assert np.allclose(one["var_forecast"], out["var_forecast"][:1])
    meta = json.loads((path / "bundle.json").read_text())
    assert meta["volatility"]["har_coef"]
    assert meta["cascade"]["calibration"]["method"] == cfg.calibration


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
