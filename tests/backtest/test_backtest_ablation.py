"""Forecast value (bootstrap), regime spans and the HTML report builder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.backtest.ablation import forecast_value, path_metrics
from cascade_ml.backtest.config import Period
from cascade_ml.backtest.data import BacktestData
from cascade_ml.backtest.regimes import OUTSIDE, period_spans
from cascade_ml.backtest.strategies import Signals


def _curve(daily: np.ndarray) -> np.ndarray:
    """Hourly equity whose day-to-day returns are ``daily`` (flat inside each day)."""
    return np.repeat(100 * np.cumprod(np.r_[1.0, 1 + daily]), 24)[:24 * len(daily) + 1]


def test_path_metrics_by_hand() -> None:
    m = path_metrics(np.array([[0.10, -0.50, 0.20]]), days_per_year=3)
    # equity 1, 1.1, 0.55, 0.66: drawdown 50 %, CAGR -34 % over one 'year'
    assert m["max_drawdown"][0] == pytest.approx(0.5)
    assert m["calmar"][0] == pytest.approx(-0.34 / 0.5)
    assert m["cvar_95"][0] == pytest.approx(-0.5)


def test_same_forecasts_have_no_value() -> None:
    rng = np.random.default_rng(0)
    daily = rng.normal(0, 0.02, 300)
    fv = forecast_value(_curve(daily), _curve(daily), reps=200)
    for name in ("cvar_95", "max_drawdown", "calmar"):
        assert fv[name]["improvement"] == 0.0
        assert fv[name]["ci_low"] <= 0.0 <= fv[name]["ci_high"]
    assert fv["model_beats_har"] is False
    assert "does NOT beat" in fv["verdict"]


def test_clearly_better_tails_are_found_and_the_sign_is_model_minus_har() -> None:
    rng = np.random.default_rng(1)
    har = rng.normal(0.0, 0.03, 400)
    model = np.where(har < 0, har * 0.5, har)  # the same days, half the losses
    fv = forecast_value(_curve(model), _curve(har), reps=300, seed=3)
    assert fv["cvar_95"]["improvement"] > 0 and fv["cvar_95"]["model_better"]
    assert fv["max_drawdown"]["improvement"] > 0 and fv["max_drawdown"]["model_better"]
    assert fv["max_drawdown"]["improvement"] == pytest.approx(
        fv["max_drawdown"]["har"] - fv["max_drawdown"]["model"])
    assert fv["model_beats_har"] is True and "BEATS" in fv["verdict"]
    swapped = forecast_value(_curve(har), _curve(model), reps=300, seed=3)
    assert swapped["cvar_95"]["har_better"] and not swapped["model_beats_har"]


def _data(start: str, hours: int, final_from: int) -> BacktestData:
    idx = pd.date_range(start, periods=hours, freq="h", tz="UTC", name="timestamp")
    z = np.zeros(hours)
    fold = np.where(np.arange(hours) >= final_from, 3, 1)
    return BacktestData(idx, z, z, z, z, z, Signals(z, z, z, 24.0), z, 1.0, 0.0, 1.0,
                        fold=fold)


def test_periods_outside_partial_and_inside() -> None:
    data = _data("2024-03-14", 24 * 60, final_from=24 * 40)
    spans = {name: (span, status) for name, span, status in period_spans(data, [
        Period(name="before", start="2023-01-01", end="2023-12-31"),
        Period(name="straddle", start="2024-03-01", end="2024-03-31"),
        Period(name="inside", start="2024-04-01", end="2024-04-02")])}
    assert spans["before"] == (None, OUTSIDE)
    assert spans["straddle"][1].startswith("partial: 58%")
    assert spans["inside"] == ((24 * 18, 24 * 20 - 1), "ok")  # 04-01 00:00 .. 04-02 23:00
    assert spans["final period"][0] == (24 * 40, 24 * 60 - 1)
    assert spans["development"][0] == (0, 24 * 40 - 1)


def test_html_report_is_self_contained() -> None:
    import matplotlib.pyplot as plt

    from cascade_ml.report import Figure, Section, Table, Text, build_html

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    page = build_html("T <1>", [Section("S", [
        Text("a < b", kind="verdict"),
        Table([{"strategy": "model_policy", "x": 0.123456, "y": None}], formats={"x": ".1%"},
              highlight=["model_policy"]),
        Figure(fig, "cap")])])
    assert "<h1>T &lt;1&gt;</h1>" in page and "a &lt; b" in page
    assert "<td>12.3%</td>" in page and "<td>n/a</td>" in page and 'class="hl"' in page
    assert page.count("data:image/png;base64,") == 1 and "<script" not in page
