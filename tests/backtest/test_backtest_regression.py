"""The engine's numbers before and after the speed work of issue 16, on real NEAR and BTC bars.

Not hand-computed: ``fixtures/engine_regression.json`` was written by :func:`cases` running on
the engine as it was before the speed-up (commit 5e8d799, the liquidation fix included), and
this test checks that today's engine gives the same numbers to 1e-9. The aim of that work was
identical results, so the old engine's output is the reference here. The plans are fixed
arrays (no policy decisions), so the fixture does not move when the policy's rules change;
they reach every branch of a bar: re-levering, hedge moves, stops and their cooldown, the
size cap, fail-safe bars, NaN targets, a BTC proxy leg, liquidations (10x), long and short.

Regenerate (only on purpose, with the engine whose numbers are the reference):
``PYTHONPATH=src python tests/backtest/test_backtest_regression.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cascade_ml.backtest.engine import Market, simulate
from cascade_ml.policy.config import GENERIC_TIERS, NEAR_TIERS, PolicyConfig

FIXTURE = Path(__file__).parent / "fixtures" / "engine_regression.json"
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / \
    "yagokhan-varanus-neo-flow-hybrid-extended" / "data"
POLICY = PolicyConfig(taker_fee=0.0005, spread=0.0002, no_trade_band=0.05,
                      max_risk_fraction=0.02, stop_liquidation_buffer=0.5,
                      stop_reset_bars=0)  # the fixture's stops: from each trade's entry
EVERY = 97  # equity sampled every EVERY bars (and the last)


def _bars(name: str) -> pd.DataFrame:
    df = pd.read_parquet(SAMPLE / f"{name}USDT_1h.parquet")[["open", "high", "low", "close"]]
    df.index = pd.DatetimeIndex(df.index).tz_convert("UTC")
    return df.loc["2025-06-01":"2025-12-01"]


def cases() -> dict[str, dict]:
    """Each plan's sampled equity, totals, trades, liquidation and stop bars."""
    near, btc = _bars("NEAR"), _bars("BTC")
    idx = near.index.intersection(btc.index)
    near, btc = near.loc[idx], btc.loc[idx]
    n = len(idx)
    rate = np.where(np.arange(n) % 8 == 0, 1e-4, 0.0)
    cols = [near[k].to_numpy(float) for k in ("open", "high", "low", "close")]
    proxies = Market(["BTC"], *(btc[k].to_numpy(float)[None, :] for k in
                                ("open", "high", "low", "close")),
                     funding_rate=(rate * 0.5)[None, :], tiers=[GENERIC_TIERS])
    rng = np.random.default_rng(16)
    lev = np.where(rng.random(n) < 0.7, 4.0, rng.uniform(2.0, 5.0, n))
    lev[rng.random(n) < 0.02] = np.nan
    hedge = np.repeat(rng.uniform(0.3, 0.7, n // 48 + 1), 48)[:n]
    hedge[rng.random(n) < 0.02] = np.nan
    sig, prob = rng.uniform(0.02, 0.08, n), rng.uniform(0.0, 0.3, n)
    lpn = rng.uniform(0.02, 0.1, n)
    nne = rng.random(n) < 0.02
    inst = np.repeat(rng.integers(0, 2, n // 240 + 1), 240)[:n]
    full = np.ones(n)
    plans = {
        "unhedged 5x": dict(lev=5.0 * full, hedge=0.0 * full),
        "unhedged 10x": dict(lev=10.0 * full, hedge=0.0 * full),
        "static 50 % 5x": dict(lev=5.0 * full, hedge=0.5 * full),
        "static 100 % 4x": dict(lev=4.0 * full, hedge=1.0 * full),
        "policy-like": dict(lev=lev, hedge=hedge, stops=True, loss_per_notional=lpn,
                            no_new_exposure=nne, hedge_r2=0.8 * full),
        "policy-like, short": dict(lev=lev, hedge=hedge, stops=True, loss_per_notional=lpn,
                                   no_new_exposure=nne, side="short"),
        "policy-like, BTC proxy": dict(lev=lev, hedge=hedge, stops=True, loss_per_notional=lpn,
                                       hedge_instrument=inst, hedge_beta=1.2 * full,
                                       hedge_r2=0.6 * full, proxies=proxies),
    }
    out = {}
    for name, p in plans.items():
        p = dict(p)
        lv, hg, side = p.pop("lev"), p.pop("hedge"), p.pop("side", "long")
        r = simulate(*cols, rate, lv, hg, sig, prob, side=side, tiers=NEAR_TIERS,
                     policy=POLICY, initial_equity=10_000.0, margin_fraction=0.5,
                     leverage_tolerance=0.1, stop_cooldown=24, **p)
        keep = np.r_[np.arange(0, n, EVERY), n - 1]
        out[name] = {"bars": n, "equity": r.equity[keep].tolist(),
                     "leverage": r.leverage[keep].tolist(), "hedge": r.hedge[keep].tolist(),
                     "fees": r.fees, "funding": r.funding, "traded": r.traded_notional,
                     "trades": r.trades, "liquidation_bars": list(map(int, r.liquidation_bars)),
                     "stop_bars": list(map(int, r.stop_bars))}
    return out


def _close(a: object, b: object, where: str) -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), where  # type: ignore[arg-type]
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")  # type: ignore[index]
    elif isinstance(a, list):
        assert len(a) == len(b), where  # type: ignore[arg-type]
        for k, (x, y) in enumerate(zip(a, b, strict=True)):  # type: ignore[call-overload]
            _close(x, y, f"{where}[{k}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9), where


def test_engine_numbers_equal_the_pre_speedup_engine() -> None:
    want = json.loads(FIXTURE.read_text())
    got = cases()
    _close(got, want, "engine")
    # the fixture exercises what it claims
    assert sum(len(c["liquidation_bars"]) for c in want.values()) > 0
    assert sum(len(c["stop_bars"]) for c in want.values()) > 0


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(cases(), indent=0, allow_nan=True))
