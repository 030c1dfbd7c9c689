"""Coherent decisions (issue 11, item 5): caps agree, hold when matched, the stop's loss and
place, and reasons that name the limit that bound."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cascade_ml.policy import PolicyConfig, PolicyInputs, decide
from cascade_ml.policy.liquidation import liquidation_price

CFG = PolicyConfig()


def inputs(sigma, prob=0.05, *, hedge=0.3, lev=3.0, notional=5_000.0, equity=100_000.0,
           side="long", entry=5.0, mark=5.0, mode="isolated") -> PolicyInputs:
    return PolicyInputs.model_validate({
        "forecast": {"sigma_h": sigma, "horizon_hours": 24, "cascade_prob": prob},
        "position": {"side": side, "notional": notional, "entry_price": entry,
                     "mark_price": mark, "leverage": lev, "hedge_ratio": hedge,
                     "margin_mode": mode},
        "equity": equity, "freshness": {"forecast_age_s": 0, "features_age_s": 0}})


sigmas = st.one_of(st.floats(0.002, 0.6), st.sampled_from([math.nan, -0.1, 5.0]))
probs = st.floats(0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(sigmas, probs, st.sampled_from(["long", "short"]), st.floats(100, 2e6),
       st.floats(1_000, 1e7), st.floats(0.5, 20), st.floats(0, 1))
def test_caps_agree_and_the_stop_bounds_the_loss(sigma, prob, side, notional, equity, lev,
                                                  hedge) -> None:
    d = decide(inputs(sigma, prob, side=side, notional=notional, equity=equity, lev=lev,
                      hedge=hedge), CFG)
    # the size cap never exceeds what the leverage cap allows on the equity
    assert d.size_cap_notional <= d.leverage_cap * equity * (1 + 1e-9)
    if d.fail_safe:
        assert d.size_cap_notional <= notional  # no new exposure
        assert d.leverage_cap <= 1.0  # the fail-safe's 1x
    assert d.max_loss == pytest.approx(0.02 * equity)  # the 2 % rule
    n_after = min(notional, d.size_cap_notional)
    lev_after = min(lev, d.leverage_cap)
    assume(n_after > 0)
    exposure = 1 - d.hedge_ratio * d.hedge_effectiveness
    # the loss at the stop on the position after this decision is at most the max loss
    assert n_after * exposure * d.stop_distance <= d.max_loss * (1 + 1e-9)
    if d.stop_price is not None:
        lp = liquidation_price(side, n_after / 5.0, 5.0, n_after / lev_after,
                               CFG.tiers_for("NEAR"))
        if side == "long":
            assert d.stop_price > lp - 1e-9  # the stop fires before liquidation
        else:
            assert d.stop_price < lp + 1e-9
    # reasons name the limits that bound
    assert d.binding["size"] in " ".join(d.reasons)
    assert d.binding["stop"] in ("max_loss", "liquidation_buffer")
    if not d.fail_safe:
        assert f"set by {d.binding['leverage']}" in d.reasons[2]
        assert f"set by {d.binding['size']}" in d.reasons[3]


@settings(max_examples=200, deadline=None)
@given(st.floats(0.005, 0.3), probs, st.floats(-0.99, 0.99), st.floats(0.05, 1.0))
def test_hold_when_the_position_already_matches(sigma, prob, frac, lev_frac) -> None:
    first = decide(inputs(sigma, prob), CFG)
    hedge = min(max(first.hedge_ratio + frac * 0.05, 0.0), 1.0)  # inside the 5 % band
    assume(abs(hedge - first.hedge_ratio) < 0.05)
    lev = max(first.leverage_cap * lev_frac, 1e-3)
    d = decide(inputs(sigma, prob, hedge=hedge, lev=lev), CFG)
    assert d.leverage_cap == pytest.approx(first.leverage_cap)  # same tier, same cap
    assert d.action == "hold", d.reasons[-1]
    assert d.binding["action"] == "within_band"


def test_fail_safe_holds_when_already_conservative() -> None:
    """The issue's churn: top of the band, at the fail-safe cap, inside the size cap."""
    first = decide(inputs(None), CFG)
    assert first.fail_safe and first.action == "rebalance"
    assert first.hedge_ratio == 0.70  # the band's top
    settled = decide(inputs(None, hedge=0.70, lev=first.leverage_cap * 0.99,
                            notional=first.size_cap_notional * 0.99), CFG)
    assert settled.action == "hold" and settled.binding["action"] == "within_band"
    # a hedge below the top by less than the band also holds; by more, rebalances
    near = decide(inputs(None, hedge=0.70 - 0.04, lev=first.leverage_cap * 0.99,
                         notional=first.size_cap_notional * 0.99), CFG)
    assert near.action == "hold"
    far = decide(inputs(None, hedge=0.70 - 0.06, lev=first.leverage_cap * 0.99,
                        notional=first.size_cap_notional * 0.99), CFG)
    assert far.action == "rebalance" and far.binding["action"] == "hedge_change"
    # at the 5 % band's edge: 4.99 % below the top holds, 5.01 % rebalances
    edge = {"lev": first.leverage_cap * 0.99, "notional": first.size_cap_notional * 0.99}
    assert decide(inputs(None, hedge=0.6501, **edge), CFG).action == "hold"
    assert decide(inputs(None, hedge=0.6499, **edge), CFG).action == "rebalance"
    # and leverage 0.1 % above the fail-safe cap rebalances on the limits
    over = decide(inputs(None, hedge=0.70, lev=first.leverage_cap * 1.001,
                         notional=first.size_cap_notional * 0.99), CFG)
    assert over.action == "rebalance" and over.binding["action"] == "limits"


def test_fail_safe_size_cap_agrees_with_its_leverage_cap() -> None:
    """The issue's contradiction: a 0.16x leverage cap beside a size cap of the whole position."""
    d = decide(inputs(None, notional=50_000.0, equity=20_000.0, lev=5.0), CFG)
    # the liquidation cap at the worst sane forecast (a 5 x 100 % move kept away, the 50,000
    # notional's tier: MMR 1.5 %, cum 50) is below the fail-safe's 1x
    assert d.leverage_cap == pytest.approx(1 / (1 - 50 / 50_000 + 4 * (1 - 0.015)))
    assert d.size_cap_notional <= d.leverage_cap * 20_000.0 + 1e-9 < 50_000.0


def test_stop_from_the_max_loss_by_hand() -> None:
    # 5,000 notional, hedge target h, same perp: the stop sits where 5,000 x (1 - h) x d = 2,000
    d = decide(inputs(0.04, 0.05, notional=5_000.0, equity=100_000.0, lev=2.0), CFG)
    assert d.binding["stop"] == "liquidation_buffer"  # 2 % of 100k is more than 2x can lose
    # 1,000 NEAR at 5.0 on 2,500 of isolated margin, tier 1 (MMR 1 %, cum 0):
    # LP = (2,500 - 5,000) / (0.01 x 1,000 - 1,000) = 2.5253; the stop sits 80 % of the way there
    lp = (2_500 - 5_000) / (10 - 1_000)
    assert d.liquidation_price == pytest.approx(lp)
    assert d.stop_price == pytest.approx(5.0 - 0.8 * (5.0 - lp))  # 3.0202
    small = decide(inputs(0.04, 0.05, notional=50_000.0, equity=20_000.0, lev=1.0), CFG)
    n = min(50_000.0, small.size_cap_notional)
    expected = 400.0 / (n * (1 - small.hedge_ratio))
    assert small.binding["stop"] == "max_loss"
    assert small.stop_distance == pytest.approx(expected)
    assert small.stop_price == pytest.approx(5.0 * (1 - expected))
    # at the size cap (sized before the hedge on a 3-sigma move of the 80 %/yr reference over
    # 24 h) the stop sits at that tail move divided by the share left unhedged: beyond it
    assert small.binding["size"] == "risk_budget"
    move = 3 * 0.8 * (24 / 8760) ** 0.5
    assert small.stop_distance == pytest.approx(move / (1 - small.hedge_ratio))


ENTRY = PolicyConfig(stop_reset_bars=0)  # the stop measured from the entry price


def test_mark_past_the_stop_closes_the_position() -> None:
    d = decide(inputs(0.04, 0.05, notional=50_000.0, equity=20_000.0, lev=1.0, mark=2.5),
               ENTRY)
    assert d.stop_price is not None and d.stop_price > 2.5
    assert d.action == "rebalance" and d.size_cap_notional == 0.0
    assert d.binding == {**d.binding, "size": "stop_reached", "action": "stop_reached"}
    short = decide(inputs(0.04, 0.05, notional=50_000.0, equity=20_000.0, lev=1.0,
                          side="short", mark=7.5), ENTRY)
    assert short.stop_price < 7.5 and short.action == "rebalance"


def test_a_re_anchored_stop_is_measured_from_the_mark() -> None:
    """stop_reset_bars > 0: the decision anchors the stop at the mark (4.0, entry 5.0); the
    2 % rule still sets its distance: 400 / (n x (1 - h)) below 4.0, not below 5.0, so a mark
    20 % under the entry is no longer past the stop."""
    cfg = PolicyConfig(stop_reset_bars=72)  # the default
    d = decide(inputs(0.04, 0.05, notional=50_000.0, equity=20_000.0, lev=1.0, mark=4.0), cfg)
    n = min(50_000.0, d.size_cap_notional)
    expected = 400.0 / (n * (1 - d.hedge_ratio))
    assert d.binding["stop"] == "max_loss"
    assert d.stop_distance == pytest.approx(expected)
    assert d.stop_price == pytest.approx(4.0 * (1 - expected))
    assert d.binding["action"] != "stop_reached" and d.size_cap_notional > 0
    assert "re-anchored every 72 bars" in " ".join(d.reasons)
    # from the entry (stop_reset_bars 0) a mark of 2.5 is past the stop
    assert decide(inputs(0.04, 0.05, notional=50_000.0, equity=20_000.0, lev=1.0, mark=2.5),
                  ENTRY).binding["action"] == "stop_reached"
