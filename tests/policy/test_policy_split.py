"""The split decision (a plan per forecast bar, reused for every position) is ``decide``.

A plan is made once per bar and then reused, in a shuffled order, for many positions, trigger
flags and freshness states; every answer must be the very ``Decision`` that ``decide`` gives on
the full inputs built afresh, reasons included. Bars include untrusted forecasts and positions
include stale or unknown ages, so the fail-safe goes through the split path too.
"""

from __future__ import annotations

import math
import random
from collections import Counter

from cascade_ml.policy import PolicyConfig, PolicyInputs, decide
from cascade_ml.policy.decide import decide_position, decision_fields, plan_inputs
from cascade_ml.policy.schemas import Decision, Freshness, Position, Triggers

TRIGGER_NAMES = tuple(Triggers.model_fields)
CONFIGS = (
    PolicyConfig(),
    PolicyConfig(same_perp_effectiveness=0.85, min_cross_hedge_r2=0.5, vol_reference="trailing",
                 max_leverage=50, use_maker=True, no_trade_band=0.02, stop_reset_bars=0),
    PolicyConfig(hedge_min=0.5, hedge_max=0.9, vol_reference_annual=2.0, max_leverage=10,
                 same_perp_effectiveness=0.9, benefit_cost_multiple=25.0, stop_reset_bars=0),
)


def _bar(rng: random.Random) -> dict:
    """Forecast-side inputs of one bar: mostly trusted, some outside sane bounds."""
    hours = rng.choice([1.0, 12.0, 24.0])
    draw = rng.random()
    sigma = (rng.choice([math.nan, -0.01, 0.0, 3.0]) if draw < 0.08 else
             rng.uniform(0.05, 0.6) if draw < 0.15 else
             rng.uniform(0.002, 0.015) * math.sqrt(hours))  # 20%-140% a year
    prob = rng.choice([math.nan, -0.2, 1.3]) if rng.random() < 0.06 else rng.random() ** 2
    return {
        "symbol": rng.choice(["NEAR", "SOL"]),  # SOL: the generic margin tiers
        "forecast": {"sigma_h": None if math.isnan(sigma) else sigma,
                     "horizon_hours": hours, "cascade_prob": prob,
                     "vol_q90": -1.0 if rng.random() < 0.05 else rng.choice([None, 0.1]),
                     "vol_q99": math.inf if rng.random() < 0.05 else
                     rng.choice([None, rng.uniform(0, 0.5)])},
        "triggers": {n: rng.choice([None, True, False]) for n in TRIGGER_NAMES},
        "cross_asset": {"beta_btc": rng.choice([None, *[rng.uniform(-0.3, 2)] * 3]),
                        "corr_btc": rng.choice([None, *[rng.uniform(0.7, 1)] * 3]),
                        "beta_eth": rng.choice([None, *[rng.uniform(-0.3, 2)] * 3]),
                        "r2_eth": rng.choice([None, *[rng.uniform(0.5, 1)] * 3])},
        "trailing_vol_annual": rng.choice([None, math.nan, rng.uniform(0.3, 3)]),
    }


def _position(rng: random.Random) -> tuple[dict, float]:
    """A position (often within its limits, so every action is reached) and the equity."""
    equity = rng.uniform(2_000, 5e6)
    calm = rng.random() < 0.6
    entry = rng.uniform(0.5, 50)
    notional = rng.uniform(50, equity * 0.3) if calm else rng.uniform(50, 3e6)
    return {"side": rng.choice(["long", "short"]), "notional": notional, "entry_price": entry,
            "mark_price": entry * (rng.uniform(0.99, 1.01) if calm else rng.uniform(0.7, 1.3)),
            "leverage": rng.uniform(0.2, 2.5) if calm else rng.uniform(0.5, 40),
            "margin_mode": rng.choice(["isolated", "isolated", "cross"]),
            "hedge_ratio": rng.choice([rng.random(), 0.3, 0.5, 0.65, 0.7])}, equity


def _freshness(rng: random.Random) -> dict:
    age = rng.choice([None, 5.0, 60.0, 9_000.0]) if rng.random() < 0.1 else \
        rng.uniform(0, 3_000)
    return {"forecast_age_s": age, "features_age_s": rng.choice([age, 10.0]),
            "max_age_s": rng.choice([None, 3_600.0])}


def test_a_reused_plan_gives_the_decision_of_decide_reasons_included() -> None:
    rng = random.Random(20240611)
    seen: Counter[str] = Counter()
    compared = 0
    for _ in range(60):  # bars
        cfg = rng.choice(CONFIGS)
        bar = _bar(rng)
        plan = None
        for _ in range(60):  # positions decided on the same bar
            pos, equity = _position(rng)
            fresh = _freshness(rng)
            model = rng.random() > 0.03
            flags = {n: rng.choice([True, False]) for n in TRIGGER_NAMES
                     if rng.random() < 0.3}  # a bot's fresher trigger flags
            inputs = PolicyInputs.model_validate({
                **bar, "triggers": {**bar["triggers"], **flags}, "position": pos,
                "equity": equity, "freshness": fresh, "model_available": model})
            expected = decide(inputs, cfg)
            if plan is None:  # planned once, on the bar's own triggers, then reused
                plan = plan_inputs(PolicyInputs.model_validate(
                    {**bar, "position": pos, "equity": equity}), cfg)
            position, freshness = Position(**pos), Freshness(**fresh)
            got = decide_position(plan, position, equity, fired=plan.fired_with(flags),
                                  model_available=model, freshness=freshness)
            assert got.model_dump_json() == expected.model_dump_json(), (bar, pos, fresh, flags)
            fields = decision_fields(plan, position, equity, fired=plan.fired_with(flags),
                                     model_available=model, freshness=freshness)
            assert Decision(**fields).model_dump_json() == expected.model_dump_json()
            seen.update([f"action={expected.binding['action']}",
                         f"size={expected.binding['size']}", f"stop={expected.binding['stop']}",
                         f"fail_safe={expected.fail_safe}",
                         f"instrument={expected.hedge_instrument}"])
            seen.update(["trigger_reason"] if "trigger(s)" in expected.reasons[0] else [])
            seen.update(["no_stop"] if expected.stop_price is None else [])
            compared += 1
    assert compared == 3600
    # every branch of the decision was compared, not only the common ones (not_worth_it is
    # rarer since a held hedge outside the band moves into it whatever the cost: 44 here)
    for key, least in {"action=within_band": 50, "action=not_worth_it": 40,
                       "action=hedge_change": 300, "action=limits": 500,
                       "action=stop_reached": 50, "size=risk_budget": 1000,
                       "size=leverage_cap": 40, "size=current_notional": 10,
                       "stop=max_loss": 1000, "stop=liquidation_buffer": 150, "no_stop": 20,
                       "fail_safe=True": 300, "fail_safe=False": 1000, "instrument=BTC": 100,
                       "instrument=ETH": 50, "trigger_reason": 500}.items():
        assert seen[key] >= least, (key, seen)


def test_fresher_trigger_flags_replace_the_bars() -> None:
    """``fired_with`` is ``Triggers.model_copy(update=flags).fired()``, in field order."""
    bar = {"funding_divergence": True, "sentiment_spike": None, "volume_breakdown": False}
    inputs = PolicyInputs.model_validate({
        "forecast": {"sigma_h": 0.03, "cascade_prob": 0.1}, "triggers": bar,
        "position": {"side": "long", "notional": 1_000, "entry_price": 2, "mark_price": 2,
                     "leverage": 2}, "equity": 5_000})
    plan = plan_inputs(inputs, PolicyConfig())
    for flags in ({}, {"volume_breakdown": True}, {"funding_divergence": False},
                  {"volume_breakdown": True, "sentiment_spike": True}):
        want = tuple(Triggers(**bar).model_copy(update=flags).fired())
        assert plan.fired_with(flags) == want
    assert plan.fired_with({"volume_breakdown": True}) == ("funding_divergence",
                                                           "volume_breakdown")
