"""The objective's hedge shrunk toward a static ratio fixed in advance (``objective_weight`` w,
``static_hedge`` s): h = s + w (h_objective - s), by hand at the edges. w = 0 is the static
hedge exactly, w = 1 today's policy bit for bit; for any w the hedge stays in the seed's 30-70 %
band, rises with risk, the leverage cap stays in 3-5x and falls with risk, and the fee-aware
hold rule judges moves by the shrunk objective. Every expected number is computed here from
literals."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.strategies import feed_policy
from cascade_ml.policy import PolicyConfig, PolicyInputs, decide, rules
from cascade_ml.policy.batch import decide_columns

H = 24.0
BASE = {"risk_aversion": 0.04, "holding_horizons": 1.0}  # the universe job's numbers
S_REF = 0.8 * (24 / 8760) ** 0.5  # the reference vol over 24 h (80 %/yr trailing)
THETA = (24 / 8760) ** 0.5  # a Sharpe of 1 a year over 24 h
FUND = -0.0001 * 3 / S_REF  # the hedge's funding per unit, reference-vol units
# at the reference vol (rho 1) with the base cascade rate 4 %: J = 3, m = theta,
# v = 1 + 0.04 x 0.96 x 9, e* = (theta + f) / (0.04 v), unclipped optimum 1 - e* (16 %)
V_REF = 1 + 0.04 * 0.96 * 9
H_FREE_REF = 1 - (THETA + FUND) / (0.04 * V_REF)


def cfg(w: float, static: float | None = None, **kw: float) -> PolicyConfig:
    return PolicyConfig(**BASE, objective_weight=w, static_hedge=static, **kw)


def inputs(sigma: float, prob: float, *, hedge: float = 0.5, lev: float = 3.0,
           notional: float = 1_000.0) -> PolicyInputs:
    return PolicyInputs.model_validate({
        "symbol": "NEAR", "trailing_vol_annual": 0.8,
        "forecast": {"sigma_h": sigma, "horizon_hours": H, "cascade_prob": prob},
        "position": {"side": "long", "notional": notional, "entry_price": 5.0,
                     "mark_price": 5.0, "leverage": lev, "hedge_ratio": hedge},
        "equity": 100_000.0, "freshness": {"forecast_age_s": 60.0, "features_age_s": 60.0}})


# forecasts from calm to a likely cascade (rho 0.5 .. 2.5, p 0 .. 0.6)
TIERS = PolicyConfig().tiers_for("NEAR")
GRID = [(rho * S_REF, p) for rho in (0.5, 0.9, 1.0, 1.25, 1.5, 2.5) for p in (0.0, 0.04, 0.6)]


def test_the_reference_case_by_hand() -> None:
    # the objective alone: 16 % unclipped, 30 % on the band's floor
    t = rules.objective_terms(S_REF, H, 0.04, cfg(1.0), 0.8)
    assert t["h_free"] == pytest.approx(H_FREE_REF) and 0.16 < H_FREE_REF < 0.17
    assert t["hedge"] == 0.30
    # w = 0.5 toward the band's midpoint 50 %: 50 % + 0.5 x (30 % - 50 %) = 40 %
    assert rules.objective_terms(S_REF, H, 0.04, cfg(0.5), 0.8)["hedge"] == pytest.approx(0.40)
    # w = 0.25 toward 40 %: 40 % + 0.25 x (30 % - 40 %) = 37.5 %
    assert rules.objective_terms(S_REF, H, 0.04, cfg(0.25, 0.4), 0.8)["hedge"] == \
        pytest.approx(0.375)
    # a stressed forecast (2.5x the reference) sits on the band's top: 50 % + 0.5 x 20 % = 60 %
    assert rules.objective_terms(2.5 * S_REF, H, 0.04, cfg(0.5), 0.8)["hedge"] == \
        pytest.approx(0.60)


@pytest.mark.parametrize(("sigma", "prob"), GRID)
def test_weight_zero_is_the_static_ratio_exactly(sigma: float, prob: float) -> None:
    for static, expected in ((None, 0.5), (0.3, 0.3), (0.42, 0.42), (0.7, 0.7)):
        assert rules.objective_terms(sigma, H, prob, cfg(0.0, static), 0.8)["hedge"] == expected
    d = decide(inputs(sigma, prob, hedge=0.0), cfg(0.0))
    # the static hedge's risk cap: 5x - (5x - 3x) x (50 % - 30 %) / 40 % = 4x, whatever the risk
    assert d.hedge_ratio == 0.5 and d.binding["hedge"] == "static"
    assert d.leverage_caps["risk"] == pytest.approx(4.0)
    assert "static hedge 50%" in " ".join(d.reasons)


@pytest.mark.parametrize(("sigma", "prob"), GRID)
def test_weight_one_is_todays_policy_bit_for_bit(sigma: float, prob: float) -> None:
    today = PolicyConfig(**BASE)
    for hedge in (0.0, 0.3, 0.37, 0.5, 0.7):
        a = decide(inputs(sigma, prob, hedge=hedge), today).model_dump()
        b = decide(inputs(sigma, prob, hedge=hedge), cfg(1.0, 0.42)).model_dump()
        assert a == b
    t_today = rules.objective_terms(sigma, H, prob, today, 0.8)
    t_one = rules.objective_terms(sigma, H, prob, cfg(1.0, 0.42), 0.8)
    assert t_today["hedge"] == t_one["hedge"] == t_one["hedge_objective"]
    assert rules.objective_move(0.55, 0.3, t_today, today) == \
        rules.objective_move(0.55, 0.3, t_one, cfg(1.0, 0.42))


def test_weight_one_columns_are_bit_equal() -> None:
    rng = np.random.default_rng(3)
    n = 400
    sigma = S_REF * np.exp(0.5 * rng.standard_normal(n))
    prob = rng.uniform(0.0, 0.3, n)
    a = decide_columns(sigma, prob, np.zeros(n), H, "long", 1_000.0, TIERS, PolicyConfig(**BASE),
                       trailing_vol_annual=np.full(n, 0.8))
    b = decide_columns(sigma, prob, np.zeros(n), H, "long", 1_000.0, TIERS, cfg(1.0, 0.6),
                       trailing_vol_annual=np.full(n, 0.8))
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    # and w = 0 holds the static 50 % on every bar, with its 4x risk cap; only the liquidation
    # distance may set a lower cap (not below the reference vol with p < 10 %: k <= 3.6 sigma,
    # 15 % away, allows 6.3x)
    z = decide_columns(sigma, prob, np.zeros(n), H, "long", 1_000.0, TIERS, cfg(0.0),
                       trailing_vol_annual=np.full(n, 0.8))
    assert (z["hedge"] == 0.5).all() and (z["held"] == 0.5).all()
    assert (z["cap"] <= 4.0 + 1e-12).all()
    calm = (sigma < S_REF) & (prob < 0.1)
    assert calm.sum() > 50 and z["cap"][calm] == pytest.approx(np.full(calm.sum(), 4.0))


@pytest.mark.parametrize("w", [0.0, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("static", [None, 0.3, 0.7])
def test_band_and_leverage_range_hold_and_the_maps_are_monotone(w: float, static: float | None
                                                                ) -> None:
    c = cfg(w, static)
    rho = np.linspace(0.2, 4.0, 60)
    for p in (0.0, 0.04, 0.1, 0.5, 0.9):
        t = rules.objective_terms(rho * S_REF, H, np.full(60, p), c, 0.8)
        h = np.asarray(t["hedge"])
        assert ((h >= 0.30) & (h <= 0.70)).all()  # the seed's band
        assert (np.diff(h) >= 0).all()  # more vol never lowers the hedge
        cap = np.asarray(rules.risk_leverage_cap(h, c))
        assert ((cap >= 3.0 - 1e-12) & (cap <= 5.0 + 1e-12)).all()  # the seed's 3-5x
        assert (np.diff(cap) <= 1e-12).all()
    for r in (0.5, 1.0, 2.0):  # more cascade probability never lowers it either
        h = [float(rules.objective_terms(r * S_REF, H, p, c, 0.8)["hedge"])
             for p in np.linspace(0.0, 1.0, 41)]
        assert (np.diff(h) >= 0).all()


def test_config_refuses_a_static_ratio_or_weight_just_past_its_limits() -> None:
    for bad in ({"static_hedge": 0.29}, {"static_hedge": 0.71}, {"objective_weight": 1.01},
                {"objective_weight": -0.01},
                {"objective_weight": 0.5, "hedge_rule": "score"}):
        with pytest.raises(ValidationError):
            PolicyConfig(**bad)
    assert PolicyConfig(static_hedge=0.3).static_ratio == 0.3
    assert PolicyConfig(hedge_min=0.2, hedge_max=0.6).static_ratio == pytest.approx(0.4)


def test_the_hold_rule_reads_the_shrunk_objective() -> None:
    # w = 0: U_0(h) = -A/2 (h - 50 %)^2 with A = gamma v = 0.04 x V_REF (same perp, R^2 = 1);
    # moving 30 % -> 50 % gains A/2 x 0.2^2 and costs 0.2 x the round trip 2 x 0.06 % over
    # one horizon, in reference-vol units: 0.2 x 0.0012 / S_REF
    c0 = cfg(0.0)
    t = rules.objective_terms(S_REF, H, 0.04, c0, 0.8)
    ok, gain, cost = rules.objective_move(0.5, 0.3, t, c0)
    assert gain == pytest.approx(0.5 * 0.04 * V_REF * 0.04)
    assert cost == pytest.approx(0.2 * 0.0012 / S_REF)
    assert not ok  # 0.00108 < 0.00573: the static policy does not pay to move 20 points
    # the band is a constraint: a hedge held at 25 % moves to the static 50 % whatever it costs
    assert rules.objective_move(0.5, 0.25, t, c0)[0]
    # w = 0.5: U_w(h) = w^2 U(s + (h - s) / w); moving 40 % -> 60 % under a stressed forecast
    c5 = cfg(0.5)
    ts = rules.objective_terms(2.5 * S_REF, H, 0.04, c5, 0.8)

    def u(h: float) -> float:  # the objective's own utility, by hand (R^2 = 1, funding f)
        x = 0.5 + (h - 0.5) / 0.5
        return (1 - x) * ts["mean"] - 0.02 * (1 - x) ** 2 * ts["var"] - x * ts["carry"]

    gain5 = rules.objective_move(0.6, 0.4, ts, c5)[1]
    assert gain5 == pytest.approx(0.25 * (u(0.6) - u(0.4)))
    # the shrunk target is the best hedge of the shrunk objective on the shrunk band [40, 60] %
    for h in np.linspace(0.4, 0.6, 21):
        assert rules.shrunk_gain(0.6, float(h), ts, c5) >= -1e-15


def test_decide_names_the_shrinkage_in_its_reasons() -> None:
    d = decide(inputs(S_REF, 0.04, hedge=0.0), cfg(0.5))
    assert d.hedge_ratio == pytest.approx(0.40) and d.binding["hedge"] == "static_shrinkage"
    text = " ".join(d.reasons)
    assert "shrunk toward the static 50% with objective weight 0.5" in text
    assert "bottom of the 30%-70% band" in text  # what bound the objective's own hedge
    # the risk cap reads the shrunk hedge: 5x - 2x x (40 % - 30 %) / 40 % = 4.5x
    assert d.leverage_caps["risk"] == pytest.approx(4.5)


def test_each_backtest_feed_can_have_its_own_weight() -> None:
    bt = BacktestConfig(feed_objective_weight={"har": 0.0, "oracle": 1.0})
    policy = cfg(0.5)
    assert feed_policy(policy, bt, "model") is policy
    assert feed_policy(policy, bt, "ewma") is policy
    assert feed_policy(policy, bt, "har").objective_weight == 0.0
    assert feed_policy(policy, bt, "oracle").objective_weight == 1.0
    for bad in ({"model": 0.5}, {"har": 1.5}):
        with pytest.raises(ValidationError):
            BacktestConfig(feed_objective_weight=bad)
