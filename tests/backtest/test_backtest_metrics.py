"""Metrics on hand-made equity curves, and the target report."""

from __future__ import annotations

import numpy as np
import pytest

from cascade_ml.backtest.metrics import capture, max_drawdown, summarize
from cascade_ml.backtest.run import format_table, target_report


def test_max_drawdown_by_hand() -> None:
    assert max_drawdown(np.array([100, 120, 90, 130, 65.0])) == pytest.approx(0.5)
    assert max_drawdown(np.array([1, 2, 3.0])) == 0.0


def test_summarize_by_hand() -> None:
    e = np.array([100.0, 110.0, 99.0, 108.9])
    m = summarize(e, bars_per_year=3)  # three returns = one year
    assert m["total_return"] == pytest.approx(0.089)
    assert m["cagr"] == pytest.approx(0.089)
    assert m["max_drawdown"] == pytest.approx(0.1)
    assert m["calmar"] == pytest.approx(0.89)
    r = np.array([0.1, -0.1, 0.1])
    assert m["ann_vol"] == pytest.approx(r.std(ddof=1) * np.sqrt(3))
    assert m["sortino"] == pytest.approx(r.mean() * 3 / (np.sqrt(0.01 / 3) * np.sqrt(3)))


def test_capture_of_half_exposure_is_half() -> None:
    rng = np.random.default_rng(0)
    rb = rng.normal(0, 0.01, 200)
    bench = 100 * np.cumprod(1 + rb)
    half = 100 * np.cumprod(1 + rb / 2)
    up, down = capture(half, bench, period=1)
    assert up == pytest.approx(0.5) and down == pytest.approx(0.5)
    assert capture(bench, bench, period=1) == pytest.approx((1.0, 1.0))


def _row(name: str, **kw) -> dict:
    base = {"strategy": name, "total_return": -0.1, "ann_vol": 1.0, "max_drawdown": 0.5,
            "calmar": -0.2, "sortino": 0.1, "upside_capture": 1.0, "downside_capture": 1.0,
            "liquidations": 2.0, "fees_paid": 10.0, "funding_paid": 1.0, "turnover": 3.0}
    return {**base, **kw}


def test_target_report_marks_met_and_not_met() -> None:
    rows = [_row("unhedged"), _row("static_hedge", calmar=-0.1), _row("vol_target", calmar=-0.5),
            _row("static_matched", calmar=-0.12),
            _row("model_policy", ann_vol=0.45, max_drawdown=0.4, upside_capture=0.6,
                 liquidations=0.0, calmar=-0.15)]
    fv = {"model_beats_har": False}
    lines = target_report(rows, fv)
    assert lines[0].startswith("vol 0.45x") and lines[0].endswith(": met")
    assert lines[1].startswith("max drawdown 0.80x") and lines[1].endswith("NOT met")
    assert lines[2].endswith(": met")  # liquidations 0 vs 2
    assert "static_matched (equal-cost" in lines[3] and lines[3].endswith("NOT met")
    assert "static_hedge" in lines[4] and lines[4].endswith("NOT met")
    assert "vol_target" in lines[5] and lines[5].endswith(": met")
    assert "har_policy" in lines[6] and lines[6].endswith("NOT met")
    # vol below 0.5x is not enough without the upside capture
    low_up = [*rows[:-1], {**rows[-1], "upside_capture": 0.3}]
    assert target_report(low_up)[0].endswith("NOT met")
    assert "model_policy" in format_table(rows)


def test_cvar_is_the_mean_of_the_worst_days() -> None:
    from cascade_ml.backtest.metrics import cvar

    r = np.array([-0.10, -0.05, 0.0, 0.01] + [0.02] * 36)  # 40 days: worst 5 % = 2 days
    assert cvar(r) == pytest.approx(-0.075)
    e = 100 * np.cumprod(np.r_[1.0, 1 + np.repeat(r, 1)])
    assert summarize(e, bars_per_year=365)["cvar_95"] == pytest.approx(-0.075)
