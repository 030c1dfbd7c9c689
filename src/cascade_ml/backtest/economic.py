"""Economic value of the forecasts, the field's way: utility, performance fee, oracle capture.

Three measures, each in units a user understands (docs/policy.md, "Economic value"):

- realised utility of a volatility-targeting investor (Bollerslev, Hood, Huss & Pedersen 2018,
  constant Sharpe ratio) of each feed's variance forecast, as a share of the perfect forecast's
  (:func:`cascade_ml.models.metrics.utility_share`), on non-overlapping H-bar windows;
- the performance fee (Fleming, Kirby & Ostdiek 2001) a mean-variance investor with relative
  risk aversion gamma would pay, in basis points per year, to switch from the HAR-fed policy's
  daily returns to the model-fed policy's: the Delta equating their average realised quadratic
  utility of gross returns;
- the share of the oracle's gain over the equal-cost static hedge that each feed captures,
  (feed - static) / (oracle - static), undefined (and said so) when the oracle gains nothing;
  and beside it the same share against each policy's own same-size static
  (``static_sized*``: its own main leg, the hedge at its mean), (feed - feed's static) /
  (oracle - oracle's static): the value of the hedge's timing alone.

Intervals come from a stationary block bootstrap of days (Politis & Romano 1994,
``arch.bootstrap.StationaryBootstrap``) that draws ONE set of day indices per resample and
applies it to every symbol, so the cross-sectional correlation of the perps is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cascade_ml.backtest.ablation import block_length
from cascade_ml.backtest.metrics import cvar, daily_returns
from cascade_ml.backtest.strategies import SIZED
from cascade_ml.models.metrics import non_overlapping, utility_share

if TYPE_CHECKING:
    from cascade_ml.backtest.data import BacktestData
    from cascade_ml.backtest.simulate_all import StrategyRun

GAMMAS = (1.0, 10.0)
"""Relative risk aversions of the fee, as Fleming, Kirby & Ostdiek (2001) report it."""
DAYS_PER_YEAR = 365.0
BP = 1e4
FEEDS = ("model", "har", "ewma", "oracle")
POLICIES = ("model_policy", "har_policy", "ewma_policy")
STATICS = ("static_matched", "static_hedge")  # the first present is the static reference
RET, UTIL = "ret:", "util:"


# --- the measures (pure) ---------------------------------------------------------------------

def quadratic_coefficient(gamma: float) -> float:
    """FKO's weight on R^2 for relative risk aversion gamma: gamma / (2 (1 + gamma))."""
    if gamma < 0:
        raise ValueError(f"relative risk aversion must be >= 0, got {gamma}")
    return gamma / (2.0 * (1.0 + gamma))


def quadratic_utility(returns: np.ndarray, gamma: float) -> float:
    """Average realised quadratic utility of net ``returns`` (per unit of wealth, on gross
    returns R = 1 + r): mean[R - gamma / (2 (1 + gamma)) R^2]."""
    gross = 1.0 + np.asarray(returns, float)
    return float(np.mean(gross - quadratic_coefficient(gamma) * gross ** 2))


def _fee_from_moments(m1: np.ndarray, s1: np.ndarray, m0: np.ndarray, s0: np.ndarray,
                      a: float) -> np.ndarray:
    """Delta solving mean[(R1 - D) - a (R1 - D)^2] = mean[R0 - a R0^2] from the first two
    moments of the gross returns (m1, s1 new; m0, s0 old): a D^2 + (1 - 2 a m1) D + (u0 - u1)
    = 0, the root nearer zero in the cancellation-free form; NaN when no fee equates them."""
    b = 1.0 - 2.0 * a * m1
    c = (m0 - a * s0) - (m1 - a * s1)
    disc = b * b - 4.0 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(disc >= 0, -2.0 * c / (b + np.sqrt(np.maximum(disc, 0.0))), np.nan)


def performance_fee(new: np.ndarray, old: np.ndarray, gamma: float) -> float:
    """Per-period fee Delta (a return) an investor with relative risk aversion ``gamma`` would
    pay to hold ``new`` instead of ``old`` (both net returns per period): positive when ``new``
    is worth more. Equal series give 0; gamma 0 gives the difference of the means."""
    a = quadratic_coefficient(gamma)
    g1, g0 = 1.0 + np.asarray(new, float), 1.0 + np.asarray(old, float)
    return float(_fee_from_moments(np.mean(g1), np.mean(g1 ** 2), np.mean(g0),
                                   np.mean(g0 ** 2), a))


def fee_bp_per_year(fee_per_period: float | np.ndarray,
                    periods_per_year: float = DAYS_PER_YEAR) -> float | np.ndarray:
    """A per-period fee in basis points per year (FKO annualise by the number of periods)."""
    return fee_per_period * periods_per_year * BP


def capture_share(feed: float, static: float, oracle: float, *,
                  higher_is_better: bool = True) -> dict:
    """The share of the oracle's gain over the static hedge that ``feed`` captures,
    (feed - static) / (oracle - static). Undefined, with the reason in ``status``, when a value
    is missing or the oracle does not beat the static hedge (then the policy, not the
    forecast, is what is measured)."""
    sign = 1.0 if higher_is_better else -1.0
    out = {"feed": feed, "static": static, "oracle": oracle, "share": None}
    if not all(np.isfinite(x) for x in (feed, static, oracle)):
        return {**out, "status": "n/a: a value is missing"}
    gain = sign * (oracle - static)
    if gain == 0:
        return {**out, "status": "undefined: the oracle equals the static hedge"}
    if gain < 0:
        return {**out, "status": "undefined: the oracle does worse than the static hedge, so "
                                 "the policy, not the forecast, is measured"}
    return {**out, "share": float(sign * (feed - static) / gain), "status": "ok"}


def day_draws(n_days: int, *, reps: int, block: float, seed: int = 0) -> Iterator[np.ndarray]:
    """Day indices of ``reps`` stationary-bootstrap resamples (arch's StationaryBootstrap, mean
    block ``block`` days). Index every symbol's day-aligned series with the same draw."""
    from arch.bootstrap import StationaryBootstrap

    bs = StationaryBootstrap(block, np.arange(n_days), seed=seed)
    for pos, _ in bs.bootstrap(reps):
        yield np.asarray(pos[0], dtype=int)


def resample_aligned(panel: np.ndarray, *, reps: int, block: float,
                     seed: int = 0) -> Iterator[np.ndarray]:
    """Resamples of a (days, symbols, ...) array: each draw takes the same days for every
    symbol, so a day's cross-section stays together."""
    panel = np.asarray(panel)
    for idx in day_draws(panel.shape[0], reps=reps, block=block, seed=seed):
        yield panel[idx]


# --- per symbol: the windows the measures read -----------------------------------------------

def economic_frame(runs: dict[str, StrategyRun], data: BacktestData, horizon: int,
                   bars_per_day: int = 24) -> pd.DataFrame:
    """One symbol's inputs of the measures, indexed by window start: the daily net return of
    each strategy (``ret:<name>``), each feed's realised utility on non-overlapping H-bar
    windows (``util:<feed>``, all feeds on the same windows: those where every feed and the
    realised variance are known) and ``final`` (the window starts in the final period). Rows
    are labelled by the UTC day the window starts in."""
    cols: dict[str, pd.Series] = {}
    starts = data.index[: len(data.index) - 1: bars_per_day]
    for name, run in runs.items():
        r = daily_returns(run.result.equity, bars_per_day)
        cols[RET + name] = pd.Series(r, index=starts[: len(r)])
    oracle = data.feeds.get("oracle")
    if oracle is not None:
        win = non_overlapping(data.index, horizon)
        rv = oracle.sigma_h[win] ** 2
        feeds = {n: data.feeds[n].sigma_h[win] ** 2 for n in FEEDS if n in data.feeds}
        known = np.isfinite(rv) & np.all([np.isfinite(f) & (f > 0) for f in feeds.values()],
                                         axis=0)
        for n, f in feeds.items():
            cols[UTIL + n] = pd.Series(utility_share(rv[known], f[known]),
                                       index=data.index[win[known]])
    frame = pd.DataFrame(cols).sort_index()
    final = pd.Series(data.final_mask(), index=data.index)
    frame["final"] = final.reindex(frame.index, fill_value=False).to_numpy(bool)
    # label each window by its UTC day, so perps whose windows start at other hours pool on
    # one calendar (a day keeps the first window starting in it)
    return frame.groupby(frame.index.floor("D")).first()


# --- pooled over symbols, with intervals ------------------------------------------------------

def _stack(frames: dict[str, pd.DataFrame], column: str, calendar: pd.DatetimeIndex
           ) -> np.ndarray:
    """(days, symbols) of one column on the shared calendar, NaN where a symbol has none."""
    return np.column_stack([f[column].reindex(calendar).to_numpy(float) if column in f
                            else np.full(len(calendar), np.nan) for f in frames.values()])


def _interval(point: float, draws: np.ndarray) -> dict:
    draws = draws[np.isfinite(draws)]
    lo, hi = np.percentile(draws, [2.5, 97.5]) if len(draws) else (np.nan, np.nan)
    return {"value": point, "ci_low": float(lo), "ci_high": float(hi),
            "model_better": bool(lo > 0), "har_better": bool(hi < 0)}


def economic_value(frames: dict[str, pd.DataFrame], *, gammas: tuple[float, ...] = GAMMAS,
                   reps: int = 1000, block_days: float | None = None, seed: int = 0) -> dict:
    """The three measures pooled over every (symbol, window) of ``frames`` (one symbol or the
    universe), with 95 % intervals for the model-minus-HAR utility and the HAR -> model fee
    from a bootstrap that resamples days across all symbols at once."""
    frames = {s: f for s, f in frames.items() if len(f)}
    if not frames:
        return {"verdict": "no windows"}
    calendar = pd.DatetimeIndex(sorted(set().union(*(f.index for f in frames.values()))))
    rm, rh = (_stack(frames, RET + n, calendar) for n in ("model_policy", "har_policy"))
    um, uh = (_stack(frames, UTIL + n, calendar) for n in ("model", "har"))
    out: dict = {"symbols": list(frames), "days": int(np.isfinite(rm).any(axis=1).sum()),
                 "gammas": list(gammas)}
    both_r = np.isfinite(rm) & np.isfinite(rh)
    both_u = np.isfinite(um) & np.isfinite(uh)
    if both_r.sum() < 20:
        return {**out, "verdict": "too few days for the economic value"}
    # per-day sums over symbols: every statistic below is a ratio of sums of these
    g1, g0 = np.where(both_r, 1.0 + rm, 0.0), np.where(both_r, 1.0 + rh, 0.0)
    day = np.column_stack([both_r.sum(1), g1.sum(1), (g1 ** 2).sum(1), g0.sum(1),
                           (g0 ** 2).sum(1), both_u.sum(1),
                           np.where(both_u, um - uh, 0.0).sum(1)])
    ok = day[:, 0] > 0  # the block length reads the cross-sectional mean return per day
    block = (int(round(block_days)) if block_days else
             block_length(day[ok, 1] / day[ok, 0], day[ok, 3] / day[ok, 0]))

    def stats(s: np.ndarray) -> dict[str, np.ndarray]:
        n = s[..., 0]
        res = {f"gamma_{g:g}": fee_bp_per_year(_fee_from_moments(
            s[..., 1] / n, s[..., 2] / n, s[..., 3] / n, s[..., 4] / n,
            quadratic_coefficient(g))) for g in gammas}
        with np.errstate(invalid="ignore", divide="ignore"):
            res["utility"] = s[..., 6] / s[..., 5]
        return res

    point = stats(day.sum(0))
    sims = stats(np.stack([day[idx].sum(0) for idx in
                           day_draws(len(day), reps=reps, block=block, seed=seed)]))
    out.update(block_days=block, reps=reps)
    out["realised_utility"] = {
        "basis": "share of the perfect forecast's utility, 2 sqrt(RV/F) - RV/F, mean over "
                 "non-overlapping H-bar windows of every symbol (BHHP 2018, constant Sharpe)",
        "windows": int(both_u.sum()),
        **{n: _pooled_mean(_stack(frames, UTIL + n, calendar), both_u) for n in FEEDS},
        "model_minus_har": _interval(float(point["utility"]), sims["utility"])}
    out["performance_fee_bp_per_year"] = {
        "basis": "fee a mean-variance investor pays to switch from the HAR-fed to the "
                 "model-fed policy (FKO 2001, quadratic utility of gross daily returns), bp/yr",
        **{k: _interval(float(point[k]), sims[k]) for k in point if k != "utility"}}
    out["oracle_gain_capture"] = oracle_capture(frames, calendar, gammas)
    out["oracle_gain_capture_same_size"] = oracle_capture(frames, calendar, gammas,
                                                          same_size=True)
    out["verdict"] = verdict(out)
    return out


def _pooled_mean(x: np.ndarray, keep: np.ndarray) -> float | None:
    """Mean over the cells ``keep``; None when the feed lacks any of them (absent feed)."""
    v = x[keep]
    return float(v.mean()) if len(v) and np.isfinite(v).all() else None


def oracle_capture(frames: dict[str, pd.DataFrame], calendar: pd.DatetimeIndex,
                   gammas: tuple[float, ...] = GAMMAS, *, same_size: bool = False) -> dict:
    """Each policy feed's share of the oracle's gain over the static hedge, on the average
    quadratic utility (per gamma) and on CVaR 95 of daily returns, pooled over the
    (symbol, day) cells where every strategy has a return. ``same_size``: each policy against
    its own same-size static (``strategies.SIZED``), (feed - feed's static) / (oracle -
    oracle's static), each record adding ``oracle_static``."""
    def present(name: str) -> bool:
        return all(RET + name in f for f in frames.values())

    own = {p: s for s, p in SIZED.items()}  # policy -> its same-size static
    if same_size:
        names = [p for p in POLICIES if present(p) and present(own[p])]
        ref = {p: own[p] for p in [*names, "oracle_policy"]}
        static, need = "each policy's same-size static", "static_sized_oracle"
    else:
        static = next((s for s in STATICS if present(s)), None)
        names = [p for p in POLICIES if present(p)]
        ref = dict.fromkeys([*names, "oracle_policy"], static)
        need = "a static hedge"
    if static is None or not present("oracle_policy") or not present(ref["oracle_policy"]):
        return {"status": f"n/a: needs oracle_policy and {need} in backtest.strategies"}
    stacks = {n: _stack(frames, RET + n, calendar)
              for n in dict.fromkeys([*names, "oracle_policy", *ref.values()])}
    keep = np.all([np.isfinite(x) for x in stacks.values()], axis=0)
    r = {n: x[keep] for n, x in stacks.items()}
    measures = {f"utility_gamma_{g:g}": lambda x, g=g: quadratic_utility(x, g) for g in gammas}
    measures["cvar_95"] = cvar
    basis = ("(feed - feed's same-size static) / (oracle - oracle's same-size static)"
             if same_size else "(feed - static) / (oracle - static)")
    out: dict = {"static": static, "cells": int(keep.sum()),
                 "basis": f"{basis}; utility: mean quadratic utility of gross daily returns; "
                          "cvar_95: mean of the worst 5 % of days"}
    for key, fn in measures.items():
        o, so = fn(r["oracle_policy"]), fn(r[ref["oracle_policy"]])
        if same_size:  # each feed's gain over its own static, against the oracle's over its
            out[key] = {n: {**capture_share(fn(r[n]) - fn(r[ref[n]]), 0.0, o - so),
                            "feed": fn(r[n]), "static": fn(r[ref[n]]), "oracle": o,
                            "oracle_static": so} for n in names}
        else:
            out[key] = {n: capture_share(fn(r[n]), so, o) for n in names}
    return out


def economic_spans(frames: dict[str, pd.DataFrame], **kw) -> dict[str, dict]:
    """:func:`economic_value` over the whole OOS span and over the final period."""
    out = {"all": economic_value(frames, **kw)}
    final = {s: f[f["final"]] for s, f in frames.items() if f["final"].any()}
    if final:
        out["final"] = economic_value(final, **kw)
    return out


def verdict(ev: dict) -> str:
    """One plain sentence: what switching from HAR-fed to model-fed is worth."""
    if "performance_fee_bp_per_year" not in ev:
        return ev.get("verdict", "n/a")

    def word(m: dict, fmt: str) -> str:
        state = ("model better" if m["model_better"] else "HAR better" if m["har_better"]
                 else "not distinguishable")
        return (f"{m['value']:{fmt}} [{m['ci_low']:{fmt}}, {m['ci_high']:{fmt}}] ({state})")

    fee = ev["performance_fee_bp_per_year"]
    ru = ev["realised_utility"]
    fees = "; ".join(f"gamma {k.removeprefix('gamma_')}: {word(v, '+.0f')} bp/yr"
                     for k, v in fee.items() if k.startswith("gamma_"))
    u = (f"model {ru['model']:.4f} vs HAR {ru['har']:.4f}"
         if ru.get("model") is not None and ru.get("har") is not None else "n/a")
    return (f"fee HAR-fed -> model-fed {fees}; realised utility {u}, model minus HAR "
            f"{word(ru['model_minus_har'], '+.4f')}")
