"""Realised utility in the evaluations: per forecast on non-overlapping windows, model minus
HAR, and pooled over the panel's symbols (hand-computed forecasts: F = RV, 4 RV, 2 RV)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.models.config import ModelConfig
from cascade_ml.models.evaluate import score
from cascade_ml.panel.report import _vol_block, pooled_utility

U2 = 2 * np.sqrt(0.5) - 0.5  # F = 2 RV
U4 = 2 * 0.5 - 0.25          # F = 4 RV


def _rv(n: int) -> np.ndarray:
    return np.random.default_rng(0).lognormal(-6, 0.5, n)


def test_per_symbol_score_reports_utility_per_forecast_on_windows() -> None:
    idx = pd.date_range("2024-01-01", periods=72, freq="h", tz="UTC", name="timestamp")
    rv = _rv(72)
    # the model is exact on the window starts (rows 0, 24, 48) and 4x too high elsewhere:
    # only the window starts count, so its utility is 1, not a mix
    model = np.where(np.arange(72) % 24 == 0, rv, 4 * rv)
    pred = pd.DataFrame({"var_forecast": model, "var_har": 2 * rv, "var_ewma": 4 * rv},
                        index=idx)
    labels = pd.DataFrame({"fwd_rv": rv}, index=idx)
    vol = score(pred, labels, ModelConfig(), horizon=24)["volatility"]
    assert vol["utility_windows"] == 3
    assert vol["model"]["realised_utility"] == pytest.approx(1.0)
    assert vol["baselines"]["har"]["realised_utility"] == pytest.approx(U2)
    assert vol["baselines"]["ewma"]["realised_utility"] == pytest.approx(U4)
    assert vol["utility_gain_vs_har"] == pytest.approx(1.0 - U2)


def _symbol(sym: str, model_factor: float, n: int = 96) -> pd.DataFrame:
    rv = _rv(n)
    return pd.DataFrame({"symbol": sym,
                         "timestamp": pd.date_range("2024-01-01", periods=n, freq="h",
                                                    tz="UTC"),
                         "fwd_rv": rv, "var_forecast": model_factor * rv, "var_har": 2 * rv})


def test_panel_blocks_and_pooled_utility_count_symbols_at_or_above_har() -> None:
    vols = {"A": _vol_block(_symbol("A", 1.0), ["har"], 24),
            "B": _vol_block(_symbol("B", 4.0), ["har"], 24),
            "C": _vol_block(_symbol("C", 2.0), ["har"], 24)}  # ties HAR: counts as at/above
    assert vols["A"]["utility_windows"] == 4
    assert vols["B"]["utility_gain_vs_har"] == pytest.approx(U4 - U2)
    pooled = pooled_utility(vols)
    assert pooled["mean"]["model"] == pytest.approx((1.0 + U4 + U2) / 3)
    assert pooled["mean"]["har"] == pytest.approx(U2)
    assert pooled["at_or_above_har"] == ["A", "C"]
    assert pooled["share_at_or_above_har"] == pytest.approx(2 / 3)
