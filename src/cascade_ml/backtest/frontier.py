"""The efficiency frontier: what a hedge costs per year against the risk it removes.

A point is one simulated strategy on one perp: its average **hedge cost** per year, as a share
of its mean equity (fees + funding + the upside the hedge gave up), against three risks: the
CVaR 95 loss of daily returns (minus the mean of the worst 5 % of days), the annualised vol and
the max drawdown. The static curve runs through the static hedges at every ratio (same fixed
size); each feed's curve through the policy's variants (``backtest.frontier.variants``). A
forecast has value where its curve lies below the static one: a point *dominates* when its risk
is below the static curve's at the same cost (linear interpolation between the static points
ordered by cost), is *dominated* when above, and is *outside* when its cost lies beyond the
static curve's range (no static hedge costs that much or that little). A static hedge that was
liquidated stays among the points but draws no curve (:func:`static_curve`).

Pure functions of arrays and point records; the simulation is
:func:`cascade_ml.backtest.simulate_all.frontier_points`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from cascade_ml.backtest.metrics import BARS_PER_DAY, HOURS_PER_YEAR, summarize

RISKS = ("cvar_95_loss", "ann_vol", "max_drawdown")
"""The frontier's risk axes, each lower-is-better."""
COSTS = ("fees", "funding", "upside_given_up")
"""The parts of the hedge cost (per year, share of mean equity); ``cost`` is their sum."""


def upside_given_up(close: np.ndarray, hedge: np.ndarray, notional: np.ndarray,
                    equity: np.ndarray, *, side: str = "long", bars_per_day: int = BARS_PER_DAY,
                    bars_per_year: float = HOURS_PER_YEAR) -> float:
    """The hedge leg's loss on the days the perp moved the position's way, per year, as a share
    of equity: over bar t the hedge held at t-1 returns ``-h_{t-1} N_{t-1} / E_{t-1} x r_t``
    (r_t the perp's return, sign flipped for a short), summed per day of ``bars_per_day`` bars
    and over the days whose perp return favoured the position. The hedge leg is taken in the
    same perp (a BTC/ETH proxy leg is approximated by the perp's own move)."""
    close = np.asarray(close, float)
    n = len(close)
    years = max(n - 1, 1) / bars_per_year
    sign = 1.0 if side == "long" else -1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = close[1:] / close[:-1] - 1.0
        w = np.asarray(hedge, float)[:-1] * np.asarray(notional, float)[:-1] \
            / np.asarray(equity, float)[:-1]
    leg = np.where(np.isfinite(w * r), -sign * w * r, 0.0)
    days = np.arange(n - 1) // bars_per_day       # bar t+1 belongs to day t // bars_per_day
    full = (n - 1) // bars_per_day                 # complete days only (as daily_returns)
    keep = days < full
    per_day = np.bincount(days[keep], weights=leg[keep], minlength=full)
    moves = sign * (close[bars_per_day: full * bars_per_day + 1: bars_per_day]
                    / close[: full * bars_per_day: bars_per_day] - 1.0)
    favoured = moves > 0
    return float(-per_day[favoured].sum() / years)


def point(equity: np.ndarray, close: np.ndarray, hedge: np.ndarray, notional: np.ndarray,
          fees: float, funding: float, *, liquidations: int = 0, side: str = "long",
          bars_per_day: int = BARS_PER_DAY, bars_per_year: float = HOURS_PER_YEAR) -> dict:
    """One strategy's frontier coordinates: the cost parts and their sum (per year, share of
    mean equity), the three risks of its equity curve, and its liquidations."""
    equity = np.asarray(equity, float)
    years = max(len(equity) - 1, 1) / bars_per_year
    mean_equity = float(np.mean(equity))
    m = summarize(equity, bars_per_year=bars_per_year)
    out = {"fees": fees / mean_equity / years, "funding": funding / mean_equity / years,
           "upside_given_up": upside_given_up(close, hedge, notional, equity, side=side,
                                              bars_per_day=bars_per_day,
                                              bars_per_year=bars_per_year)}
    out["cost"] = out["fees"] + out["funding"] + out["upside_given_up"]
    out.update(cvar_95_loss=-m["cvar_95"], ann_vol=m["ann_vol"],
               max_drawdown=m["max_drawdown"], mean_hedge=float(np.mean(hedge)),
               liquidations=int(liquidations))
    return out


def curve_at(cost: np.ndarray | float, static_cost: Iterable[float],
             static_risk: Iterable[float]) -> np.ndarray:
    """The static curve's risk at ``cost``: linear between the static points ordered by cost,
    NaN outside their cost range (or with fewer than two finite points)."""
    sc, sr = np.asarray(list(static_cost), float), np.asarray(list(static_risk), float)
    ok = np.isfinite(sc) & np.isfinite(sr)
    sc, sr = sc[ok], sr[ok]
    x = np.atleast_1d(np.asarray(cost, float))
    if len(sc) < 2:
        return np.full(len(x), np.nan)
    order = np.argsort(sc, kind="stable")
    sc, sr = sc[order], sr[order]
    inside = (x >= sc[0]) & (x <= sc[-1])
    return np.where(inside, np.interp(x, sc, sr), np.nan)


def dominance(cost: Iterable[float], risk: Iterable[float], static_cost: Iterable[float],
              static_risk: Iterable[float]) -> dict:
    """How many of the points (cost, risk) lie below (dominating) or above (dominated) the
    static curve at their cost, and how many outside its cost range; shares of all points."""
    c, r = np.asarray(list(cost), float), np.asarray(list(risk), float)
    at = curve_at(c, static_cost, static_risk)
    known = np.isfinite(at) & np.isfinite(r)
    dom = int(np.sum(known & (r < at)))
    by = int(np.sum(known & (r > at)))
    n = len(c)
    return {"points": n, "dominating": dom, "dominated": by, "outside": int(n - known.sum()),
            "share_dominating": dom / n if n else None,
            "share_dominated": by / n if n else None}


def _key(p: dict) -> tuple:
    return (p["kind"], p.get("feed"), p["label"])


def pooled_points(by_symbol: dict[str, list[dict]]) -> list[dict]:
    """Each point (static ratio, or feed x variant) averaged over the perps that have it, every
    perp weighted equally; its liquidations summed."""
    groups: dict[tuple, list[dict]] = {}
    for pts in by_symbol.values():
        for p in pts:
            groups.setdefault(_key(p), []).append(p)
    num = (*COSTS, "cost", *RISKS, "mean_hedge")
    out = []
    for pts in groups.values():
        out.append({**{k: v for k, v in pts[0].items() if k not in num}, "symbols": len(pts),
                    **{k: float(np.nanmean([p[k] for p in pts])) for k in num},
                    "liquidations": int(sum(p.get("liquidations", 0) for p in pts))})
    return out


def static_curve(points: list[dict]) -> list[dict]:
    """The static points the curve runs through: those never liquidated (a liquidated static
    hedge protects nothing; it stays in the points, marked, but draws no curve)."""
    return [p for p in points if p["kind"] == "static" and not p.get("liquidations")]


def feed_dominance(points: list[dict]) -> dict[str, dict[str, dict]]:
    """Per feed and per risk: :func:`dominance` of the feed's points against the static curve
    of the same list."""
    static = static_curve(points)
    feeds = list(dict.fromkeys(p["feed"] for p in points if p["kind"] == "policy"))
    out: dict[str, dict[str, dict]] = {}
    for feed in feeds:
        pts = [p for p in points if p.get("feed") == feed and p["kind"] == "policy"]
        out[feed] = {risk: dominance([p["cost"] for p in pts], [p[risk] for p in pts],
                                     [s["cost"] for s in static], [s[risk] for s in static])
                     for risk in RISKS}
    return out


def _add(a: dict, b: dict) -> dict:
    keys = ("points", "dominating", "dominated", "outside")
    s = {k: a.get(k, 0) + b[k] for k in keys}
    n = s["points"]
    return {**s, "share_dominating": s["dominating"] / n if n else None,
            "share_dominated": s["dominated"] / n if n else None}


def frontier_report(by_symbol: dict[str, list[dict]]) -> dict:
    """The frontier of every perp and pooled: per perp its points and each feed's dominance;
    pooled the points averaged over perps with their dominance, and the dominance counted over
    every (perp, variant) point against that perp's own static curve."""
    per = {s: {"points": pts, "dominance": feed_dominance(pts)} for s, pts in by_symbol.items()}
    counts: dict[str, dict[str, dict]] = {}
    for block in per.values():
        for feed, risks in block["dominance"].items():
            for risk, d in risks.items():
                counts.setdefault(feed, {})[risk] = _add(counts.get(feed, {}).get(risk, {}), d)
    pooled = pooled_points(by_symbol)
    return {"basis": "cost = fees + funding + upside given up by the hedge, per year, share of "
                     "mean equity; risks: cvar_95_loss (minus CVaR 95 of daily returns), "
                     "ann_vol, max_drawdown; dominating = risk below the static curve "
                     "(linear in cost) at the same cost",
            "per_symbol": per,
            "pooled": {"points": pooled, "dominance": feed_dominance(pooled),
                       "over_every_perp": counts}}
