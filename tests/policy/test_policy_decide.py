"""decide(): bounds, monotonicity (hypothesis), instrument choice, no-trade band, fail-safe."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade_ml.policy import PolicyConfig, PolicyInputs, decide
from cascade_ml.policy.liquidation import liquidation_distance

CFG = PolicyConfig()


def make_inputs(sigma: float | None = 0.04, prob: float | None = 0.05, *, hedge: float = 0.3,
                lev: float = 3.0, notional: float = 5_000.0, side: str = "long",
                age: float = 60.0, **extra) -> PolicyInputs:
    raw = {
        "symbol": "NEAR",
        "forecast": {"sigma_h": sigma, "horizon_hours": 24, "cascade_prob": prob},
        "position": {"side": side, "notional": notional, "entry_price": 5.0, "mark_price": 5.0,
                     "leverage": lev, "hedge_ratio": hedge},
        "equity": 100_000.0,
        "freshness": {"forecast_age_s": age, "features_age_s": age},
    }
    for key, value in extra.items():
        raw[key] = value
    return PolicyInputs.model_validate(raw)


sigmas = st.floats(0.001, 0.5)
probs = st.floats(0.0, 1.0)
sides = st.sampled_from(["long", "short"])
notionals = st.floats(100, 3e6)


@settings(max_examples=150, deadline=None)
@given(sigmas, probs, sides, notionals, st.integers(0, 3))
def test_bounds_always_hold(sigma, prob, side, notional, n_triggers) -> None:
    trig = dict(zip(["funding_divergence", "sentiment_spike", "volume_breakdown"],
                    [i < n_triggers for i in range(3)], strict=True))
    d = decide(make_inputs(sigma, prob, side=side, notional=notional, triggers=trig), CFG)
    assert not d.fail_safe
    assert 0.30 <= d.hedge_ratio <= 0.70  # the seed's band
    assert 0 < d.leverage_cap <= 5.0  # the seed's 5x ceiling
    assert d.size_cap_notional > 0
    assert len(d.reasons) >= 5


@settings(max_examples=150, deadline=None)
@given(sigmas, sigmas, probs, probs, sides, notionals)
def test_monotone_in_vol_and_cascade_prob(s1, s2, p1, p2, side, notional) -> None:
    lo = decide(make_inputs(min(s1, s2), min(p1, p2), side=side, notional=notional), CFG)
    hi = decide(make_inputs(max(s1, s2), max(p1, p2), side=side, notional=notional), CFG)
    assert hi.hedge_ratio >= lo.hedge_ratio - 1e-12
    assert hi.leverage_cap <= lo.leverage_cap + 1e-12


@settings(max_examples=150, deadline=None)
@given(sigmas, probs, sides, notionals)
def test_liquidation_distance_at_cap_is_enough(sigma, prob, side, notional) -> None:
    d = decide(make_inputs(sigma, prob, side=side, notional=notional), CFG)
    dist = liquidation_distance(side, d.leverage_cap, notional, CFG.tiers_for("NEAR"))
    assert dist >= d.required_liquidation_distance - 1e-9


def test_hedge_rises_with_risk_and_triggers() -> None:
    calm = decide(make_inputs(0.01, 0.0), CFG)
    storm = decide(make_inputs(0.20, 0.5), CFG)
    assert calm.hedge_ratio == pytest.approx(0.30)
    assert storm.hedge_ratio == pytest.approx(0.70)
    score = PolicyConfig(hedge_rule="score")  # the triggers' bump is the score rule's
    mid = decide(make_inputs(0.04, 0.05), score)
    bumped = decide(make_inputs(0.04, 0.05, triggers={"funding_divergence": True,
                                                      "volume_breakdown": True}), score)
    assert bumped.hedge_ratio == pytest.approx(mid.hedge_ratio + 2 * 0.05)  # 5 % a trigger
    assert "funding_divergence" in bumped.reasons[0]


def test_ceiling_never_above_20x_without_override() -> None:
    wild = PolicyConfig(max_leverage=50, target_vol_annual=100, k_sigma_base=0.1,
                        k_sigma_cascade=0.1)
    d = decide(make_inputs(0.005, 0.0), wild)
    assert d.leverage_cap == pytest.approx(20.0)
    assert "hard limit" in d.reasons[2]
    just_past = wild.model_copy(update={"max_leverage": 20.01})  # the edge of the hard limit
    assert decide(make_inputs(0.005, 0.0), just_past).leverage_cap == pytest.approx(20.0)
    allowed = wild.model_copy(update={"allow_above_20x": True})
    assert decide(make_inputs(0.005, 0.0), allowed).leverage_cap > 20


def test_cross_hedge_chosen_only_when_better_and_effective() -> None:
    cross = {"beta_btc": 1.3, "r2_btc": 0.85, "beta_eth": 1.1, "corr_eth": 0.95}
    same = decide(make_inputs(cross_asset=cross), CFG)
    assert same.hedge_instrument == "same_perp"  # same perp is a perfect hedge by default
    cfg = PolicyConfig(same_perp_effectiveness=0.5)
    d = decide(make_inputs(cross_asset=cross), cfg)
    assert d.hedge_instrument == "ETH"
    assert d.hedge_effectiveness == pytest.approx(0.95 ** 2)
    assert d.hedge_notional == pytest.approx(d.hedge_ratio * 5_000 * 1.1)
    weak = decide(make_inputs(cross_asset={"beta_btc": 1.3, "r2_btc": 0.5}), cfg)
    assert weak.hedge_instrument == "same_perp"


def test_no_trade_band_holds_small_changes_and_acts_on_large() -> None:
    # a cheap hold (gamma 0.08, a move's round trip spread over 3 horizons): the 5 % band, not
    # the move's cost, binds at the band's edge (with the defaults' 1-horizon hold a 5.01 %
    # move does not pay for itself)
    cheap = PolicyConfig(risk_aversion=0.08, holding_horizons=3.0)
    target = decide(make_inputs(0.04, 0.05, hedge=0.3, lev=1.0), cheap).hedge_ratio
    assert target == pytest.approx(0.70)  # 24 h sigma 4 % is near the 80 %/yr reference's 4.2 %
    near = decide(make_inputs(0.04, 0.05, hedge=0.70 - 0.02, lev=1.0), cheap)
    assert near.action == "hold" and "no-trade band" in near.reasons[-1]
    # the 5 % band's edges: a change of 4.99 % holds, one of 5.01 % rebalances
    assert decide(make_inputs(0.04, 0.05, hedge=0.6501, lev=1.0), cheap).action == "hold"
    just_past = decide(make_inputs(0.04, 0.05, hedge=0.6499, lev=1.0), cheap)
    assert just_past.action == "rebalance" and just_past.binding["action"] == "hedge_change"
    far = decide(make_inputs(0.04, 0.05, hedge=0.0, lev=1.0), cheap)
    assert far.action == "rebalance"
    costly = cheap.model_copy(update={"taker_fee": 0.05, "spread": 0.05})
    # inside the band a move that does not pay is not made; a hedge outside the 30-70 % band
    # (0 %, or 80 %: more than the no-trade band from the 70 % target) moves into it whatever
    # the cost: the band is a constraint
    assert decide(make_inputs(0.04, 0.05, hedge=0.3, lev=1.0), costly).action == "hold"
    for outside in (0.0, 0.8):
        d = decide(make_inputs(0.04, 0.05, hedge=outside, lev=1.0), costly)
        assert d.action == "rebalance" and "outside the 30%-70% band" in d.reasons[-1]


def test_leverage_above_cap_forces_rebalance_inside_band() -> None:
    first = decide(make_inputs(0.05, 0.05), CFG)
    # a 24 h sigma of 5 %, above the 80 %/yr reference's 4.2 %: the band's top (70 %) sets the
    # objective rule's risk cap to the seed's 3x
    assert first.hedge_ratio == pytest.approx(0.70) and first.leverage_cap == pytest.approx(3.0)
    d = decide(make_inputs(0.05, 0.05, hedge=0.70, lev=15.0), CFG)
    assert d.action == "rebalance" and "leverage above its cap" in d.reasons[-1]
    # at the edge: exactly 3x holds, 3.01x rebalances on the limits
    assert decide(make_inputs(0.05, 0.05, hedge=0.70, lev=3.0), CFG).action == "hold"
    edge = decide(make_inputs(0.05, 0.05, hedge=0.70, lev=3.01), CFG)
    assert edge.action == "rebalance" and edge.binding["action"] == "limits"


@pytest.mark.parametrize("kwargs, why", [
    ({"sigma": float("nan")}, "not a number"),
    ({"sigma": None}, "missing"),
    ({"sigma": -0.1}, "not positive"),
    ({"sigma": 5.0}, "sane limit"),
    ({"sigma": 1.0001}, "sane limit"),  # just past the 100 % sane limit on sigma_H
    ({"prob": 1.5}, "outside [0, 1]"),
    ({"prob": 1.0001}, "outside [0, 1]"),
    ({"prob": None}, "missing"),
    ({"age": 1e6}, "old"),
    ({"age": 7201.0}, "7201 s old, more than the 7200 s allowed"),  # 2 h + 1 s
    ({"model_available": False}, "no model"),
])
def test_fail_safe_is_conservative(kwargs: dict, why: str) -> None:
    d = decide(make_inputs(**kwargs), CFG)
    assert d.fail_safe
    assert d.hedge_ratio == 0.70  # the band's top
    assert d.leverage_cap <= 1.0  # the fail-safe's 1x
    # no new exposure, and never more than the leverage cap allows on the equity
    assert d.size_cap_notional <= 5_000.0
    assert d.size_cap_notional <= d.leverage_cap * 100_000.0 + 1e-9
    assert d.action == "rebalance"
    assert any(why in r for r in d.reasons)


@pytest.mark.parametrize("kwargs", [{"sigma": 1.0}, {"prob": 1.0}, {"age": 7200.0}])
def test_inputs_at_the_sane_limits_are_trusted(kwargs: dict) -> None:
    assert not decide(make_inputs(**kwargs), CFG).fail_safe


def test_fail_safe_cap_is_lowest_cap() -> None:
    normal = [decide(make_inputs(s, p), CFG).leverage_cap for s in (0.01, 0.1, 0.3, 1.0)
              for p in (0.0, 0.5, 1.0)]
    safe = decide(make_inputs(float("nan")), CFG).leverage_cap
    assert safe <= min(normal) + 1e-12
    assert safe == pytest.approx(min(normal))


def test_liquidation_report_matches_references() -> None:
    d = decide(make_inputs(lev=10.0), CFG)
    assert d.liquidation_distance == pytest.approx(0.0909, abs=1e-4)
    assert math.isfinite(d.liquidation_price)
    raw = make_inputs(lev=10.0).model_dump()
    raw["position"]["margin_mode"] = "cross"  # 100k equity behind 5k notional: never liquidated
    cross = decide(PolicyInputs.model_validate(raw), CFG)
    assert cross.liquidation_price == 0.0 and "cross margin" in cross.reasons[4]


@pytest.mark.parametrize("section, msg", [
    ("policy:\n  hedge_min: 0.8\n  hedge_max: 0.6\n", "hedge_min"),
    ("policy:\n  hedge_max: 1.5\n", "hedge_max"),
    ("policy:\n  tiers:\n    NEAR: []\n", "tiers"),
    ("policy:\n  hedge_ratio: 0.5\n", "unknown key"),
])
def test_bad_policy_config_is_a_config_error(tmp_path, section: str, msg: str) -> None:
    from cascade_ml.config import load_pipeline
    from cascade_ml.errors import ConfigError

    path = tmp_path / "p.yaml"
    path.write_text(section)
    with pytest.raises(ConfigError, match=msg):
        load_pipeline(path)


def test_unknown_symbol_uses_conservative_tiers_and_custom_tiers_apply() -> None:
    loose = PolicyConfig(max_leverage=20, target_vol_annual=50)
    near = decide(make_inputs(0.02, 0.0, notional=60_000), loose)
    other = decide(make_inputs(0.02, 0.0, notional=60_000, symbol="FOO"), loose)
    assert other.leverage_caps["exchange_tier"] == 10 < near.leverage_caps["exchange_tier"]
    assert other.leverage_caps["liquidation"] < near.leverage_caps["liquidation"]
    custom = loose.model_copy(update={"tiers": {**loose.tiers, "FOO": loose.tiers["NEAR"]}})
    same = decide(make_inputs(0.02, 0.0, notional=60_000, symbol="FOO"), custom)
    assert same.leverage_caps == near.leverage_caps
