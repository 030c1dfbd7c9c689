"""Every Forecaster kind answers the same contract, and the one loader picks the kind and checks
it against the task (horizon, interval, symbol) before anything is served with it.

The contract, for the rows a forecaster reads from the store for a symbol:
- ``predict`` returns the forecast columns (variance, volatility, cascade probability) and only
  served columns;
- ``vol_forecast == sqrt(var_forecast)`` and the variance is over H bars: its median is within a
  factor 4 of the realised variance of the H bars before the row (a per-bar forecast is H = 24
  times smaller and fails; so does a per-bar volatility beside an H-bar variance);
- its horizon and interval are the task's;
- no NaN where the inputs are complete (every input column present in those rows is finite).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from demo_data import make_demo_bundle, synthetic_features
from panel_data import write_universe_store

from cascade_ml.contracts.columns import (
    CASCADE_PROB,
    FORECASTS,
    RET_1H,
    SERVED_FORECASTS,
    VAR_FORECAST,
    VOL_FORECAST,
)
from cascade_ml.contracts.layout import features_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import ModelBundleError
from cascade_ml.forecasting import Forecaster, forecaster_dir, load_forecaster
from cascade_ml.panel.dataset import SYMBOL, TIMESTAMP

H = 24
TASK = TaskConfig(symbols=["NEAR", "BTC", "ETH", "ADA", "SEI"], horizon=H)


@dataclass
class Case:
    """A models folder, the store its forecaster reads, and each row's trailing H-bar RV."""

    models_dir: Path
    store: MarketStore
    symbols: list[str]
    trailing_rv: dict[str, pd.Series]


@pytest.fixture(scope="module")
def symbol_case(tmp_path_factory) -> Case:
    """A per-symbol bundle (real estimators on synthetic GARCH rows) and NEAR's features."""
    tmp = tmp_path_factory.mktemp("symbol_case")
    # without the policy's trailing-vol column (rv_720h): the contract's bounds were set on
    # this frame, and the forecaster contract does not involve the policy
    frame = synthetic_features(2000, pd.Timestamp("2025-06-01", tz="UTC"), seed=3).drop(
        columns="rv_720h")
    make_demo_bundle(tmp / "models" / "NEAR", frame=frame.iloc[:1500], n_estimators=20)
    store = MarketStore(tmp / "store")
    store.write_table(features_path("NEAR"), frame, {"symbol": "NEAR"})
    rv = (frame[RET_1H] ** 2).rolling(H).sum()
    return Case(tmp / "models", store, ["NEAR"], {"NEAR": rv})


@pytest.fixture(scope="module")
def panel_case(tmp_path_factory, small_panel, panel_bundle_dir) -> Case:
    """The small universe's panel bundle, serving its five symbols from the panel table."""
    tmp = tmp_path_factory.mktemp("panel_case")
    shutil.copytree(panel_bundle_dir, tmp / "panel")
    store = write_universe_store(tmp / "store", small_panel.frame)
    rv = {str(s): (part.set_index(TIMESTAMP)[f"raw_{RET_1H}"] ** 2).rolling(H).sum()
          for s, part in small_panel.frame.groupby(SYMBOL)}
    return Case(tmp / "panel", store, list(small_panel.symbols), rv)


class PerBar:
    """A panel bundle that serves per-bar numbers: the bug the contract must catch."""

    def __init__(self, inner: Forecaster, vol_only: bool) -> None:
        self.inner, self.vol_only = inner, vol_only

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict(self, x, symbol):
        out = dict(self.inner.predict(x, symbol))
        out[VOL_FORECAST] = np.sqrt(out[VAR_FORECAST] / self.inner.horizon)
        if not self.vol_only:
            out[VAR_FORECAST] = out[VAR_FORECAST] / self.inner.horizon
        return out


def check_contract(forecaster: Forecaster, case: Case, symbol: str, task: TaskConfig) -> None:
    """The Forecaster contract on the newest 500 input rows of ``symbol`` (AssertionError)."""
    assert isinstance(forecaster, Forecaster)
    assert forecaster.horizon == task.horizon
    assert pd.Timedelta(forecaster.interval) == task.bar
    assert forecaster.serves(symbol)
    rows = forecaster.input_rows(case.store, symbol, last=500)
    assert list(rows.columns) == list(forecaster.feature_names) and len(rows) == 500
    out = forecaster.predict(rows.to_numpy(np.float64), symbol)
    assert set(FORECASTS) <= set(out) <= set(SERVED_FORECASTS), sorted(out)
    assert all(len(v) == len(rows) for v in out.values())
    var, vol = out[VAR_FORECAST], out[VOL_FORECAST]
    np.testing.assert_allclose(vol, np.sqrt(var), rtol=1e-12)
    x = rows.to_numpy(np.float64)
    present = np.isfinite(x).any(axis=0)
    complete = np.isfinite(x[:, present]).all(axis=1)
    assert complete.sum() >= 50, complete.sum()
    for key, values in out.items():
        assert np.isfinite(values[complete]).all(), key
    assert ((out[CASCADE_PROB][complete] > 0) & (out[CASCADE_PROB][complete] < 1)).all()
    trailing = case.trailing_rv[symbol].reindex(rows.index).to_numpy(float)
    ratio = float(np.nanmedian(var / trailing))
    assert 0.25 < ratio < 4.0, f"variance over H bars vs the last H bars' RV: x{ratio:.3f}"


@pytest.mark.parametrize("kind", ["symbol", "panel"])
def test_every_forecaster_kind_meets_the_contract(kind, request):
    case: Case = request.getfixturevalue(f"{kind}_case")
    for symbol in case.symbols:
        forecaster = load_forecaster(case.models_dir, symbol, TASK)
        assert forecaster.kind == kind
        check_contract(forecaster, case, symbol, TASK)


@pytest.mark.parametrize("vol_only", [False, True])
def test_the_contract_fails_a_panel_that_serves_per_bar_numbers(panel_case, vol_only):
    forecaster = load_forecaster(panel_case.models_dir, "NEAR", TASK)
    check_contract(forecaster, panel_case, "NEAR", TASK)  # the real one passes
    with pytest.raises(AssertionError):
        check_contract(PerBar(forecaster, vol_only), panel_case, "NEAR", TASK)


def test_panel_blends_own_har_for_its_symbols_and_serves_new_listings_alone(panel_case):
    forecaster = load_forecaster(panel_case.models_dir, "NEAR", TASK)
    rows = forecaster.input_rows(panel_case.store, "NEAR", last=300)
    x = rows.to_numpy(np.float64)
    alone = forecaster.predict(x, "DOGE")  # a perp the panel never saw: the panel alone
    assert forecaster.serves("DOGE") and "DOGE" not in forecaster.symbols
    own = forecaster.predict(x, "NEAR")
    weight = forecaster.meta["har_weights"]["NEAR"]
    assert 0 < weight < 1  # NEAR's own HAR holds a share of its served forecast
    assert not np.allclose(own[VAR_FORECAST], alone[VAR_FORECAST])
    # a new listing is served by the panel alone, the same numbers whatever it is called
    np.testing.assert_array_equal(forecaster.predict(x, "WIF")[VAR_FORECAST],
                                  alone[VAR_FORECAST])


# ------------------------------------------------------------------------------- the loader
def _edit(folder: Path, **changes) -> None:
    meta_file = folder / "bundle.json"
    meta = json.loads(meta_file.read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    meta_file.write_text(json.dumps(meta))


@pytest.mark.parametrize("kind", ["symbol", "panel"])
def test_loader_refuses_another_horizon_or_interval(kind, request, tmp_path):
    case: Case = request.getfixturevalue(f"{kind}_case")
    symbol = case.symbols[0]
    where = str(forecaster_dir(case.models_dir, symbol))
    with pytest.raises(ModelBundleError, match="forecasts 24 bars ahead but task.horizon is 12"):
        load_forecaster(case.models_dir, symbol, TASK.model_copy(update={"horizon": 12}))
    with pytest.raises(ModelBundleError, match="trained on 1h bars but task.interval is 4h") as e:
        load_forecaster(case.models_dir, symbol, TASK.model_copy(update={"interval": "4h"}))
    assert where in e.value.message
    # the same bar written another way is the same interval
    load_forecaster(case.models_dir, symbol, TASK.model_copy(update={"interval": "60min"}))


@pytest.mark.parametrize("kind", ["symbol", "panel"])
def test_loader_refuses_malformed_unknown_or_unversioned_bundles(kind, request, tmp_path):
    case: Case = request.getfixturevalue(f"{kind}_case")
    symbol = case.symbols[0]
    models = tmp_path / "models"
    src = forecaster_dir(case.models_dir, symbol)
    folder = models / symbol if kind == "symbol" else models
    shutil.copytree(src, folder)
    _edit(folder, interval=None)
    with pytest.raises(ModelBundleError, match="records no bar interval"):
        load_forecaster(models, symbol, TASK)
    _edit(folder, interval="1h", kind="garch")
    with pytest.raises(ModelBundleError, match="unknown bundle kind 'garch'"):
        load_forecaster(models, symbol, TASK)
    (folder / "bundle.json").write_text("{not json")
    with pytest.raises(ModelBundleError, match="malformed bundle.json"):
        load_forecaster(models, symbol, TASK)
    (folder / "bundle.json").unlink()
    with pytest.raises(ModelBundleError, match="bundle.json missing"):
        load_forecaster(models, symbol, TASK)


def test_loader_refuses_a_per_symbol_bundle_under_another_symbol(symbol_case, tmp_path):
    shutil.copytree(symbol_case.models_dir / "NEAR", tmp_path / "BTC")
    with pytest.raises(ModelBundleError, match=r"serves \['NEAR'\], not BTC"):
        load_forecaster(tmp_path, "BTC", TASK)


def test_panel_input_rows_refuse_a_panel_table_without_its_columns(panel_case, small_panel,
                                                                   tmp_path):
    forecaster = load_forecaster(panel_case.models_dir, "NEAR", TASK)
    store = write_universe_store(tmp_path / "store", small_panel.frame.drop(columns=["lvl"]))
    with pytest.raises(ModelBundleError, match=r"lacks column\(s\) \['lvl'\]"):
        forecaster.input_rows(store, "NEAR")
