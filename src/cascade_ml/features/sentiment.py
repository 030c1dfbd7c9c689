"""Sentiment: market Fear & Greed and per-symbol score / mentions vs their own rolling baseline.

Sentiment rows are stamped at the period start; a value is usable only after its period ends plus
``sentiment_lag`` (a daily F&G value for day D reaches bar rows whose close is at or after
D+1 00:00 + lag). Baselines are computed on the series' own records from PREVIOUS periods, then
the result is joined as-of; a value older than two periods counts as missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.features.asof import asof_join
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import EventSeries, FeatureInputs
from cascade_ml.features.stats import flag, log_return, rolling_z

FAMILY = "sentiment"


def describe(cfg: FeatureConfig, refs: list[str]) -> dict[str, str]:
    n, w = cfg.sentiment_z_periods, cfg.runup_window
    return {
        "fng_score": "market Fear & Greed index (0-100) of the last completed period",
        f"fng_z_{n}d": f"z-score of the F&G index vs its previous {n} periods",
        f"sent_score_z_{n}d": f"z-score of the symbol's own sentiment score vs {n} periods",
        f"mentions_z_{n}d": f"z-score of log(1 + mentions) of the symbol vs {n} periods",
        f"ret_{w}h": f"log return over the last {w} bars (run-up)",
        "trigger_sentiment_spike": (
            f"1 if mentions z >= {cfg.sentiment_trigger_z} while ret_{w}h <= 0; without mentions, "
            f"if F&G >= {cfg.greed_threshold} after ret_{w}h >= {cfg.runup_threshold}"),
    }


def _joined(inputs: FeatureInputs, series: EventSeries, values: pd.DataFrame,
            cfg: FeatureConfig) -> pd.DataFrame:
    delay = series.delta + pd.Timedelta(cfg.sentiment_lag)
    return asof_join(inputs.bars.index, values, bar_interval=inputs.bar_interval, delay=delay,
                     max_age=2 * series.delta)


def _column_z(series: EventSeries, column: str, cfg: FeatureConfig, log: bool) -> pd.DataFrame:
    raw = series.frame[column].dropna() if column in series.frame else pd.Series(dtype=float)
    values = np.log1p(raw) if log else raw
    return pd.DataFrame({column: raw,
                         "z": rolling_z(values, cfg.sentiment_z_periods, cfg.min_periods_frac,
                                        prior=True)})


def compute(inputs: FeatureInputs, cfg: FeatureConfig) -> pd.DataFrame:
    index = inputs.bars.index
    names = list(describe(cfg, list(inputs.refs)))
    n, w = cfg.sentiment_z_periods, cfg.runup_window
    out = pd.DataFrame(np.nan, index=index, columns=names)
    market = inputs.sentiment.get(cfg.sentiment_market_symbol)
    if market is not None and "score" in market.frame:
        j = _joined(inputs, market, _column_z(market, "score", cfg, log=False), cfg)
        out["fng_score"], out[f"fng_z_{n}d"] = j["score"], j["z"]
    own = inputs.sentiment.get(inputs.symbol)
    if own is not None:
        for col, name, log in (("score", f"sent_score_z_{n}d", False),
                               ("mentions", f"mentions_z_{n}d", True)):
            if col in own.frame and own.frame[col].notna().any():
                out[name] = _joined(inputs, own, _column_z(own, col, cfg, log), cfg)["z"]
    runup = log_return(inputs.bars["close"]).rolling(w, min_periods=w).sum()
    out[f"ret_{w}h"] = runup
    mentions = out[f"mentions_z_{n}d"]
    by_mentions = flag((mentions >= cfg.sentiment_trigger_z) & (runup <= 0), mentions, runup)
    fng = out["fng_score"]
    by_fng = flag((fng >= cfg.greed_threshold) & (runup >= cfg.runup_threshold), fng, runup)
    out["trigger_sentiment_spike"] = by_mentions.where(mentions.notna(), by_fng)
    return out
