"""The universe backtest: the capped unhedged benchmark, the pooled bootstrap across perps, and
`cascade-ml backtest --pipeline P --json J` over a small universe of real perps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cascade_ml.backtest.economic import economic_value
from cascade_ml.backtest.engine import simulate
from cascade_ml.backtest.strategies import Plan, without_hedge
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.policy import PolicyConfig

CLI = [sys.executable, "-c", "from cascade_ml.cli.main import main; main()"]
FREE = PolicyConfig(taker_fee=0.0, maker_fee=0.0, spread=0.0)  # no costs: numbers by hand


def _sim(plan: Plan, close: np.ndarray):
    n = len(close)
    return simulate(close, close, close, close, np.zeros(n), plan.target_leverage,
                    plan.target_hedge, plan.sigma_h, plan.cascade_prob, side="long",
                    tiers=FREE.default_tiers, policy=FREE, initial_equity=10_000.0,
                    margin_fraction=0.5, **plan.engine)


def test_capped_unhedged_is_the_policys_capped_position_without_its_hedge() -> None:
    # the policy wants 5x on a 5,000 margin (25,000) with a 60 % hedge, but its size cap allows
    # 2 % of equity lost on the adverse move: loss per notional (1 - 0.6) x 10 % = 0.04, so
    # 0.02 x 10,000 / 0.04 = 5,000 of notional. Price then rises 10 %.
    close = np.array([100.0, 110.0, 110.0])
    n = len(close)
    plan = Plan(np.full(n, 5.0), np.full(n, 0.6), np.full(n, 0.05), np.full(n, 0.1),
                {"loss_per_notional": np.full(n, 0.04), "stops": False})
    hedged, capped = _sim(plan, close), _sim(without_hedge(plan), close)
    # the same 5,000 main leg; no hedge
    assert capped.notional[0] == pytest.approx(5_000.0)
    assert hedged.notional[0] == pytest.approx(5_000.0)
    assert (capped.hedge == 0).all() and hedged.hedge[0] == pytest.approx(0.6)
    # +10 %: the capped unhedged position gains 500, the hedged one 500 - 0.6 x 500 = 200
    assert capped.equity[1] == pytest.approx(10_500.0)
    assert hedged.equity[1] == pytest.approx(10_200.0)
    # at that close each is cut back to its own cap: 0.02 x equity / 0.04
    assert capped.notional[1] == pytest.approx(0.02 * 10_500 / 0.04)
    assert hedged.notional[1] == pytest.approx(0.02 * 10_200 / 0.04)
    # without the size cap the same targets hold the bot's full 5x (25,000)
    uncapped = Plan(plan.target_leverage, np.zeros(n), plan.sigma_h, plan.cascade_prob,
                    {"stops": False})
    assert _sim(uncapped, close).notional[0] == pytest.approx(25_000.0)


def test_capped_unhedged_strategy_is_the_model_policy_plan_with_hedge_zero(
        near_ohlcv, near_funding, trailing_preds, labels) -> None:
    from cascade_ml.backtest.config import BacktestConfig
    from cascade_ml.backtest.data import align
    from cascade_ml.backtest.simulate_all import run_strategies
    from cascade_ml.backtest.strategies import strategy_plan
    from cascade_ml.trading.config import TradingConfig

    data = align(near_ohlcv, trailing_preds, horizon=24, funding=near_funding, labels=labels)
    args = (data.signals, BacktestConfig(), TradingConfig(), PolicyConfig(),
            PolicyConfig().tiers_for("NEAR"), 25_000.0, "long")
    kw = {"feeds": data.feeds, "trailing_vol_annual": data.trailing_vol_annual,
          "cross": data.cross}
    mp = strategy_plan("model_policy", *args, **kw)
    cu = strategy_plan("capped_unhedged", *args, **kw)
    assert (cu.target_hedge == 0).all() and mp.target_hedge.max() >= 0.3
    np.testing.assert_array_equal(cu.target_leverage, mp.target_leverage)
    np.testing.assert_array_equal(cu.engine["loss_per_notional"],
                                  mp.engine["loss_per_notional"])
    bt = BacktestConfig(strategies=["unhedged", "capped_unhedged", "model_policy"])
    runs = run_strategies(data, bt, PolicyConfig(), "NEAR", "long", trading=TradingConfig())
    c = runs["capped_unhedged"].metrics
    # against itself: capture 1 and vol ratio 1; against the full-size bot it moves far less
    assert c["upside_capture_capped"] == pytest.approx(1.0)
    assert c["vol_ratio_capped"] == pytest.approx(1.0)
    assert c["mean_hedge"] == 0.0 and c["upside_capture"] < 0.5
    m = runs["model_policy"].metrics
    assert m["vol_ratio_capped"] < 1.0  # the hedge removes volatility from the same position


def _frame(model, har, u_model, u_har) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(model), freq="D", tz="UTC")
    f = pd.DataFrame({"ret:model_policy": model, "ret:har_policy": har,
                      "util:model": u_model, "util:har": u_har}, index=idx)
    f["final"] = False
    return f


def test_pooled_bootstrap_draws_the_same_days_for_every_perp() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(0, 0.02, 300), rng.normal(0, 0.03, 300)
    u, v = rng.uniform(0.5, 1.0, 300), rng.uniform(0.5, 1.0, 300)
    # perp B is perp A with model and HAR swapped: on every day their differences cancel, so
    # any resample that takes the same days for both perps gives exactly zero; a resample
    # drawing each perp's days on its own would not
    pooled = economic_value({"A": _frame(x, y, u, v), "B": _frame(y, x, v, u)}, reps=200,
                            block_days=5, seed=3)
    ut = pooled["realised_utility"]["model_minus_har"]
    assert ut["value"] == pytest.approx(0.0, abs=1e-12)
    assert ut["ci_low"] == pytest.approx(0.0, abs=1e-12)
    assert ut["ci_high"] == pytest.approx(0.0, abs=1e-12)
    fee = pooled["performance_fee_bp_per_year"]["gamma_10"]
    assert fee["ci_low"] == pytest.approx(0.0, abs=1e-6)
    assert fee["ci_high"] == pytest.approx(0.0, abs=1e-6)
    # perp A alone: the same bootstrap gives an interval of real width
    alone = economic_value({"A": _frame(x, y, u, v)}, reps=200, block_days=5, seed=3)
    a = alone["realised_utility"]["model_minus_har"]
    assert a["ci_high"] - a["ci_low"] > 0.01


# --- the CLI over a universe of three real perps ------------------------------------------------

def _inputs(ohlcv: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trailing 'forecasts' and labels from the bars alone (as tests/backtest/conftest.py)."""
    r = np.log(ohlcv["close"]).diff()
    var24 = (r ** 2).rolling(168).mean() * 24
    dd = 1 - ohlcv["close"] / ohlcv["close"].rolling(24).max()
    preds = pd.DataFrame({"fold": 0, "var_forecast": var24, "vol_forecast": np.sqrt(var24),
                          "cascade_prob": (dd / 0.15).clip(0, 1) * 0.5 + 0.02,
                          "var_har": (r ** 2).rolling(720).mean() * 24,
                          "var_ewma": (r ** 2).ewm(halflife=24).mean() * 24,
                          "prob_climatology": 0.04}).loc["2025-09-01":"2025-12-01"]
    preds.loc["2025-11-01":, "fold"] = 1
    low = ohlcv["low"][::-1].rolling(24).min()[::-1].shift(-1)
    fwd_min = np.log(low / ohlcv["close"])
    fwd_rv = (r ** 2)[::-1].rolling(24).sum()[::-1].shift(-1)
    labels = pd.DataFrame({"cascade": (fwd_min < -0.08).astype(float).where(fwd_min.notna()),
                           "fwd_rv": fwd_rv})
    return preds.dropna(), labels


@pytest.fixture()
def universe_dir(tmp_path: Path, near_ohlcv, near_funding, btc_ohlcv) -> Path:
    store = MarketStore(tmp_path / "store")
    eth = pd.read_parquet(str(Path(__file__).resolve().parents[2] / "data" / "sample"
                              / "yagokhan-varanus-neo-flow-hybrid-extended" / "data"
                              / "ETHUSDT_1h.parquet"))[["open", "high", "low", "close", "volume"]]
    eth.index = pd.DatetimeIndex(eth.index).tz_convert("UTC").as_unit("ns").rename("timestamp")
    for sym, bars in (("NEAR", near_ohlcv), ("BTC", btc_ohlcv), ("ETH", eth.loc[
            near_ohlcv.index[0]:near_ohlcv.index[-1]])):
        store.write(PartitionKey("ohlcv", "binance", sym, "1h"), bars)
        preds, labels = _inputs(bars)
        store.write_table(f"predictions/symbol={sym}/h=24/oos.parquet", preds)
        store.write_table(f"labels/symbol={sym}/h=24/labels.parquet", labels)
    store.write(PartitionKey("funding", "binance", "NEAR", "8h"), near_funding)
    (tmp_path / "u.yaml").write_text(
        f"store:\n  root: {tmp_path / 'store'}\n"
        "task:\n  symbols: [NEAR, BTC, ETH]\n"
        "panel:\n  enabled: true\n  holdout_symbols: [ETH]\n"
        "compute:\n  mode: serial\n"
        "backtest:\n  bootstrap_reps: 50\n  proxy_hedges: false\n"
        "  frontier:\n    variants: [{}, {hedge_min: 0.4, hedge_max: 0.8}]\n"
        "  book:\n    strategies: [unhedged, capped_unhedged, model_policy]\n"
        "    proxy_hedges: false\n")
    return tmp_path


def test_universe_command_writes_per_symbol_pooled_and_economic_value(universe_dir) -> None:
    out = subprocess.run([*CLI, "backtest", "--pipeline", "u.yaml", "--json", "u.json",
                          "--report-dir", "rep", "--no-mlflow"], cwd=universe_dir,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    doc = json.loads((universe_dir / "u.json").read_text())
    assert doc["symbols"] == ["NEAR", "BTC", "ETH"] and doc["left_out"] == ["ETH"]
    # per symbol: today's records, one per strategy, with today's keys
    for sym, rows in doc["per_symbol"].items():
        by = {r["strategy"]: r for r in rows}
        assert {"unhedged", "capped_unhedged", "model_policy", "oracle_policy",
                "static_matched"} <= set(by)
        for key in ("total_return", "ann_vol", "max_drawdown", "cvar_95", "calmar",
                    "upside_capture", "downside_capture", "liquidations", "fees_paid",
                    "turnover", "periods"):
            assert key in by["model_policy"], (sym, key)
        assert by["model_policy"]["symbol"] == sym
        assert "economic_value" in by["model_policy"]
        # each feed's same-size static: its own main leg, the hedge at its policy's mean
        for name, feed in (("static_sized", "model_policy"), ("static_sized_har", "har_policy"),
                           ("static_sized_oracle", "oracle_policy")):
            assert by[name]["mean_hedge"] == pytest.approx(by[feed]["mean_hedge"], abs=0.02)
    # pooled: the universe, the core perps and the left-out perp apart
    assert set(doc["pooled"]) == {"universe", "core", "left_out"}
    pooled = {r["strategy"]: r for r in doc["pooled"]["universe"]}
    assert pooled["unhedged"]["upside_capture"] == pytest.approx(1.0)
    assert pooled["capped_unhedged"]["upside_capture_capped"] == pytest.approx(1.0)
    assert pooled["model_policy"]["symbols"] == 3
    assert pooled["static_sized_oracle"]["symbols"] == 3
    # per-perp counts: the equal-cost and the same-size static, both, named apart
    for pair in ("oracle_policy vs static_matched_oracle", "oracle_policy vs static_sized_oracle",
                 "model_policy vs static_sized", "har_policy vs static_sized_har"):
        block = doc["counts"]["universe"][pair]
        assert {"cvar_95", "max_drawdown", "utility_gamma_1", "utility_gamma_10"} <= set(block)
        assert block["cvar_95"]["of"] == 3
    assert {"cvar_sized_oracle", "maxdd_sized_oracle"} <= set(doc["perp_table"][0])
    fees = sum(next(r["fees_paid"] for r in rows if r["strategy"] == "model_policy")
               for rows in doc["per_symbol"].values())
    assert pooled["model_policy"]["fees_paid"] == pytest.approx(fees)
    assert pooled["model_policy"]["median_over_perps"]["cvar_95"] < 0
    # the economic value: pooled per group with intervals, and per perp
    ev = doc["economic_value"]
    assert set(ev["pooled"]) == {"universe", "core", "left_out"}
    fee = ev["pooled"]["universe"]["all"]["performance_fee_bp_per_year"]["gamma_1"]
    assert fee["ci_low"] <= fee["value"] <= fee["ci_high"]
    assert ev["pooled"]["universe"]["all"]["symbols"] == ["NEAR", "BTC", "ETH"]
    assert set(ev["per_symbol"]) == {"NEAR", "BTC", "ETH"}
    # the frontier: 11 static ratios and 2 variants x 4 feeds per perp, dominance per feed
    pts = doc["frontier"]["per_symbol"]["NEAR"]["points"]
    assert [p["ratio"] for p in pts if p["kind"] == "static"] == pytest.approx(
        [0.1 * k for k in range(11)])
    assert len([p for p in pts if p["kind"] == "policy"]) == 8
    dom = doc["frontier"]["pooled"]["over_every_perp"]["model"]["cvar_95_loss"]
    assert dom["points"] == 6
    # the one-book view: every perp on one account
    book = {r["strategy"]: r for r in doc["book"]}
    assert book["model_policy"]["symbols"] == ["NEAR", "BTC", "ETH"]
    assert set(book["model_policy"]["positions"]) == {"NEAR", "BTC", "ETH"}
    assert len(doc["perp_table"]) == 3
    # issue 16's target on development windows as long as the final period
    wt = doc["window_targets"]
    assert wt["target"] == {"pair": "oracle_policy vs static_matched_oracle", "share": 0.9}
    assert wt["same_size_target"] == {"pair": "oracle_policy vs static_sized_oracle",
                                      "share": 0.9}
    sized = wt["pooled"]["universe"]["oracle_policy vs static_sized_oracle"]
    assert sized["final_period"]["windows"] == 3 and sized["whole_span"]["windows"] == 3
    assert set(wt["pooled"]["left_out"]) >= {"oracle_policy vs static_sized_oracle",
                                             "model_policy vs static_sized"}
    block = wt["pooled"]["universe"]["oracle_policy vs static_matched_oracle"]
    assert block["final_period"]["windows"] == 3 and block["whole_span"]["windows"] == 3
    assert block["development_windows"]["windows"] >= 3  # two months of folds, one of final
    for sym, rows in doc["per_symbol"].items():
        by = {r["strategy"]: r for r in rows}
        final = by["oracle_policy"]["periods"]["final period"]
        w = wt["per_symbol"][sym]
        bars = (pd.Timestamp(final["end"]) - pd.Timestamp(final["start"])) // pd.Timedelta("1h")
        assert w["window_bars"] == bars + 1  # hourly bars, both ends included
        # every window ends before the final period starts and is as long as it
        for win in w["windows"]:
            span = pd.Timestamp(win["end"]) - pd.Timestamp(win["start"])
            assert span == pd.Timedelta(hours=bars)
            assert pd.Timestamp(win["end"]) < pd.Timestamp(final["start"])
        # the final period judged here is the period table's (same slice, same metrics)
        (rec,) = w["pairs"]["oracle_policy vs static_matched_oracle"]["final"]
        assert rec["first"]["cvar_95"] == pytest.approx(final["cvar_95"])
        assert rec["first"]["max_drawdown"] == pytest.approx(final["max_drawdown"])
        (rec,) = w["pairs"]["oracle_policy vs static_sized_oracle"]["final"]
        sized_final = by["static_sized_oracle"]["periods"]["final period"]
        assert rec["second"]["cvar_95"] == pytest.approx(sized_final["cvar_95"])
        assert rec["second"]["max_drawdown"] == pytest.approx(sized_final["max_drawdown"])
    same = ev["pooled"]["universe"]["all"]["oracle_gain_capture_same_size"]
    assert set(same["utility_gamma_1"]) == {"model_policy", "har_policy"}
    assert "oracle_policy vs static_matched_oracle, won: development windows" in out.stdout
    assert "oracle_policy vs static_sized_oracle, won: development windows" in out.stdout
    assert "share of the oracle's gain over each policy's same-size static" in out.stdout
    assert "pooled over left_out" in out.stdout and "ETH*" in out.stdout
    page = (universe_dir / "rep" / "UNIVERSE_report.html").read_text()
    assert "Efficiency frontier" in page and "data:image/png;base64," in page
