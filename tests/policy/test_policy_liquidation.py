"""Liquidation math against hand-computed Binance cases (NEAR tiers from REFERENCES.md)."""

import math

import pytest

from cascade_ml.errors import CascadeError
from cascade_ml.policy.config import GENERIC_TIERS, NEAR_TIERS
from cascade_ml.policy.liquidation import (
    bucket_liquidation_bounds,
    liquidation_distance,
    liquidation_price,
    maintenance_margin,
    max_leverage_for_distance,
    tier_params,
)


@pytest.mark.parametrize("lev, expected", [(10, 0.0909), (5, 0.1919), (3, 0.3266)])
def test_near_long_distance_matches_references(lev: float, expected: float) -> None:
    # tier 1 (notional < 10k): MMR 1%, cum 0 -> d = 1 - (1 - 1/L) / 0.99
    assert liquidation_distance("long", lev, 5_000, NEAR_TIERS) == pytest.approx(expected, abs=1e-4)


def test_long_price_tier1_by_hand() -> None:
    # Q = 1000 NEAR at 5.0, 10x: WB = 500; LP = (500 + 0 - 5000) / (10 - 1000) = 4.5454...
    lp = liquidation_price("long", 1000, 5.0, 500.0, NEAR_TIERS)
    assert lp == pytest.approx(4500 / 990)
    assert 1 - lp / 5.0 == pytest.approx(0.0909, abs=1e-4)


def test_long_price_tier3_with_cum_by_hand() -> None:
    # Q = 40,000 at 5.0 -> N = 200k: tier 3 (MMR 2%, cum 550). 10x: WB = 20,000.
    # LP = (20000 + 550 - 200000) / (800 - 40000) = 179450 / 39200 = 4.577806...
    lp = liquidation_price("long", 40_000, 5.0, 20_000.0, NEAR_TIERS)
    assert lp == pytest.approx(179_450 / 39_200)
    assert liquidation_distance("long", 10, 200_000, NEAR_TIERS) == pytest.approx(1 - lp / 5.0)


def test_short_price_tier2_with_cum_by_hand() -> None:
    # Q = 10,000 at 5.0 -> N = 50k: tier 2 (MMR 1.5%, cum 50). 5x: WB = 10,000.
    # LP = (10000 + 50 + 50000) / (150 + 10000) = 60050 / 10150 = 5.916256...
    lp = liquidation_price("short", 10_000, 5.0, 10_000.0, NEAR_TIERS)
    assert lp == pytest.approx(60_050 / 10_150)
    assert liquidation_distance("short", 5, 50_000, NEAR_TIERS) == pytest.approx(lp / 5.0 - 1)


def test_tiers_and_maintenance_are_continuous_at_bounds() -> None:
    assert tier_params(9_999, NEAR_TIERS) == (0.01, 75, 0)
    assert tier_params(10_000, NEAR_TIERS) == (0.015, 50, 50)
    assert tier_params(7e6, NEAR_TIERS)[0] == 0.05
    for tiers in (NEAR_TIERS, GENERIC_TIERS):
        for t in tiers[:-1]:
            below = maintenance_margin(t.max_notional - 1e-6, tiers)
            above = maintenance_margin(t.max_notional, tiers)
            assert above == pytest.approx(below, abs=1e-3)


@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("notional", [5_000, 50_000, 200_000, 2_000_000])
def test_max_leverage_inverts_distance(side: str, notional: float) -> None:
    for d in (0.05, 0.1, 0.2, 0.4):
        lev = max_leverage_for_distance(side, d, notional, NEAR_TIERS)
        assert liquidation_distance(side, lev, notional, NEAR_TIERS) == pytest.approx(d)


def test_references_formula_for_long_with_cum_zero() -> None:
    d, mmr = 0.15, 0.01
    assert max_leverage_for_distance("long", d, 1_000, NEAR_TIERS) == pytest.approx(
        1 / (1 - (1 - mmr) * (1 - d)))


def test_bucket_price_equals_single_position_formula() -> None:
    lp = liquidation_price("long", 40_000, 5.0, 20_000.0, NEAR_TIERS)
    assert bucket_liquidation_bounds(40_000, 0, 20_000.0, 5.0, NEAR_TIERS) == pytest.approx(
        (lp, math.inf))
    lps = liquidation_price("short", 10_000, 5.0, 10_000.0, NEAR_TIERS)
    assert bucket_liquidation_bounds(0, 10_000, 10_000.0, 5.0, NEAR_TIERS) == pytest.approx(
        (-math.inf, lps))


def test_hedge_leg_moves_liquidation_away() -> None:
    alone = bucket_liquidation_bounds(2_000, 0, 1_000.0, 5.0, NEAR_TIERS)[0]
    hedged = bucket_liquidation_bounds(2_000, 1_000, 1_000.0, 5.0, NEAR_TIERS)[0]
    assert hedged < alone
    assert all(math.isnan(x) for x in bucket_liquidation_bounds(0, 0, 1_000.0, 5.0, NEAR_TIERS))


def test_a_near_full_hedge_is_liquidated_only_by_a_rise() -> None:
    # 40,000 NEAR long at 5 (200k, 2 % bracket, cum 550) on 40,000 of margin, 98 % hedged:
    # f(x) = 40,000 - 800 x 5 + 1,100 + (800 - 0.02 x 79,200) x = 37,100 - 784 x
    assert bucket_liquidation_bounds(40_000, 39_200, 40_000.0, 5.0, NEAR_TIERS) == \
        pytest.approx((-math.inf, 37_100 / 784))


def test_unknown_side_is_a_cascade_error() -> None:
    with pytest.raises(CascadeError, match="unknown side"):
        liquidation_distance("flat", 5, 1000, NEAR_TIERS)  # type: ignore[arg-type]
