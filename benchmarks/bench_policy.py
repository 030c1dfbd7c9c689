"""Policy micro-benchmark: one ``decide`` call, and the rules it runs on floats vs numpy.

Prints, from the same run:
  * µs per ``decide(inputs, config)`` (a normal decision and a fail-safe one);
  * its two halves: ``plan`` (once per forecast bar) and ``decide_position`` on that plan (what
    each served decision pays), with ``decision_fields`` (the same without building the
    ``Decision``, as the service does) — all give the same answer (checked);
  * µs for the rule calls ``decide`` makes, on plain floats (the scalar path ``decide`` takes) and
    on 1-element numpy arrays (the numpy path, i.e. what every single decision paid when the rules
    ran numpy on scalars), and their ratio; both must give the same numbers (checked);
  * the vectorised rules on whole columns (the backtest's path), in ns per row.

    python benchmarks/bench_policy.py [--repeat 5] [--number 2000]
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from cascade_ml.policy import PolicyConfig, PolicyInputs, decide, rules
from cascade_ml.policy.decide import decide_position, decision_fields, plan_inputs
from cascade_ml.policy.schemas import Decision

CFG = PolicyConfig()


def make_inputs(sigma: float | None = 0.04, prob: float | None = 0.05) -> PolicyInputs:
    return PolicyInputs.model_validate({
        "symbol": "NEAR",
        "forecast": {"sigma_h": sigma, "horizon_hours": 24, "cascade_prob": prob},
        "triggers": {"funding_divergence": True},
        "position": {"side": "long", "notional": 5_000, "entry_price": 5.0, "mark_price": 5.0,
                     "leverage": 3, "hedge_ratio": 0.3},
        "equity": 50_000, "freshness": {"forecast_age_s": 60, "features_age_s": 60}})


def rule_calls(sigma, horizon, prob, fired, notional, equity, current, cfg=CFG) -> tuple:
    """The rule calls ``decide`` makes for one decision (same order, same arguments)."""
    tiers = cfg.tiers_for("NEAR")
    vol_ann = rules.annualised_vol(sigma, horizon)
    score = rules.risk_score(sigma, horizon, prob, cfg)
    terms = rules.objective_terms(sigma, horizon, prob, cfg, 0.8)
    hedge = terms["hedge"]
    bump = rules.trigger_bump(fired, cfg)
    caps = rules.leverage_caps(sigma, horizon, prob, "long", notional, tiers, cfg, hedge=hedge)
    k = rules.k_sigma(prob, cfg)
    sc = rules.size_cap(equity, rules.reference_sigma_h(0.8, horizon), cfg)
    resid = rules.residual_fraction(hedge, 1.0)
    worth, benefit, cost = rules.objective_move(hedge, current, terms, cfg)
    return (vol_ann, score, hedge, bump, caps["cap"], caps["liquidation"], k, sc, resid, worth,
            benefit, cost)


def per_call_us(fn, number: int, repeat: int) -> float:
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=2000, help="calls per timing")
    ap.add_argument("--repeat", type=int, default=5, help="timings (the best is reported)")
    args = ap.parse_args()
    n, r = args.number, args.repeat

    ok, bad = make_inputs(), make_inputs(sigma=float("nan"))
    assert not decide(ok, CFG).fail_safe and decide(bad, CFG).fail_safe
    scalar = (0.04, 24.0, 0.05, 1, 5_000.0, 50_000.0, 0.3)
    arrays = tuple(np.array([v], dtype=float) for v in scalar)
    got_s, got_a = rule_calls(*scalar), rule_calls(*arrays)
    for s, a in zip(got_s, got_a, strict=True):  # the same numbers on both paths
        assert float(s) == float(np.asarray(a, dtype=float)[0]), (s, a)

    print(f"best of {r} x {n} calls")
    t_ok = per_call_us(lambda: decide(ok, CFG), n, r)
    t_bad = per_call_us(lambda: decide(bad, CFG), n, r)
    print(f"  decide (normal decision)          {t_ok:8.1f} us")
    print(f"  decide (fail-safe decision)       {t_bad:8.1f} us")
    planned = plan_inputs(ok, CFG)
    pos, equity, fresh = ok.position, ok.equity, ok.freshness
    split = decide_position(planned, pos, equity, freshness=fresh)
    fields = decision_fields(planned, pos, equity, freshness=fresh)
    assert split == decide(ok, CFG) == Decision(**fields)
    t_plan = per_call_us(lambda: plan_inputs(ok, CFG), n, r)
    t_pos = per_call_us(lambda: decide_position(planned, pos, equity, freshness=fresh), n, r)
    t_fields = per_call_us(lambda: decision_fields(planned, pos, equity, freshness=fresh), n, r)
    print(f"  plan (once per forecast bar)      {t_plan:8.1f} us")
    print(f"  decide_position on that plan      {t_pos:8.1f} us   (per served decision)")
    print(f"  decision_fields on that plan      {t_fields:8.1f} us   (the same, no Decision "
          "object)")
    t_s = per_call_us(lambda: rule_calls(*scalar), n, r)
    t_a = per_call_us(lambda: rule_calls(*arrays), n, r)
    print(f"  decide's rule calls, floats       {t_s:8.1f} us   (scalar path)")
    print(f"  decide's rule calls, 1-elem numpy {t_a:8.1f} us   (numpy path on one row)")
    print(f"  numpy path / scalar path          {t_a / t_s:8.1f}x")

    rows = 100_000
    rng = np.random.default_rng(0)
    cols = (rng.uniform(0.005, 0.3, rows), 24.0, rng.uniform(0, 1, rows),
            rng.integers(0, 4, rows).astype(float), 5_000.0, 50_000.0, rng.uniform(0, 1, rows))
    t_v = per_call_us(lambda: rule_calls(*cols), 1, r)
    print(f"  rule calls on {rows:,}-row columns {t_v * 1e3 / rows:8.1f} ns per row "
          "(backtest path)")


if __name__ == "__main__":
    main()
