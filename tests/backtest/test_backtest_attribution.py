"""The capture attribution on hand-made paths and on the engine's own runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.backtest.attribution import bar_parts, capture_parts
from cascade_ml.backtest.engine import SimResult, simulate
from cascade_ml.policy.config import NEAR_TIERS, PolicyConfig


def _result(equity, notional, hedge, fees) -> SimResult:
    n = len(equity)
    costs = np.vstack([np.asarray(fees, float), np.zeros(n), np.zeros(n)])
    return SimResult(np.asarray(equity, float), np.zeros(n), np.asarray(hedge, float), [],
                     0.0, 0.0, 0.0, 0, notional=np.asarray(notional, float), cum_costs=costs)


def test_bar_parts_by_hand() -> None:
    close = [10.0, 11.0, 10.45]  # +10 %, then -5 %
    # capped: 50 of notional on 100 of equity, 0.5 of fees in bar 1 (4.5 %); 55 held into bar 2
    capped = _result([100.0, 104.5, 101.75], [50.0, 55.0, 55.0], [0, 0, 0], [0, 0.5, 0.5])
    # hedged 40 %: keeps 3 of the 5 of bar 1 less 0.2 of fees (2.8 %), then flat (hedge 0)
    hedged = _result([100.0, 102.8, 102.8], [50.0, 0.0, 0.0], [0.4, 0.0, 0.0], [0, 0.2, 0.2])
    p = bar_parts(hedged, capped, np.array(close))
    assert p["ret"] == pytest.approx([0.028, 0.0])
    assert p["capped"] == pytest.approx([0.045, -0.05 * 55 / 104.5])
    # bar 1: the 60 % kept of the capped 4.5 %; fees 0.2 % against the kept 0.6 x 0.5 %
    assert p["hedge"] == pytest.approx([0.027, -0.05 * 55 / 104.5])
    assert p["costs"] == pytest.approx([0.001, 0.0])
    # bar 2: flat, so the whole capped move is a size difference, not the hedge's
    assert p["size"] == pytest.approx([0.0, 0.05 * 55 / 104.5])
    assert p["rest"] == pytest.approx([0.0, 0.0], abs=1e-12)


def test_capture_parts_by_hand() -> None:
    days = pd.date_range("2026-01-01", periods=5, freq="D")
    bench = pd.Series([0.02, -0.01, 0.03, -0.03, 0.0], index=days)
    parts = {"hedge": pd.Series([0.012, -0.006, 0.015, -0.021, 0.001], index=days),
             "costs": pd.Series([-0.001, -0.001, 0.0, 0.0, -0.001], index=days)}
    out = capture_parts(parts, bench)
    # up days 1 and 3: 0.027 of 0.05; down days 2 and 4: -0.027 of -0.04; day 5 is neither
    assert out["up"]["hedge"] == pytest.approx(0.54)
    assert out["up"]["effective_hedge"] == pytest.approx(0.46)
    assert out["up"]["costs"] == pytest.approx(-0.02)
    assert out["down"]["hedge"] == pytest.approx(0.675)
    assert out["down"]["effective_hedge"] == pytest.approx(0.325)
    assert out["down"]["costs"] == pytest.approx(0.025)


def test_static_hedge_on_the_engine_keeps_one_minus_its_ratio() -> None:
    """A 40 % static hedge against the same position unhedged, with fees and funding: the
    hedge part keeps 60 % of the capped moves on up and down days alike, and the parts account
    for the engine's returns with nothing left over."""
    rng = np.random.default_rng(3)
    n = 24 * 20
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    rate = np.where(np.arange(n) % 8 == 0, 1e-4, 0.0)  # a long pays 0.01 % every 8 h

    def run(hedge: float) -> SimResult:
        return simulate(close, close, close, close, rate, np.full(n, 2.0),
                        np.full(n, hedge), np.full(n, 0.02), np.full(n, 0.04), side="long",
                        tiers=NEAR_TIERS, policy=PolicyConfig())

    hedged, capped = run(0.4), run(0.0)
    assert hedged.fees > 0 and hedged.funding > 0
    p = bar_parts(hedged, capped, close)
    assert np.allclose(p["hedge"] + p["size"] + p["costs"] + p["rest"], p["ret"])
    assert np.all(np.abs(p["rest"]) < 1e-9)  # no stop, no liquidation: nothing left over
    idx = pd.date_range("2026-01-01", periods=n - 1, freq="h")
    daily = {k: pd.Series(v, index=idx).resample("D").sum() for k, v in p.items()}
    out = capture_parts({k: daily[k] for k in ("hedge", "size", "costs")}, daily["capped"])
    assert out["up"]["effective_hedge"] == pytest.approx(0.4)
    assert out["down"]["effective_hedge"] == pytest.approx(0.4)
