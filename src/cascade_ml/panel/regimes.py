"""Market regimes of the evaluation (calm, trend, crash weeks) and the alert rate a bot acts on.

For evaluation only: a week's regime is read from **realised outcomes** (the cascade labels
and returns of that week), so it says where a forecast was tested, never what a forecast may
use. The rule (``panel.regimes``, ``RegimeRule``), per ISO week (Monday 00:00 UTC), over
every symbol of the panel at once:

- **crash**: at some hour of the week at least ``crash_share`` of the symbols with a label
  carry a cascade label (a market-wide cascade; at least ``min_symbols`` labelled), or at some
  hour the cross-sectional median of the symbols' log returns over the last 24 bars is at or
  below ``crash_return`` (a market-wide drop);
- **trend**: not a crash week, and that median weekly log return is beyond +-``trend_return``;
- **calm**: every other week.

The cascade alert threshold is the (1 - ``alert_rate``) quantile of the out-of-sample
probabilities of the walk-forward (development) folds: the bar rate a bot acting on the top
``alert_rate`` of bars would have set before the final and held-out periods.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.panel.config import RegimeRule

REGIMES = ("calm", "trend", "crash")


def week_of(timestamps: pd.Series) -> pd.Series:
    """The Monday 00:00 UTC opening each row's ISO week."""
    ts = pd.to_datetime(timestamps, utc=True)
    return (ts.dt.floor("D") - pd.to_timedelta(ts.dt.dayofweek, unit="D")).rename("week")


def weekly_regimes(frame: pd.DataFrame, rule: RegimeRule | None = None) -> pd.DataFrame:
    """One row per week: ``regime``, the peak hourly share of cascade labels, the worst
    cross-sectional median 24-bar log return and the median weekly log return. ``frame``: panel
    rows with ``timestamp``, ``symbol``, ``cascade`` and ``raw_ret_1h`` (realised outcomes:
    for evaluation only)."""
    rule = rule or RegimeRule()
    rows = frame[["timestamp", "symbol", "cascade", "raw_ret_1h"]].sort_values(
        ["symbol", "timestamp"], kind="stable")
    rows = rows.assign(week=week_of(rows["timestamp"]).to_numpy(), ret_24=rows.groupby(
        "symbol")["raw_ret_1h"].transform(lambda r: r.rolling(24, min_periods=24).sum()))
    hourly = rows.groupby("timestamp").agg(share=("cascade", "mean"), n=("cascade", "count"),
                                           ret_24=("ret_24", "median"), week=("week", "first"))
    peak = hourly[hourly["n"] >= rule.min_symbols].groupby("week")["share"].max()
    sym_week = rows.groupby(["week", "symbol"])["raw_ret_1h"].sum(min_count=1)
    out = pd.DataFrame({"peak_cascade_share": peak,
                        "worst_median_ret_24": hourly.groupby("week")["ret_24"].min(),
                        "median_return": sym_week.groupby(level="week").median()})
    out.index.name = "week"
    crash = (out["peak_cascade_share"] >= rule.crash_share) | (
        out["worst_median_ret_24"] <= rule.crash_return)
    trend = ~crash & (out["median_return"].abs() >= rule.trend_return)
    out["regime"] = np.where(crash, "crash", np.where(trend, "trend", "calm"))
    return out


def regime_of_rows(timestamps: pd.Series, weeks: pd.DataFrame) -> np.ndarray:
    """Each row's regime (its week's), ``calm`` for a week the table lacks."""
    reg = weeks["regime"].reindex(week_of(timestamps).to_numpy())
    return reg.fillna("calm").to_numpy()


def alert_threshold(probs: np.ndarray, alert_rate: float) -> float:
    """The probability above which ``alert_rate`` of the given bars fall (the bot's trigger)."""
    p = np.asarray(probs, float)
    p = p[np.isfinite(p)]
    return float(np.quantile(p, 1 - alert_rate)) if len(p) else float("nan")


def alert_scores(y: np.ndarray, probs: np.ndarray, threshold: float) -> dict:
    """Precision and recall of alerting on bars with probability >= ``threshold``, the share of
    bars alerted and the precision over the base rate (lift)."""
    y, p = np.asarray(y, float), np.asarray(probs, float)
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok], p[ok]
    alert = p >= threshold
    hits = float(np.sum(alert & (y == 1)))
    base = float(np.mean(y)) if len(y) else float("nan")
    precision = hits / alert.sum() if alert.any() else float("nan")
    return {"threshold": float(threshold), "alerts": int(alert.sum()),
            "alert_rate": float(alert.mean()) if len(y) else float("nan"),
            "precision": precision,
            "recall": hits / y.sum() if y.sum() > 0 else float("nan"),
            "base_rate": base, "lift": precision / base if base > 0 else float("nan")}
