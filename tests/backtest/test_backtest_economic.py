"""Economic value: BHHP realised utility, the FKO performance fee, oracle capture and the
day-aligned bootstrap, against values solved by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.backtest.economic import (
    capture_share,
    economic_spans,
    economic_value,
    fee_bp_per_year,
    performance_fee,
    quadratic_utility,
    resample_aligned,
)
from cascade_ml.models.metrics import non_overlapping, realised_utility, utility_share


def test_utility_share_by_hand() -> None:
    rv = np.array([1.0, 1.0, 4.0, 2.0])
    # F = RV: 2 - 1 = 1; F = 4 RV: 2 * 0.5 - 0.25 = 0.75; F = RV / 4: 2 * 2 - 4 = 0
    u = utility_share(rv, np.array([1.0, 4.0, 1.0, 2.0]))
    assert u == pytest.approx([1.0, 0.75, 0.0, 1.0])
    assert realised_utility(rv[:2], np.array([1.0, 4.0])) == pytest.approx(0.875)
    # a missing forecast makes the mean missing (never silently other windows)
    assert np.isnan(realised_utility(rv[:2], np.array([1.0, np.nan])))
    assert np.isnan(utility_share(np.array([1.0]), np.array([0.0]))[0])


def test_non_overlapping_windows_are_at_least_h_bars_apart() -> None:
    t = pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC")
    assert list(non_overlapping(t, 4)) == [0, 4, 8]
    # a hole (bars 4-5 missing) and a fold gap only stretch the spacing
    hours = np.array([0, 1, 2, 3, 6, 7, 8, 9, 10, 30])
    times = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(hours, "h")
    assert list(hours[non_overlapping(times, 3)]) == [0, 3, 6, 9, 30]
    # unsorted input: positions refer to the input order
    assert list(non_overlapping(t[::-1], 5)) == [9, 4]


def test_fee_is_zero_for_identical_series() -> None:
    r = np.random.default_rng(0).normal(0, 0.02, 200)
    for gamma in (1.0, 10.0):
        assert performance_fee(r, r, gamma) == pytest.approx(0.0, abs=1e-15)


def test_fee_two_period_example_solved_by_hand() -> None:
    # gamma 1: a = 1/4. Old gross returns (1, 1): U0 = 1 - 1/4 = 0.75. New (1.02, 1):
    # 0.25 D^2 + (1 - 0.5 * 1.01) D + (0.75 - (1.01 - 0.25 * 1.0202)) = 0
    # <=> D^2 + 1.98 D - 0.0198 = 0 => D = (-1.98 + sqrt(3.9996)) / 2 = 0.00995 (to 1e-8)
    new, old = np.array([0.02, 0.0]), np.array([0.0, 0.0])
    assert performance_fee(new, old, 1.0) == pytest.approx(0.00995, abs=1e-8)
    # risk neutral (gamma 0): the difference of the mean returns, 0.01
    assert performance_fee(new, old, 0.0) == pytest.approx(0.01, abs=1e-15)
    # switching the other way costs a negative fee; more risk aversion charges the variance
    assert performance_fee(old, new, 1.0) < 0
    assert performance_fee(new, old, 10.0) < performance_fee(new, old, 1.0)
    # 1 bp a day is 365 bp a year
    assert fee_bp_per_year(0.0001) == pytest.approx(365.0)


def test_quadratic_utility_by_hand() -> None:
    # gamma 1, returns (0.02, 0): mean of (1.02 - 1.0404 / 4, 1 - 1 / 4) = 0.75495
    assert quadratic_utility(np.array([0.02, 0.0]), 1.0) == pytest.approx(0.75495)
    with pytest.raises(ValueError, match="risk aversion"):
        quadratic_utility(np.zeros(2), -1.0)


def test_capture_share_and_its_degenerate_cases() -> None:
    assert capture_share(0.4, 0.0, 1.0)["share"] == pytest.approx(0.4)
    # lower is better (e.g. drawdown): static 0.30, oracle 0.20, feed 0.27 -> 30 %
    assert capture_share(0.27, 0.30, 0.20, higher_is_better=False)["share"] == pytest.approx(0.3)
    same = capture_share(0.5, 0.3, 0.3)
    assert same["share"] is None and "equals" in same["status"]
    worse = capture_share(0.25, 0.3, 0.2)
    assert worse["share"] is None and "worse" in worse["status"]
    assert capture_share(np.nan, 0.3, 0.5)["share"] is None


def test_oracle_capture_against_each_policys_same_size_static_by_hand() -> None:
    from cascade_ml.backtest.economic import oracle_capture

    # constant daily returns: CVaR 95 is the return itself, so the shares are plain ratios
    idx = pd.date_range("2024-01-01", periods=40, freq="D", tz="UTC")
    ret = {"model_policy": 0.002, "har_policy": 0.0005, "oracle_policy": 0.004,
           "static_matched": 0.003, "static_sized": 0.001, "static_sized_har": 0.001,
           "static_sized_oracle": 0.0}
    frame = pd.DataFrame({f"ret:{k}": v for k, v in ret.items()}, index=idx)
    same = oracle_capture({"A": frame}, idx, (1.0,), same_size=True)
    # (feed - its own static) / (oracle - the oracle's own static): model (0.002 - 0.001) /
    # (0.004 - 0) = 0.25; HAR (0.0005 - 0.001) / 0.004 = -0.125
    assert same["cvar_95"]["model_policy"]["share"] == pytest.approx(0.25)
    assert same["cvar_95"]["har_policy"]["share"] == pytest.approx(-0.125)
    assert same["cvar_95"]["model_policy"]["oracle_static"] == pytest.approx(0.0)

    def u(r: float) -> float:  # gamma 1: R - R^2 / 4 on the gross return
        return (1 + r) - (1 + r) ** 2 / 4

    assert same["utility_gamma_1"]["model_policy"]["share"] == pytest.approx(
        (u(0.002) - u(0.001)) / (u(0.004) - u(0.0)))
    assert same["cells"] == 40 and "same-size" in same["static"]
    # the equal-cost figure stays one static for every feed: (0.002 - 0.003) / (0.004 - 0.003)
    eq = oracle_capture({"A": frame}, idx, (1.0,))
    assert eq["static"] == "static_matched"
    assert eq["cvar_95"]["model_policy"]["share"] == pytest.approx(-1.0)
    # no same-size static for the oracle: said so, not computed
    bare = oracle_capture({"A": frame.drop(columns="ret:static_sized_oracle")}, idx, (1.0,),
                          same_size=True)
    assert bare["status"].startswith("n/a") and "static_sized_oracle" in bare["status"]


def test_bootstrap_keeps_days_aligned_across_symbols() -> None:
    days, symbols = 300, 4
    # symbol k's value on day d is 1000 k + d: an aligned draw shows the same d in every column
    panel = np.arange(days)[:, None] + 1000 * np.arange(symbols)[None, :]
    n = 0
    for draw in resample_aligned(panel, reps=50, block=7, seed=1):
        day = draw - 1000 * np.arange(symbols)[None, :]
        assert (day == day[:, :1]).all()
        n += 1
        # blocks: most consecutive draws are consecutive days
        assert np.mean(np.diff(day[:, 0]) == 1) > 0.7
    assert n == 50


def _frame(ret_model, ret_har, u_model, u_har, start="2024-01-01", final_from=None) -> pd.DataFrame:
    idx = pd.date_range(start, periods=len(ret_model), freq="D", tz="UTC")
    f = pd.DataFrame({"ret:model_policy": ret_model, "ret:har_policy": ret_har,
                      "util:model": u_model, "util:har": u_har, "util:oracle": 1.0},
                     index=idx)
    f["final"] = np.arange(len(f)) >= (final_from if final_from is not None else len(f))
    return f


def test_economic_value_of_identical_feeds_is_zero_with_an_interval_around_it() -> None:
    rng = np.random.default_rng(2)
    frames = {s: _frame(r, r, u, u) for s, r, u in
              (("A", rng.normal(0, 0.02, 200), rng.uniform(0.6, 1, 200)),
               ("B", rng.normal(0, 0.03, 200), rng.uniform(0.6, 1, 200)))}
    ev = economic_value(frames, reps=200, seed=0)
    fee = ev["performance_fee_bp_per_year"]
    for key in ("gamma_1", "gamma_10"):
        assert fee[key]["value"] == pytest.approx(0.0, abs=1e-9)
        assert fee[key]["ci_low"] <= 0 <= fee[key]["ci_high"]
    assert ev["realised_utility"]["model_minus_har"]["value"] == 0
    assert ev["realised_utility"]["oracle"] == 1.0
    assert ev["symbols"] == ["A", "B"] and ev["realised_utility"]["windows"] == 400
    assert "not distinguishable" in ev["verdict"]


def test_pooled_fee_and_utility_match_hand_values_and_flag_a_clear_gain() -> None:
    rng = np.random.default_rng(3)
    har = {s: rng.normal(0, 0.02, 250) for s in "AB"}
    # the model-fed policy earns 2 bp more every day on both perps: fee ~ 730 bp/yr at gamma 0
    frames = {s: _frame(r + 0.0002, r, np.full(250, 0.9), np.full(250, 0.8)) for s, r in
              har.items()}
    ev = economic_value(frames, gammas=(0.0, 1.0), reps=200, seed=0)
    fee = ev["performance_fee_bp_per_year"]
    assert fee["gamma_0"]["value"] == pytest.approx(0.0002 * 365 * 1e4)
    pooled_new = np.concatenate([r + 0.0002 for r in har.values()])
    pooled_old = np.concatenate(list(har.values()))
    # gamma 1: a = 1 / (2 x 2) = 1/4; the fee D solves mean[(R1 - D) - a (R1 - D)^2] =
    # mean[R0 - a R0^2] on the pooled gross returns: a D^2 + (1 - 2 a m1) D + (u0 - u1) = 0,
    # the root nearer zero (b > 0 here)
    g1, g0 = 1.0 + pooled_new, 1.0 + pooled_old
    u1, u0 = np.mean(g1 - 0.25 * g1 ** 2), np.mean(g0 - 0.25 * g0 ** 2)
    b = 1.0 - 0.5 * np.mean(g1)
    by_hand = (-b + np.sqrt(b * b - 4 * 0.25 * (u0 - u1))) / (2 * 0.25)
    assert 0 < by_hand < 0.0002  # below the risk-neutral 2 bp: the variance is charged
    assert fee["gamma_1"]["value"] == pytest.approx(by_hand * 365 * 1e4, rel=1e-9)
    assert fee["gamma_1"]["model_better"] and not fee["gamma_1"]["har_better"]
    assert ev["realised_utility"]["model_minus_har"]["value"] == pytest.approx(0.1)
    assert ev["realised_utility"]["model"] == pytest.approx(0.9)
    assert ev["realised_utility"]["model_minus_har"]["model_better"]


def test_symbols_on_different_days_are_pooled_on_one_calendar() -> None:
    rng = np.random.default_rng(4)
    a = _frame(rng.normal(0, 0.01, 100), rng.normal(0, 0.01, 100), np.full(100, 0.9),
               np.full(100, 0.7))
    b = _frame(rng.normal(0, 0.01, 60), rng.normal(0, 0.01, 60), np.full(60, 0.6),
               np.full(60, 0.7), start="2024-03-01")
    ev = economic_value({"A": a, "B": b}, reps=100, seed=0)
    # 100 + 60 windows, weighted equally: (100 * 0.2 - 60 * 0.1) / 160
    assert ev["realised_utility"]["windows"] == 160
    assert ev["realised_utility"]["model_minus_har"]["value"] == pytest.approx(14 / 160)
    assert ev["days"] == len(a.index.union(b.index))


def test_spans_score_the_final_period_alone() -> None:
    rng = np.random.default_rng(5)
    r = rng.normal(0, 0.02, 200)
    u_model = np.r_[np.full(150, 0.9), np.full(50, 0.5)]
    spans = economic_spans({"A": _frame(r, r, u_model, np.full(200, 0.7), final_from=150)},
                           reps=100)
    assert spans["all"]["realised_utility"]["model_minus_har"]["value"] == pytest.approx(
        (150 * 0.2 - 50 * 0.2) / 200)
    assert spans["final"]["realised_utility"]["model_minus_har"]["value"] == pytest.approx(-0.2)


def test_too_few_days_say_so() -> None:
    f = _frame(np.zeros(5), np.zeros(5), np.ones(5), np.ones(5))
    assert economic_value({"A": f}, reps=50)["verdict"] == "too few days for the economic value"


# --- on the real NEAR slice (tests/backtest/conftest.py): the windows and the JSON ---------

@pytest.fixture(scope="module")
def near_runs(near_ohlcv, near_funding, trailing_preds, labels):
    from cascade_ml.backtest.config import BacktestConfig
    from cascade_ml.backtest.data import align
    from cascade_ml.backtest.simulate_all import run_strategies
    from cascade_ml.policy import PolicyConfig
    from cascade_ml.trading.config import TradingConfig

    data = align(near_ohlcv, trailing_preds, horizon=24, funding=near_funding, labels=labels)
    bt = BacktestConfig(bootstrap_reps=100)
    return data, bt, run_strategies(data, bt, PolicyConfig(), "NEAR", "long",
                                     trading=TradingConfig())


def test_frame_reads_non_overlapping_days_of_the_inputs(near_runs, trailing_preds,
                                                        labels) -> None:
    from cascade_ml.backtest.economic import economic_frame

    data, _, runs = near_runs
    frame = economic_frame(runs, data, horizon=24)
    u = frame["util:model"].dropna()
    assert (np.diff(u.index.asi8) >= 24 * 3600 * 10**9).all()  # windows never overlap
    assert (frame["util:oracle"].dropna() == 1.0).all()
    # the model's utility recomputed from the prediction and label tables by hand
    t = u.index[10]
    ratio = labels.loc[t, "fwd_rv"] / trailing_preds.loc[t, "var_forecast"]
    assert u.iloc[10] == pytest.approx(2 * np.sqrt(ratio) - ratio)
    har = labels.loc[t, "fwd_rv"] / trailing_preds.loc[t, "var_har"]
    assert frame.loc[t, "util:har"] == pytest.approx(2 * np.sqrt(har) - har)
    # the daily return of a strategy is its equity 24 bars later over its equity now
    eq, k = runs["model_policy"].result.equity, 5
    assert frame["ret:model_policy"].iloc[k] == pytest.approx(eq[24 * (k + 1)] / eq[24 * k] - 1)
    assert frame["final"].iloc[-1] and not frame["final"].iloc[0]
    assert frame.loc[frame["final"]].index[0] >= pd.Timestamp("2025-11-01", tz="UTC")


def test_records_carry_the_economic_value_beside_todays_keys(near_runs, tmp_path) -> None:
    from cascade_ml.backtest.economic import economic_frame
    from cascade_ml.backtest.run import (
        economic_values,
        forecast_values,
        records,
        universe_economic_value,
    )

    data, bt, runs = near_runs
    frame = economic_frame(runs, data, horizon=24)
    ev = economic_values({"NEAR": frame}, bt)
    rows = records(runs, data, "NEAR", 24, None, forecast_values(runs, data, bt), ev)
    mp = next(r for r in rows if r["strategy"] == "model_policy")
    assert {"forecast_value", "targets", "cvar_95", "calmar"} <= set(mp)
    for span in ("all", "final"):
        block = mp["economic_value"][span]
        fee = block["performance_fee_bp_per_year"]["gamma_1"]
        assert fee["ci_low"] <= fee["value"] <= fee["ci_high"]
        assert set(block["realised_utility"]) >= {"model", "har", "ewma", "oracle",
                                                  "model_minus_har"}
        cap = block["oracle_gain_capture"]
        assert cap["static"] == "static_matched"
        assert set(cap["cvar_95"]) == {"model_policy", "har_policy", "ewma_policy"}
        # beside it, against each feed's same-size static (the defaults run model's and HAR's)
        same = block["oracle_gain_capture_same_size"]
        assert set(same["cvar_95"]) == {"model_policy", "har_policy"}
    # pooled: two perps (the same path under two names), one left out, JSON written
    doc = universe_economic_value({"NEAR": frame, "COPY": frame}, bt, ["COPY"],
                                  tmp_path / "ev.json")
    assert set(doc) == {"universe", "core", "left_out"}
    assert doc["universe"]["all"]["realised_utility"]["windows"] == \
        2 * doc["core"]["all"]["realised_utility"]["windows"]
    assert doc["universe"]["all"]["performance_fee_bp_per_year"]["gamma_10"]["value"] == \
        pytest.approx(doc["core"]["all"]["performance_fee_bp_per_year"]["gamma_10"]["value"])
    assert (tmp_path / "ev.json").stat().st_size > 500


def test_html_report_shows_the_economic_value(near_runs, tmp_path) -> None:
    from cascade_ml.backtest.economic import economic_frame
    from cascade_ml.backtest.regimes import period_tables
    from cascade_ml.backtest.report import write_report
    from cascade_ml.backtest.run import economic_values, forecast_values, records
    from cascade_ml.policy import PolicyConfig
    from cascade_ml.trading.config import TradingConfig

    data, bt, runs = near_runs
    periods = period_tables(runs, data, bt.periods)
    fv = forecast_values(runs, data, bt)
    ev = economic_values({"NEAR": economic_frame(runs, data, horizon=24)}, bt)
    rows = records(runs, data, "NEAR", 24, periods, fv, ev)
    page = write_report(tmp_path / "r.html", "NEAR", rows, periods, fv, [], data, bt,
                        TradingConfig(), PolicyConfig()).read_text()
    assert "Economic value (final)" in page and "fee HAR -&gt; model, bp/yr, gamma 10" in page
