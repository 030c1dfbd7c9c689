"""The protective stop re-anchored every ``policy.stop_reset_bars`` (issue 16): the 2 % rule
bounds the loss from each anchor, not the loss since the first entry; 0 keeps the entry."""

from __future__ import annotations

import numpy as np
import pytest

from cascade_ml.backtest.engine import simulate
from cascade_ml.policy.config import NEAR_TIERS, PolicyConfig
from cascade_ml.trading import core
from cascade_ml.trading.margin import Tiers


def _position() -> core.PositionState:
    ps = core.PositionState(0, "long", stops=True)
    ps.main_q, ps.hedge_q, ps.h_cur, ps.entry, ps.bucket = 100.0, 30.0, 0.3, 100.0, 5_000.0
    return ps


def test_the_stop_by_hand_from_the_entry_and_from_an_anchor() -> None:
    """100 NEAR long, 30 % hedged (exposure 0.7), max loss 196: from the entry 100 the stop is
    196 / (10,000 x 0.7) = 2.8 % below, 97.2; anchored at 98, 196 / (9,800 x 0.7) = 2.857 %
    below 98, 95.2 (at 2x the liquidation buffer does not bind)."""
    tiers = [Tiers(NEAR_TIERS)]
    assert core.stop_price(_position(), tiers, 98.0, 196.0, 0.8) == pytest.approx(97.2)
    assert core.stop_price(_position(), tiers, 98.0, 196.0, 0.8, anchor=98.0) == \
        pytest.approx(95.2)


def _run(reset: int, low_at_6: float):
    """Enter 2x long at 100 with a 30 % hedge, then hold (NaN targets) while the price drifts
    to 98 by bar 5; bar 6 dips to ``low_at_6``."""
    close = np.array([100.0, 99.6, 99.2, 98.8, 98.4, 98.0, 98.0, 98.0])
    low = close.copy()
    low[6] = low_at_6
    n = len(close)
    lev = np.full(n, np.nan)
    lev[0] = 2.0
    hedge = np.full(n, np.nan)
    hedge[0] = 0.3
    cfg = PolicyConfig(stop_reset_bars=reset)
    return simulate(close, np.maximum(close, 100.0), low, close, np.zeros(n), lev, hedge,
                    np.full(n, 0.04), np.full(n, 0.05), side="long", tiers=NEAR_TIERS,
                    policy=cfg, stops=True, margin_fraction=0.5)


def test_a_dip_past_the_entrys_stop_fires_it_only_without_the_reset() -> None:
    # from the entry the stop sits ~2.9 % below 100 (~97.1): a low of 96 fires it at bar 6
    assert _run(0, 96.0).stop_bars == [6]
    # re-anchored at bar 5 on 98, the stop sits ~2.9 % below 98 (~95.2): 96 does not reach it
    assert _run(5, 96.0).stop_bars == []
    # one bar later than the reset it would not have been re-anchored: reset 6 keeps the old
    # stop at bar 6's settle (the anchor moves at bar 6's close, after the dip)
    assert _run(6, 96.0).stop_bars == [6]


@pytest.mark.parametrize(("low", "fires"), [(95.3, False), (95.1, True)])
def test_just_either_side_of_the_re_anchored_stop(low: float, fires: bool) -> None:
    res = _run(5, low)
    assert (res.stop_bars == [6]) is fires
    if fires:  # the loss from the anchor (98) to the fill is at most 2 % of the equity then
        equity_at_anchor = res.equity[5]
        loss = equity_at_anchor - res.equity[6]
        fees = res.cum_costs[0, 6] - res.cum_costs[0, 5]
        assert 0.0195 * equity_at_anchor <= loss - fees <= 0.02 * equity_at_anchor * (1 + 1e-9)
