"""Upside capture on the development span (issue 16): why the policy's captures are symmetric,
how much asymmetry each feed's information can buy, and the grid chosen by a rule set in advance.

Reads each perp's development bars only (``backtest.tune.development_data``: the final period is
cut away before any simulation) from the pipeline's store, and pools the perps as the universe
backtest does (equal-weight basket of daily returns, captures against the ``capped_unhedged``
basket: ``universe.basket`` on ``economic.economic_frame``). Three parts:

1. ``decompose``: each feed's pooled captures split by :mod:`cascade_ml.backtest.attribution`
   (the hedge held, a different main leg after stops or the fail-safe, fees and funding, the
   rest), with the effective hedge on up and down days, mean hedge, flat and fail-safe shares.
2. ``information``: cost-free, a hedge at the band's top (70 %) when a signal is above its
   in-sample quantile and at its bottom (30 %) otherwise, applied bar by bar to the capped
   position's returns: the asymmetry (effective hedge on down days minus on up days) each
   feed's vol forecast and cascade probability can buy at most by such a map.
3. ``grid``: the model feed under :data:`GRID`, judged by :data:`RULE`.

    PYTHONPATH=src .venv/bin/python benchmarks/upside_capture.py [--part all] \
        [--pipeline pipelines/universe.yaml]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.backtest.attribution import PARTS, bar_parts, capture_parts
from cascade_ml.backtest.economic import RET, economic_frame, quadratic_utility
from cascade_ml.backtest.metrics import capture, cvar, max_drawdown, summarize
from cascade_ml.backtest.run import load_symbol
from cascade_ml.backtest.simulate_all import run_strategies
from cascade_ml.backtest.tune import development_data
from cascade_ml.backtest.universe import basket
from cascade_ml.config import PipelineConfig, load_pipeline
from cascade_ml.data.store import MarketStore
from cascade_ml.policy import rules
from cascade_ml.policy.config import PolicyConfig

FEEDS = ("model_policy", "har_policy", "ewma_policy", "oracle_policy")
BAND = (0.3, 0.7)
GRID = ([{"static_hedge": s, "objective_weight": w, "jump_sigmas": j}
         for s in (0.5, 0.4, 0.3) for w in (0.5, 1.0) for j in (3.0, 6.0)]
        + [{"static_hedge": s, "objective_weight": 0.0, "jump_sigmas": 3.0} for s in (0.4, 0.3)])
"""The model feed's settings tried (the first is today's ``pipelines/universe.yaml``)."""
RULE = ("among the points with pooled downside capture <= 0.45 and vol <= 0.50x the capped "
        "unhedged basket, no liquidation, and the oracle-fed policy beating its own matched "
        "static on CVaR 95, max drawdown and utility g1 on at least as many perps as with "
        "today's settings: the highest pooled upside capture; adopted only if it is >= 0.60")
"""Written down (2026-12-06, 09:53 UTC) before any grid point was run."""


def dev_data(store: MarketStore, cfg: PipelineConfig, symbol: str):
    return development_data(load_symbol(store, symbol, cfg.task, cfg.backtest, cfg.policy))


def simulate(data, cfg: PipelineConfig, symbol: str, strategies: list[str],
             policy: PolicyConfig | None = None):
    bt = cfg.backtest.model_copy(update={"strategies": strategies})
    return run_strategies(data, bt, policy or cfg.policy, symbol, cfg.task.side,
                          trading=cfg.trading)


def pooled(frames: dict[str, pd.DataFrame], name: str) -> dict[str, float]:
    """The basket of ``name`` against the capped unhedged basket (the universe JSON's way)."""
    def equity(r: pd.Series) -> np.ndarray:
        return np.r_[1.0, np.cumprod(1.0 + r.to_numpy(float))]

    e, base = equity(basket(frames, name)), equity(basket(frames, "capped_unhedged"))
    up, down = capture(e, base, period=1)
    m, mb = summarize(e, bars_per_year=365), summarize(base, bars_per_year=365)
    return {"up": up, "down": down, "vol": m["ann_vol"] / mb["ann_vol"],
            "return": float(e[-1] - 1.0), "max_dd": m["max_drawdown"]}


def _days(values: np.ndarray, index: pd.DatetimeIndex) -> pd.Series:
    s = pd.Series(values, index=index[1:])
    return s.groupby(s.index.floor("D")).sum()


def decompose(store: MarketStore, cfg: PipelineConfig, symbols: list[str]) -> None:
    names = ["unhedged", "capped_unhedged", *FEEDS]
    frames, parts, stats = {}, {f: {} for f in FEEDS}, {f: [] for f in FEEDS}
    for sym in symbols:
        data = dev_data(store, cfg, sym)
        runs = simulate(data, cfg, sym, names)
        frames[sym] = economic_frame(runs, data, cfg.task.horizon)
        cap = runs["capped_unhedged"].result
        for f in FEEDS:
            r = runs[f].result
            p = bar_parts(r, cap, data.close)
            parts[f][sym] = {k: _days(v, data.index) for k, v in p.items()}
            held = r.notional[:-1] > 0
            stats[f].append({"mean hedge (open bars)": float(r.hedge[:-1][held].mean()),
                             "flat share": float(1.0 - held.mean()),
                             "fail-safe share": float(np.mean(runs[f].plan.decisions["fail_safe"])),
                             "stops": len(r.stop_bars), "capped stops": len(cap.stop_bars)})
    print("1. decomposition of the pooled captures against capped_unhedged (development span)")
    for f in FEEDS:
        m = pooled(frames, f)
        mean = {k: pd.DataFrame({s: parts[f][s][k] for s in symbols}).mean(axis=1)
                for k in ("capped", "ret", *PARTS)}
        split = capture_parts({k: mean[k] for k in ("ret", *PARTS)}, mean["capped"])
        st = pd.DataFrame(stats[f]).mean()
        print(f"{f}: pooled up {m['up']:.3f} down {m['down']:.3f} vol {m['vol']:.3f}x; "
              + "; ".join(f"{k}: " + ", ".join(f"{p} {split[k][p]:+.4f}" for p in
                                                ("ret", *PARTS, "effective_hedge"))
                          for k in ("up", "down"))
              + "; per perp: " + ", ".join(f"{k} {v:.3f}" for k, v in st.items()))


def information(store: MarketStore, cfg: PipelineConfig, symbols: list[str]) -> None:
    pol = cfg.policy
    kept: dict[str, dict[str, pd.Series]] = {}
    for sym in symbols:
        data = dev_data(store, cfg, sym)
        runs = simulate(data, cfg, sym, ["unhedged", "capped_unhedged", "model_policy"])
        e = runs["capped_unhedged"].result.equity
        c = pd.Series(e[1:] / e[:-1] - 1.0, index=data.index[1:])
        kept.setdefault("capped", {})[sym] = c
        s_ref = np.asarray(rules.reference_sigma_h(
            rules.vol_reference(data.trailing_vol_annual, pol), cfg.task.horizon))
        signals = {"model policy's own hedge": runs["model_policy"].result.hedge}
        for feed, f in data.feeds.items():
            signals[f"{feed} vol / reference"] = f.sigma_h / s_ref
            signals[f"{feed} vol smoothed / reference"] = (
                rules.smooth_log_vol(f.sigma_h, pol.forecast_halflife_bars) / s_ref)
            signals[f"{feed} cascade probability"] = f.cascade_prob
        for name, sig in signals.items():
            x = np.asarray(sig, dtype=float)[:-1]
            for q in ((None,) if name.startswith("model policy") else (0.5, 0.8)):
                if q is None:
                    h = x
                else:
                    ok = np.isfinite(x)
                    h = np.where(ok & (x > np.nanquantile(x, q)), BAND[1], BAND[0])
                key = name if q is None else f"{name}, above its q{q:.1f}"
                kept.setdefault(key, {})[sym] = (1.0 - h) * c

    def daily(d: dict[str, pd.Series]) -> pd.Series:
        return pd.DataFrame({s: v.groupby(v.index.floor("D")).sum() for s, v in d.items()}
                            ).mean(axis=1)

    cap = daily(kept.pop("capped"))
    up, down = cap > 0, cap < 0
    print("2. cost-free asymmetry of a 30/70 hedge on each signal (development span): "
          "up / down capture, effective hedge up / down, gap = h_down - h_up")
    for key, d in kept.items():
        r = daily(d)
        cu, cd = r[up].sum() / cap[up].sum(), r[down].sum() / cap[down].sum()
        print(f"  {key:52s} {cu:.3f} / {cd:.3f}  h {1 - cu:.3f} / {1 - cd:.3f}  "
              f"gap {cu - cd:+.3f}")
    r = cap * np.where(up, 1 - BAND[0], 1 - BAND[1])
    print(f"  {'the day direction known in advance':52s} {r[up].sum() / cap[up].sum():.3f} / "
          f"{r[down].sum() / cap[down].sum():.3f}")


def grid(store: MarketStore, cfg: PipelineConfig, symbols: list[str]) -> None:
    names = ["unhedged", "capped_unhedged", "model_policy", "oracle_policy",
             "static_matched_oracle"]
    data = {s: dev_data(store, cfg, s) for s in symbols}
    print(f"3. grid, rule: {RULE}")
    results = []
    for point in GRID:
        pol = PolicyConfig.model_validate({**cfg.policy.model_dump(), **point})
        frames, wins, liq, hedge = {}, np.zeros(3, int), 0, []
        for sym, d in data.items():
            runs = simulate(d, cfg, sym, names, pol)
            frames[sym] = economic_frame(runs, d, cfg.task.horizon)
            o, s = runs["oracle_policy"].result, runs["static_matched_oracle"].result
            both = frames[sym][[RET + "oracle_policy", RET + "static_matched_oracle"]].dropna()
            ro, rs = (both[c].to_numpy(float) for c in both.columns)
            wins += [cvar(ro) > cvar(rs), max_drawdown(o.equity) < max_drawdown(s.equity),
                     quadratic_utility(ro, 1.0) > quadratic_utility(rs, 1.0)]
            liq += len(runs["model_policy"].result.liquidation_bars) + len(o.liquidation_bars)
            hedge.append(runs["model_policy"].metrics["mean_hedge"])
        m = pooled(frames, "model_policy")
        results.append((point, m, wins, liq))
        print(f"  {point}: up {m['up']:.3f} down {m['down']:.3f} vol {m['vol']:.3f}x "
              f"return {m['return']:+.3f} max DD {m['max_dd']:.3f} mean hedge "
              f"{np.mean(hedge):.3f}; oracle wins CVaR/DD/u1 {'/'.join(map(str, wins))}; "
              f"liquidations {liq}")
    base_wins = results[0][2]
    ok = [r for r in results if r[1]["down"] <= 0.45 and r[1]["vol"] <= 0.50 and r[3] == 0
          and np.all(r[2] >= base_wins)]
    if not ok:
        print("  no point meets the constraints: settings unchanged")
        return
    best = max(ok, key=lambda r: r[1]["up"])
    verdict = "adopt" if best[1]["up"] >= 0.60 else "keep today's settings (upside < 0.60)"
    print(f"  best under the rule: {best[0]}, upside {best[1]['up']:.3f}: {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", default="pipelines/universe.yaml")
    ap.add_argument("--part", choices=["all", "decompose", "information", "grid"],
                    default="all")
    args = ap.parse_args()
    cfg = load_pipeline(args.pipeline)
    store = MarketStore(Path(cfg.store.root))
    symbols = [s.upper() for s in cfg.task.symbols]
    for part, fn in (("decompose", decompose), ("information", information), ("grid", grid)):
        if args.part in ("all", part):
            t = time.perf_counter()
            fn(store, cfg, symbols)
            print(f"  ({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
