"""The efficiency frontier: hedge cost, the interpolated static curve and dominance, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from cascade_ml.backtest.frontier import (
    curve_at,
    dominance,
    feed_dominance,
    frontier_report,
    point,
    upside_given_up,
)

HOURS_PER_YEAR = 24 * 365


def test_static_curve_is_linear_in_cost_and_undefined_outside_it() -> None:
    # static points given out of order: (cost, risk) = (0.04, 0.04), (0, 0.10), (0.02, 0.06)
    cost, risk = [0.04, 0.0, 0.02], [0.04, 0.10, 0.06]
    at = curve_at([0.0, 0.01, 0.03, 0.04, 0.05, -0.01], cost, risk)
    assert at[:4] == pytest.approx([0.10, 0.08, 0.05, 0.04])
    assert np.isnan(at[4]) and np.isnan(at[5])
    assert np.isnan(curve_at(0.01, [0.0], [0.1])[0])  # one point is no curve


def test_dominance_on_a_hand_built_frontier() -> None:
    static_cost, static_risk = [0.0, 0.02, 0.04], [0.10, 0.06, 0.04]
    # (0.01, 0.07): the curve is at 0.08 there -> below (dominating)
    # (0.03, 0.06): the curve is at 0.05 -> above (dominated)
    # (0.05, 0.01): no static hedge costs that much -> outside
    # (0.02, 0.06): on the curve -> neither
    d = dominance([0.01, 0.03, 0.05, 0.02], [0.07, 0.06, 0.01, 0.06], static_cost, static_risk)
    assert d == {"points": 4, "dominating": 1, "dominated": 1, "outside": 1,
                 "share_dominating": 0.25, "share_dominated": 0.25}


def _pt(kind, cost, risk, feed=None, label="x", ratio=None):
    return {"kind": kind, "feed": feed, "label": label, "ratio": ratio, "cost": cost,
            "fees": 0.0, "funding": 0.0, "upside_given_up": cost, "cvar_95_loss": risk,
            "ann_vol": risk, "max_drawdown": risk, "mean_hedge": 0.5}


def test_feed_dominance_and_the_pooled_mean_curve() -> None:
    static = [_pt("static", 0.0, 0.10, label="static 0%", ratio=0.0),
              _pt("static", 0.04, 0.04, label="static 100%", ratio=1.0)]
    a = [*static, _pt("policy", 0.02, 0.05, "model", "v1"), _pt("policy", 0.02, 0.09, "har", "v1")]
    # the second perp: the model point sits above its static curve (at 0.02 it is 0.07)
    b = [*static, _pt("policy", 0.02, 0.08, "model", "v1"), _pt("policy", 0.02, 0.09, "har", "v1")]
    dom = feed_dominance(a)
    assert dom["model"]["ann_vol"]["dominating"] == 1
    assert dom["har"]["ann_vol"]["dominated"] == 1
    rep = frontier_report({"A": a, "B": b})
    every = rep["pooled"]["over_every_perp"]["model"]["max_drawdown"]
    assert (every["points"], every["dominating"], every["dominated"]) == (2, 1, 1)
    # pooled: mean over perps of each point, model (0.02, 0.065) under the static 0.07
    pooled = {(p["kind"], p["feed"], p["label"]): p for p in rep["pooled"]["points"]}
    assert pooled[("policy", "model", "v1")]["cvar_95_loss"] == pytest.approx(0.065)
    assert pooled[("policy", "model", "v1")]["symbols"] == 2
    assert rep["pooled"]["dominance"]["model"]["cvar_95_loss"]["dominating"] == 1


def test_upside_given_up_counts_the_hedge_leg_on_rising_days_only() -> None:
    # two days of 24 bars: day 1 rises 10 % in its first bar, day 2 falls 10 % in its first
    close = np.r_[100.0, np.full(24, 110.0), np.full(24, 99.0)]
    equity = np.full(len(close), 1000.0)
    notional = np.full(len(close), 1000.0)  # exposure 1x
    hedge = np.full(len(close), 0.5)
    years = (len(close) - 1) / HOURS_PER_YEAR
    # day 1: the half hedge loses 0.5 x 10 % = 5 % of equity; day 2 (a fall) is not counted
    assert upside_given_up(close, hedge, notional, equity) == pytest.approx(0.05 / years)
    # a short position: its favourable day is day 2, where the long hedge leg loses 5 %
    assert upside_given_up(close, hedge, notional, equity, side="short") == pytest.approx(
        0.5 * 0.1 / years)
    assert upside_given_up(close, np.zeros(len(close)), notional, equity) == 0.0


def test_point_reads_costs_per_year_on_mean_equity() -> None:
    n = 24 * 10 + 1
    equity = np.full(n, 2000.0)
    close = np.full(n, 100.0)
    years = (n - 1) / HOURS_PER_YEAR
    p = point(equity, close, np.full(n, 0.3), np.full(n, 1000.0), fees=4.0, funding=-2.0)
    assert p["fees"] == pytest.approx(4.0 / 2000 / years)
    assert p["funding"] == pytest.approx(-2.0 / 2000 / years)
    assert p["upside_given_up"] == 0.0
    assert p["cost"] == pytest.approx(2.0 / 2000 / years)
    assert (p["cvar_95_loss"], p["ann_vol"], p["max_drawdown"]) == (0.0, 0.0, 0.0)
    assert p["mean_hedge"] == pytest.approx(0.3)


def test_a_liquidated_static_hedge_draws_no_curve() -> None:
    static = [_pt("static", 0.0, 0.10, label="static 0%", ratio=0.0),
              _pt("static", 0.02, 0.06, label="static 50%", ratio=0.5),
              {**_pt("static", 0.04, 0.90, label="static 100%", ratio=1.0), "liquidations": 3}]
    pts = [*static, _pt("policy", 0.03, 0.08, "model", "v1")]
    # with the liquidated point the curve would be at 0.48 at cost 0.03 (the policy below it);
    # without it the curve ends at 0.02, so the policy point is outside the static range
    d = feed_dominance(pts)["model"]["ann_vol"]
    assert (d["dominating"], d["dominated"], d["outside"]) == (0, 0, 1)
    pooled = frontier_report({"A": pts, "B": pts})["pooled"]["points"]
    assert next(p for p in pooled if p["label"] == "static 100%")["liquidations"] == 6


def test_a_bad_frontier_variant_is_a_clear_error_naming_it() -> None:
    from cascade_ml.backtest.simulate_all import variant_policies
    from cascade_ml.errors import ConfigError
    from cascade_ml.policy import PolicyConfig

    ok = variant_policies(PolicyConfig(), [{}, {"hedge_min": 0.5, "hedge_max": 0.9}])
    assert [label for label, _ in ok] == ["as configured", "hedge_min=0.5, hedge_max=0.9"]
    assert (ok[1][1].hedge_min, ok[1][1].hedge_max) == (0.5, 0.9)
    with pytest.raises(ConfigError, match=r"variants\[1\]") as bad:
        variant_policies(PolicyConfig(), [{}, {"hedge_min": 0.8, "hedge_max": 0.5}])
    assert "hedge_min must be <= hedge_max" in str(bad.value)
    with pytest.raises(ConfigError, match="no_such_knob"):
        variant_policies(PolicyConfig(), [{"no_such_knob": 1.0}])
