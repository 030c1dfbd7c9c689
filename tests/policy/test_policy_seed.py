"""The seed's numbers, written here by hand: the hedge band 30-70 %, the 5x leverage ceiling and
the 2 % rule (at most 2 % of equity lost to a 2-sigma adverse move of the hedged position).

The expected values are computed in the test from those literals, never read from the config
under test, so changing a default or a formula fails here."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade_ml.policy import PolicyConfig, PolicyInputs, decide

EQUITY = 100_000.0


def inputs(sigma: float, prob: float = 0.05, notional: float = 5_000.0,
           side: str = "long") -> PolicyInputs:
    return PolicyInputs.model_validate({
        "symbol": "NEAR",
        "forecast": {"sigma_h": sigma, "horizon_hours": 24, "cascade_prob": prob},
        "position": {"side": side, "notional": notional, "entry_price": 5.0, "mark_price": 5.0,
                     "leverage": 3.0, "hedge_ratio": 0.3},
        "equity": EQUITY,
        "freshness": {"forecast_age_s": 60.0, "features_age_s": 60.0}})


@settings(max_examples=200, deadline=None)
@given(st.floats(0.001, 0.5), st.floats(0.0, 1.0), st.sampled_from(["long", "short"]))
def test_default_decisions_stay_in_the_seed_band_and_under_5x(sigma: float, prob: float,
                                                              side: str) -> None:
    d = decide(inputs(sigma, prob, side=side), PolicyConfig())
    assert not d.fail_safe
    assert 0.30 - 1e-12 <= d.hedge_ratio <= 0.70 + 1e-12
    assert 0.0 < d.leverage_cap <= 5.0 + 1e-12


@pytest.mark.parametrize("sigma", [0.02, 0.04, 0.08])
def test_the_2_percent_rule_by_hand(sigma: float) -> None:
    """Same-perp hedge h: a 2-sigma adverse move costs 2 sigma (1 - h) per unit of notional, so
    the size cap is 0.02 x equity / (2 sigma (1 - h)) when the risk budget binds."""
    d = decide(inputs(sigma), PolicyConfig())
    assert d.hedge_instrument == "same_perp" and d.binding["size"] == "risk_budget"
    expected = 0.02 * EQUITY / (2.0 * sigma * (1.0 - d.hedge_ratio))
    assert d.size_cap_notional == pytest.approx(expected, rel=1e-9)


def test_calm_market_sits_at_the_5x_ceiling_and_near_the_band_floor() -> None:
    """A calm 24h sigma of 2 % binds the leverage at the 5x ceiling, not below it."""
    d = decide(inputs(0.02, prob=0.0), PolicyConfig())
    assert d.leverage_cap == pytest.approx(5.0)
    assert d.binding["leverage"] == "ceiling"
    assert 0.30 <= d.hedge_ratio < 0.35
