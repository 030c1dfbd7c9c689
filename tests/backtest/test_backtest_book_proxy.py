"""The book's proxy-hedged variant (``backtest.book.proxy_effectiveness``) on hand-made bars."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from cascade_ml.backtest.book import BookData, run_book, run_proxy_book
from cascade_ml.backtest.config import BacktestConfig, BookConfig
from cascade_ml.backtest.data import align
from cascade_ml.backtest.engine import Market
from cascade_ml.policy import PolicyConfig
from cascade_ml.trading.config import TradingConfig

N = 120
CFG = PolicyConfig()  # min_cross_hedge_r2 0.80, same_perp_effectiveness 1.0
assert CFG.min_cross_hedge_r2 == 0.80 and CFG.same_perp_effectiveness == 1.0


def _bars(rets: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    close = 100 * np.exp(np.cumsum(rets))
    open_ = np.r_[100.0, close[:-1]]
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.001,
                         "low": np.minimum(open_, close) * 0.999, "close": close,
                         "volume": 1.0}, index=index)


def _book() -> BookData:
    """ALT (BTC beta 1.2, R^2 0.85: passes 0.80), LOW (R^2 0.79: just under it) and BTC (its
    ETH R^2 0.9 would pick ETH were BTC's policy changed), with ETH as a price row only."""
    idx = pd.date_range("2026-01-01", periods=N, freq="1h", tz="UTC", name="timestamp")
    rng = np.random.default_rng(7)
    btc_r = rng.normal(0, 0.004, N)
    eth_r = btc_r + rng.normal(0, 0.001, N)
    prices = {"ALT": _bars(1.2 * btc_r + rng.normal(0, 0.002, N), idx),
              "LOW": _bars(1.1 * btc_r + rng.normal(0, 0.003, N), idx),
              "BTC": _bars(btc_r, idx), "ETH": _bars(eth_r, idx)}
    preds = pd.DataFrame({"fold": 0, "vol_forecast": 0.02, "cascade_prob": 0.02}, index=idx)
    nan = np.full(N, np.nan)
    cross = {"ALT": (1.2, 0.85, nan, nan), "LOW": (1.1, 0.79, nan, nan),
             "BTC": (nan, nan, 1.0, 0.9)}
    data = {}
    for s, (bb, rb, be, re) in cross.items():
        d = align(prices[s], preds, horizon=24, vol_window=24)
        data[s] = dataclasses.replace(d, cross={
            "beta_btc": np.full(N, bb), "r2_btc": np.full(N, rb),
            "beta_eth": np.full(N, be), "r2_eth": np.full(N, re)})
    names = [*cross, "ETH"]
    rows = {k: np.vstack([prices[s][k].to_numpy(float) for s in names])
            for k in ("open", "high", "low", "close")}
    market = Market(names, rows["open"], rows["high"], rows["low"], rows["close"],
                    np.zeros((len(names), N)), tiers=[CFG.tiers_for(s) for s in names])
    return BookData(list(cross), data, market)


def _bt(eff: float | None) -> BacktestConfig:
    return BacktestConfig(book=BookConfig(strategies=["unhedged", "model_policy"],
                                          proxy_effectiveness=eff))


def test_the_variant_hedges_through_btc_what_passes_min_cross_hedge_r2() -> None:
    book = _book()
    same = run_book(book, _bt(0.0), CFG, "long", trading=TradingConfig())["model_policy"]
    proxy = run_proxy_book(book, _bt(0.0), CFG, "long", trading=TradingConfig())
    assert proxy is not None
    run = proxy["model_policy"]
    alt = run.positions["ALT"].instrument
    hedged = alt >= 0
    assert hedged.mean() > 0.9  # the policy hedges (30-70 % band) on nearly every bar
    assert np.all(alt[hedged] == book.market.names.index("BTC"))  # row 2: BTC, never ALT
    assert run.position_metrics["ALT"]["proxy_share"] == pytest.approx(hedged.mean())
    assert np.isfinite(run.position_metrics["ALT"]["proxy_basis_vol"])
    # R^2 0.79 < 0.80: LOW keeps its own perp; BTC keeps the policy as configured (no ETH)
    for s in ("LOW", "BTC"):
        held = run.positions[s].instrument
        assert set(np.unique(held)) <= {-1, book.market.names.index(s)}
        assert run.position_metrics[s]["proxy_share"] == 0.0
    assert run.metrics["proxy_positions"] == 1.0
    assert run.metrics["proxy_share"] == pytest.approx(hedged.mean() / 3)
    # the same-perp book of the same config never picks a proxy (effectiveness 1.0 wins)
    assert same.metrics["proxy_share"] == 0.0
    assert "proxy_positions" not in same.metrics


def test_a_proxy_whose_r2_falls_below_the_minimum_is_left_at_that_bar() -> None:
    """ALT's BTC R^2 0.85 to bar 59, then 0.79 (just under 0.80): the hedge ratio's target
    does not move (flat forecasts), yet the hedge leaves BTC for ALT itself at bar 60."""
    book = _book()
    book.data["ALT"].cross["r2_btc"][60:] = 0.79
    run = run_proxy_book(book, _bt(0.0), CFG, "long", trading=TradingConfig())
    assert run is not None
    mp = run["model_policy"]
    alt = mp.positions["ALT"].instrument
    btc, own = book.market.names.index("BTC"), book.market.names.index("ALT")
    assert alt[59] == btc and alt[60] == own
    assert set(np.unique(alt[60:])) <= {-1, own}
    assert (mp.position_metrics["ALT"]["instrument_switches"],
            mp.position_metrics["ALT"]["forced_switches"]) == (1.0, 1.0)
    assert (mp.metrics["instrument_switches"], mp.metrics["forced_switches"]) == (1.0, 1.0)


def test_effectiveness_just_above_the_proxy_r2_keeps_the_same_perp() -> None:
    """ALT's proxy R^2 0.85 must exceed the same perp's effectiveness: at 0.86 it does not."""
    run = run_proxy_book(_book(), _bt(0.86), CFG, "long", trading=TradingConfig())
    assert run is not None
    assert run["model_policy"].metrics["proxy_share"] == 0.0
    assert run["model_policy"].metrics["proxy_positions"] == 0.0


def test_no_variant_by_default_and_it_needs_proxy_hedges() -> None:
    assert BookConfig().proxy_effectiveness is None
    assert run_proxy_book(_book(), _bt(None), CFG, "long", trading=TradingConfig()) is None
    with pytest.raises(ValidationError, match="proxy_hedges"):
        BookConfig(proxy_effectiveness=0.5, proxy_hedges=False)
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        BookConfig(proxy_effectiveness=1.01)
