"""Issue 16's first target on development windows of the final period's length
(backtest/windows.py): the tiling, the per-window measures and the pooled shares, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.backtest.windows import (
    beats,
    judge,
    pooled_shares,
    share,
    symbol_windows,
    tile_windows,
    window_measures,
)


def test_windows_tile_back_from_the_end_of_each_run_and_drop_the_short_remainder() -> None:
    # bars 1..10 are development (10 bars), windows of 4: [7, 11), [3, 7); bars 1-2 left out
    mask = np.zeros(14, dtype=bool)
    mask[1:11] = True
    assert tile_windows(mask, 4) == [(3, 7), (7, 11)]
    # two runs (a gap at bar 5): 0-4 holds one window of 4, 6-13 two
    mask = np.ones(14, dtype=bool)
    mask[5] = False
    assert tile_windows(mask, 4) == [(1, 5), (6, 10), (10, 14)]
    # a run just one bar short of a window holds none; exactly one window fits at length 5
    assert tile_windows(np.ones(3, dtype=bool), 4) == []
    assert tile_windows(np.ones(5, dtype=bool), 5) == [(0, 5)]


def test_a_window_length_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="window length"):
        tile_windows(np.ones(5, dtype=bool), 0)


def test_window_measures_are_read_from_the_close_before_the_window() -> None:
    # 2-bar "days": bar 1 is where the window starts, so it is measured from bar 0 (100)
    eq = np.array([100.0, 90.0, 99.0, 99.0, 108.9])
    m = window_measures(eq, 1, 5, gammas=(1.0,), bars_per_day=2)
    # days: 100 -> 99 (-1 %), 99 -> 108.9 (+10 %); CVaR 95 of 2 days = the worst, -1 %
    assert m["cvar_95"] == pytest.approx(-0.01)
    # the peak 100 falls to 90 at bar 1: 10 %
    assert m["max_drawdown"] == pytest.approx(0.10)
    # quadratic utility, gamma 1 (a = 1/4): mean of 0.99 - 0.99^2/4 and 1.10 - 1.10^2/4
    u = ((0.99 - 0.99 ** 2 / 4) + (1.10 - 1.10 ** 2 / 4)) / 2
    assert m["utility_gamma_1"] == pytest.approx(u)
    # from bar 0 itself the window has no bar before it: it starts at 100 all the same
    assert window_measures(eq, 0, 5, gammas=(1.0,), bars_per_day=2)["max_drawdown"] == \
        pytest.approx(0.10)


def test_beats_is_strict_and_reads_drawdown_as_lower_better() -> None:
    a = {"cvar_95": -0.01, "max_drawdown": 0.05, "utility_gamma_1": 0.7}
    b = {"cvar_95": -0.02, "max_drawdown": 0.05, "utility_gamma_1": float("nan")}
    assert beats(a, b) == {"cvar_95": True, "max_drawdown": False, "utility_gamma_1": None}
    assert beats(b | {"max_drawdown": 0.049}, a)["max_drawdown"] is True


def _rec(cvar: bool, dd: bool, u: bool | None) -> dict:
    return {"first_better": {"cvar_95": cvar, "max_drawdown": dd, "utility_gamma_1": u}}


def test_share_counts_each_measure_and_all_three_at_once() -> None:
    recs = [_rec(True, True, True), _rec(True, False, True), _rec(False, True, None),
            _rec(True, True, False)]
    s = share(recs)
    assert s["cvar_95"] == {"better": 3, "of": 4, "share": 0.75}
    assert s["max_drawdown"] == {"better": 3, "of": 4, "share": 0.75}
    assert s["utility_gamma_1"] == {"better": 2, "of": 3, "share": pytest.approx(2 / 3)}
    # all three: only the first record wins everything (the third is not judged on utility)
    assert s["all_three"]["better"] == 1 and s["all_three"]["of"] == 3


def test_symbol_windows_judge_development_final_and_whole_span_then_pool() -> None:
    # 12 bars: 0-7 development, 8-11 the final period (4 bars): windows [0, 4) and [4, 8)
    index = pd.date_range("2024-01-01", periods=12, freq="h", tz="UTC")
    dev = np.r_[np.ones(8, bool), np.zeros(4, bool)]
    final = ~dev
    flat = np.full(12, 100.0)
    # the policy falls 2 % inside the first window and recovers; flat otherwise
    policy = flat.copy()
    policy[1:3] = 98.0
    doc = symbol_windows({"oracle_policy": policy, "static_matched_oracle": flat,
                          "model_policy": flat}, index, dev, final, gammas=(1.0,))
    assert doc["window_bars"] == 4
    assert doc["windows"] == [{"start": str(index[0]), "end": str(index[3])},
                              {"start": str(index[4]), "end": str(index[7])}]
    pairs = doc["pairs"]
    # only the pair whose two curves are present
    assert list(pairs) == ["oracle_policy vs static_matched_oracle"]
    spans = pairs["oracle_policy vs static_matched_oracle"]
    assert [(r["start_bar"], r["end_bar"]) for r in spans["development"]] == [(0, 4), (4, 8)]
    assert [(r["start_bar"], r["end_bar"]) for r in spans["final"]] == [(8, 12)]
    assert spans["development"][0]["first"]["max_drawdown"] == pytest.approx(0.02)
    assert spans["development"][0]["first_better"]["max_drawdown"] is False
    # equal curves: no strict win
    assert spans["development"][1]["first_better"]["max_drawdown"] is False
    pooled = pooled_shares({"X": doc, "Y": doc})
    block = pooled["oracle_policy vs static_matched_oracle"]
    assert block["development_windows"]["windows"] == 4
    assert block["development_windows"]["perps"] == 2
    assert block["development_windows"]["max_drawdown"] == {"better": 0, "of": 4, "share": 0.0}
    assert block["final_period"]["windows"] == 2 and block["whole_span"]["windows"] == 2


def test_judge_gives_one_record_per_span_with_both_sides() -> None:
    # two hourly days: one curve rises 100 -> 102 -> 104, the other falls 100 -> 98 -> 96
    up, down = np.linspace(100.0, 104.0, 49), np.linspace(100.0, 96.0, 49)
    (rec,) = judge(up, down, [(0, 49)], gammas=(10.0,))
    assert rec["first_better"] == {"cvar_95": True, "max_drawdown": True,
                                   "utility_gamma_10": True}
    assert rec["second"]["max_drawdown"] == pytest.approx(0.04)
    assert rec["second"]["cvar_95"] == pytest.approx(96.0 / 98.0 - 1)
    # a span shorter than a day has no daily return: CVaR and utility are not judged
    (short,) = judge(up, down, [(0, 4)], gammas=(10.0,))
    assert short["first_better"] == {"cvar_95": None, "max_drawdown": True,
                                     "utility_gamma_10": None}
