"""The book: one account, several positions, proxy hedges with their basis risk."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cascade_ml.backtest.book import BookData, run_book
from cascade_ml.backtest.config import BacktestConfig, BookConfig
from cascade_ml.backtest.data import align
from cascade_ml.backtest.engine import Market
from cascade_ml.backtest.simulate_all import run_strategies
from cascade_ml.policy import PolicyConfig
from cascade_ml.trading.config import TradingConfig

CFG = PolicyConfig()


@pytest.fixture(scope="module")
def near(near_ohlcv, near_funding, trailing_preds, labels):
    return align(near_ohlcv, trailing_preds, horizon=24, funding=near_funding, labels=labels)


def _book(datas: dict, extra: dict | None = None, policy: PolicyConfig = CFG) -> BookData:
    """A book over ``datas`` (symbol -> BacktestData on one index) plus extra price rows."""
    rows = {k: [getattr(d, k) for d in datas.values()] for k in
            ("open", "high", "low", "close", "funding_rate")}
    names = list(datas)
    for name, frame in (extra or {}).items():
        for k in rows:
            rows[k].append(np.zeros(len(frame)) if k == "funding_rate"
                           else frame[k].to_numpy(float))
        names.append(name)
    market = Market(names, *(np.vstack(rows[k]) for k in rows),
                    tiers=[policy.tiers_for(n) for n in names])
    return BookData(list(datas), datas, market)


def test_a_book_of_one_is_the_single_perp_backtest(near) -> None:
    bt = BacktestConfig(book=BookConfig(strategies=["unhedged", "model_policy", "har_policy"]),
                        strategies=["unhedged", "model_policy", "har_policy"])
    book = run_book(_book({"NEAR": near}), bt, CFG, "long", trading=TradingConfig())
    single = run_strategies(near, bt, CFG, "NEAR", "long", trading=TradingConfig())
    for name in ("unhedged", "model_policy", "har_policy"):
        np.testing.assert_allclose(book[name].result.equity, single[name].result.equity)


def test_two_positions_share_the_account_and_the_pnl_adds_up(near) -> None:
    twin = dataclasses.replace(near)  # an identical perp under another name (generic tiers)
    bt = BacktestConfig(book=BookConfig(strategies=["unhedged", "model_policy",
                                                    "static_matched"]))
    runs = run_book(_book({"NEAR": near, "TWIN": twin}), bt, CFG, "long",
                    trading=TradingConfig())
    for run in runs.values():
        pnl = sum(r.pnl[-1] for r in run.positions.values())
        assert run.result.equity[-1] - 10_000.0 == pytest.approx(pnl)  # the starting equity
    # each position opens on half of the margin share: 5x of 10,000 x 50 % / 2
    for r in runs["unhedged"].positions.values():
        # net of the open's own fee (0.06 % of N): N = 5 x (2,500 - 0.0006 N)
        assert r.notional[0] == pytest.approx(5 * 10_000 * 0.5 / 2 / (1 + 5 * 0.0006))
    # the policy's size cap is on each position's slice of the book (half of it here): each
    # position loses at most 2 % of its slice on the adverse move (its own loss per notional)
    model = runs["model_policy"]
    assert model.metrics["mean_exposure"] < runs["unhedged"].metrics["mean_exposure"]
    assert set(model.position_metrics) == {"NEAR", "TWIN"}


def test_proxy_hedge_in_the_book_reports_its_basis_risk(near, btc_ohlcv) -> None:
    n = len(near.index)
    near = dataclasses.replace(near, cross={
        "beta_btc": np.full(n, 1.3), "r2_btc": np.full(n, 0.7),
        "beta_eth": np.full(n, np.nan), "r2_eth": np.full(n, np.nan)})
    policy = PolicyConfig(same_perp_effectiveness=0.5, min_cross_hedge_r2=0.5)
    btc = btc_ohlcv.reindex(near.index).ffill()
    bt = BacktestConfig(book=BookConfig(strategies=["unhedged", "model_policy"]))
    runs = run_book(_book({"NEAR": near}, {"BTC": btc}, policy), bt, policy, "long",
                    trading=TradingConfig())
    pos = runs["model_policy"].position_metrics["NEAR"]
    assert pos["proxy_share"] > 0.5
    # basis risk: NEAR moves that BTC does not explain
    assert 0.1 < pos["proxy_basis_vol"] < 3.0
    assert pos["proxy_realised_r2"] < 0.9
    held = runs["model_policy"].positions["NEAR"].instrument
    assert set(np.unique(held)) <= {-1, 0, 1}  # none, same perp (row 0), BTC (row 1)
