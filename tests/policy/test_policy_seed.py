"""The seed's numbers, written here by hand: the hedge band 30-70 %, the 5x leverage ceiling and
the 2 % rule (at most 2 % of equity lost to a 3-sigma tail move of the perp's reference vol,
sized before the hedge).

The expected values are computed in the test from those literals, never read from the config
under test, so changing a default or a formula fails here."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade_ml.policy import PolicyConfig, PolicyInputs, decide

EQUITY = 100_000.0


def inputs(sigma: float, prob: float = 0.05, notional: float = 5_000.0,
           side: str = "long", trailing: float | None = None) -> PolicyInputs:
    return PolicyInputs.model_validate({
        "trailing_vol_annual": trailing,
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
@pytest.mark.parametrize("trailing", [None, 0.5, 1.6])
def test_the_2_percent_rule_by_hand(sigma: float, trailing: float | None) -> None:
    """The main leg is sized before the hedge on a 3-sigma tail move of the perp's reference vol
    over 24 h (its trailing vol, 80 %/yr when unknown): the size cap is
    0.02 x equity / (3 x ref x sqrt(24 / 8760)) whatever the forecast, and the stop, where the
    position at that cap has lost 2 %, sits beyond the tail move: 3 ref sqrt(24/8760) / (1 - h)."""
    d = decide(inputs(sigma, notional=1e9, trailing=trailing), PolicyConfig())
    assert d.hedge_instrument == "same_perp" and d.binding["size"] == "risk_budget"
    move = 3.0 * (0.8 if trailing is None else trailing) * (24 / 8760) ** 0.5
    assert d.size_cap_notional == pytest.approx(0.02 * EQUITY / move, rel=1e-9)
    assert d.loss_per_notional == pytest.approx(move, rel=1e-9)
    assert d.max_loss == pytest.approx(0.02 * EQUITY)


def test_calm_market_sits_at_the_5x_ceiling_and_near_the_band_floor() -> None:
    """A calm 24h sigma of 2 % (half the 80 %/yr reference's 4.2 %) binds the leverage at the 5x
    ceiling, not below it, with the hedge at the band floor."""
    d = decide(inputs(0.02, prob=0.0), PolicyConfig())
    assert d.leverage_cap == pytest.approx(5.0)
    assert d.binding["leverage"] == "ceiling"
    assert d.hedge_ratio == pytest.approx(0.30) and d.binding["hedge"] == "hedge_min"
