"""The scalar path of the rules (plain floats, used by ``decide``) equals their numpy path."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade_ml.policy import PolicyConfig, numeric, rules
from cascade_ml.policy.config import GENERIC_TIERS, NEAR_TIERS
from cascade_ml.policy.liquidation import (
    liquidation_distance,
    maintenance_margin,
    max_leverage_for_distance,
    tier_params,
)

CFG = PolicyConfig()
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-300, 1e300, math.inf, -math.inf, math.nan]


def same(scalar: object, array: object, *, signed_zeros: bool = True) -> bool:
    """Identical value (nan == nan; signed zeros told apart unless ``signed_zeros`` is False,
    where -0.0 == 0.0 as in any comparison a decision makes) and the scalar is a Python type."""
    a = np.asarray(array).ravel()
    assert a.size == 1
    if isinstance(scalar, bool):
        return scalar == bool(a[0])
    assert type(scalar) is float, type(scalar)
    b = float(a[0])
    if math.isnan(scalar) or math.isnan(b):
        return math.isnan(scalar) and math.isnan(b)
    if not signed_zeros:
        return scalar == b
    return scalar == b and math.copysign(1, scalar) == math.copysign(1, b)


@pytest.mark.parametrize("name, ref", [
    ("div", np.true_divide), ("minimum", np.minimum), ("maximum", np.maximum),
    ("fmax", np.fmax)])
def test_binary_helpers_match_numpy_on_special_values(name, ref) -> None:
    fn = getattr(numeric, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, b in itertools.product(SPECIAL, SPECIAL):
            got = fn(a, b)
            want = ref(np.array([a]), np.array([b]))
            if name in ("minimum", "maximum") and a == b == 0:
                continue  # the sign of the zero numpy returns is unspecified
            assert same(float(got), want), (name, a, b, got, want)


def test_unary_helpers_match_numpy_on_special_values() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x in SPECIAL:
            assert same(numeric.sqrt(x), np.sqrt(np.array([x])))
            assert same(numeric.clip(x, 0.0, 1.0), np.clip(np.array([x]), 0.0, 1.0))
            assert same(numeric.clip(x, 0.3, 0.2), np.clip(np.array([x]), 0.3, 0.2))


def test_asnum_keeps_numbers_python_and_makes_arrays() -> None:
    assert type(numeric.asnum(3)) is float and type(numeric.asnum(np.float64(2.5))) is float
    assert isinstance(numeric.asnum([1, 2]), np.ndarray)
    assert isinstance(numeric.asnum(np.array(1.0)), np.ndarray)


@pytest.mark.parametrize("tiers", [NEAR_TIERS, GENERIC_TIERS])
def test_tier_lookup_same_for_numbers_and_columns(tiers) -> None:
    bounds = [t.max_notional for t in tiers if math.isfinite(t.max_notional)]
    values = [0.0, 1.0, *bounds, *(b - 1e-6 for b in bounds), *(-b for b in bounds), 1e12,
              math.inf, math.nan]
    cols = tier_params(np.array(values), tiers)
    for i, v in enumerate(values):
        assert tier_params(v, tiers) == tuple(float(c[i]) for c in cols)
        assert same(maintenance_margin(v, tiers), maintenance_margin(np.array([v]), tiers))


finite = st.floats(-1e6, 1e6, allow_nan=False)
anything = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(SPECIAL))
sigmas = st.one_of(st.floats(0.0, 2.0), st.sampled_from(SPECIAL))
probs = st.one_of(st.floats(-0.5, 1.5), st.sampled_from(SPECIAL))
notionals = st.one_of(st.floats(1.0, 1e8), st.sampled_from([1e4, 1e5, 5e5, 1e6, math.inf]))
sides = st.sampled_from(["long", "short"])
cfgs = st.sampled_from([CFG, PolicyConfig(same_perp_effectiveness=0.5, use_maker=True),
                        PolicyConfig(hedge_min=1.0, hedge_max=1.0, max_leverage=50,
                                     allow_above_20x=True),
                        PolicyConfig(hedge_rule="score", vol_reference="fixed")])


@settings(max_examples=300, deadline=None)
@given(sigmas, st.sampled_from([1.0, 8.0, 24.0, 1e9, 0.0]), probs, st.integers(0, 3),
       notionals, sides, st.one_of(st.none(), anything), anything, st.floats(0, 1),
       st.floats(0, 1), cfgs)
def test_every_rule_gives_the_same_number_on_floats_and_arrays(
        sigma, horizon, prob, n_fired, notional, side, q99, equity, hedge, r2, cfg) -> None:
    a = lambda x: None if x is None else np.array([x], dtype=float)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        terms_s = rules.objective_terms(sigma, horizon, prob, cfg, 0.9, r2 + 0.01, 1.5)
        terms_a = rules.objective_terms(a(sigma), horizon, a(prob), cfg, a(0.9), a(r2 + 0.01),
                                        1.5)
        pairs = [
            (rules.annualised_vol(sigma, horizon), rules.annualised_vol(a(sigma), horizon)),
            (rules.risk_score(sigma, horizon, prob, cfg),
             rules.risk_score(a(sigma), a(horizon), a(prob), cfg)),
            (rules.hedge_ratio(sigma, horizon, prob, n_fired, cfg),
             rules.hedge_ratio(a(sigma), horizon, a(prob), a(n_fired), cfg)),
            (rules.k_sigma(prob, cfg), rules.k_sigma(a(prob), cfg)),
            (rules.required_distance(sigma, prob, cfg, q99),
             rules.required_distance(a(sigma), a(prob), cfg, a(q99))),
            (rules.vol_target_cap(sigma, horizon, cfg),
             rules.vol_target_cap(a(sigma), a(horizon), cfg)),
            (rules.size_cap(equity, sigma, cfg), rules.size_cap(a(equity), a(sigma), cfg)),
            *[(v, terms_a[k]) for k, v in terms_s.items()],
            (rules.hedge_utility(hedge, terms_s, cfg), rules.hedge_utility(a(hedge), terms_a, cfg)),
            *zip(rules.objective_move(hedge, r2, terms_s, cfg),
                 rules.objective_move(a(hedge), a(r2), terms_a, cfg), strict=True),
            (rules.risk_leverage_cap(hedge, cfg), rules.risk_leverage_cap(a(hedge), cfg)),
            (rules.residual_fraction(hedge, r2), rules.residual_fraction(a(hedge), r2)),
            (liquidation_distance(side, 1 / (hedge + 0.01), notional, NEAR_TIERS),
             liquidation_distance(side, a(1 / (hedge + 0.01)), a(notional), NEAR_TIERS)),
            (max_leverage_for_distance(side, sigma, notional, GENERIC_TIERS),
             max_leverage_for_distance(side, a(sigma), a(notional), GENERIC_TIERS)),
        ]
        tiers = cfg.tiers_for("NEAR")
        caps_s = rules.leverage_caps(sigma, horizon, prob, side, notional, tiers, cfg, q99)
        caps_a = rules.leverage_caps(a(sigma), horizon, a(prob), side, a(notional), tiers, cfg,
                                     a(q99))
        pairs += [(float(caps_s[k]), caps_a[k]) for k in caps_s]
        test_s = rules.rebalance_test(hedge, r2, sigma, prob, notional, r2, 1.5, cfg)
        test_a = rules.rebalance_test(a(hedge), a(r2), a(sigma), a(prob), a(notional), a(r2),
                                      1.5, cfg)
        pairs += list(zip(test_s, test_a, strict=True))
    for i, (s, arr) in enumerate(pairs):
        assert same(s, arr, signed_zeros=False), (i, s, arr)
