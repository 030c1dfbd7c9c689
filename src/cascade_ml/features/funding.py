"""Funding: level, percentile, cumulative cost, time since settlement and divergence vs BTC/ETH.

Rates are normalised to an 8h-equivalent (rate / interval hours * 8) so Binance (8h) and
Hyperliquid (1h) are comparable. Each venue is computed on its own (divergence only against the
reference's funding on the SAME venue), then rows are coalesced by venue priority. A settlement is
known at its settlement time + ``funding_lag`` (see ``asof``); a venue whose latest settlement is
older than ``funding_max_age_settlements`` intervals counts as missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.features.asof import AVAILABLE_AT, asof_join, coalesce_rows
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import EventSeries, FeatureInputs
from cascade_ml.features.stats import flag, rolling_pct, rolling_z

FAMILY = "funding"
_HOUR = pd.Timedelta("1h")


def describe(cfg: FeatureConfig, refs: list[str]) -> dict[str, str]:
    out = {"funding_8h": "latest settled funding rate as an 8h-equivalent fraction",
           f"funding_pct_{cfg.funding_pct_window}h":
               f"percentile of funding_8h within the last {cfg.funding_pct_window} bars"}
    for w in cfg.funding_z_windows:
        out[f"funding_z_{w}h"] = f"z-score of funding_8h over {w} bars"
    for h in cfg.funding_cum_hours:
        out[f"funding_cum_{h}h"] = f"sum of rates settled in the last {h} hours"
    out["funding_hours_since"] = "hours since the latest settlement known at the bar's close"
    for ref in refs:
        r = ref.lower()
        out[f"funding_div_{r}"] = f"funding_8h minus {ref}'s on the same venue"
        for w in cfg.funding_z_windows:
            out[f"funding_div_{r}_z_{w}h"] = f"z-score of funding_div_{r} over {w} bars"
    w0 = cfg.funding_z_windows[0]
    out["trigger_funding_divergence"] = (
        f"1 if a divergence z-score (window {w0}) vs a reference is >= {cfg.funding_trigger_z}")
    return out


def _hours(series: EventSeries) -> pd.Series:
    frame = series.frame
    if "interval_hours" in frame:
        return frame["interval_hours"].fillna(series.delta / _HOUR)
    return pd.Series(series.delta / _HOUR, index=frame.index)


def _venue_rate(inputs: FeatureInputs, series: EventSeries, cfg: FeatureConfig,
                level_only: bool = False) -> pd.DataFrame:
    """funding_8h (and, unless ``level_only``, cumulative funding and hours since settlement)
    for one symbol on one venue."""
    frame = series.frame
    events = pd.DataFrame({"funding_8h": frame["funding_rate"] / _hours(series) * 8.0,
                           "cum": frame["funding_rate"].cumsum()}, index=frame.index)
    lag = pd.Timedelta(cfg.funding_lag)
    max_age = series.delta * cfg.funding_max_age_settlements
    joined = asof_join(inputs.bars.index, events, bar_interval=inputs.bar_interval, delay=lag,
                       max_age=max_age)
    if level_only:
        return joined[["funding_8h"]]
    stale = joined["funding_8h"].isna()
    for h in cfg.funding_cum_hours:
        before = asof_join(inputs.bars.index - pd.Timedelta(hours=h), events[["cum"]],
                           bar_interval=inputs.bar_interval, delay=lag)
        cum = joined["cum"] - before["cum"].to_numpy()
        joined[f"funding_cum_{h}h"] = cum.where(~stale)
    key = inputs.bars.index + inputs.bar_interval
    joined["funding_hours_since"] = (key - pd.DatetimeIndex(joined[AVAILABLE_AT])) / _HOUR
    return joined.drop(columns=["cum", AVAILABLE_AT])


def _venue_features(inputs: FeatureInputs, venue: str, cfg: FeatureConfig) -> pd.DataFrame:
    index = inputs.bars.index
    per_symbol = inputs.funding.get(venue, {})
    if inputs.symbol not in per_symbol:
        return pd.DataFrame(index=index, columns=["funding_8h"], dtype=float)
    out = _venue_rate(inputs, per_symbol[inputs.symbol], cfg)
    level = out["funding_8h"]
    frac = cfg.min_periods_frac
    out[f"funding_pct_{cfg.funding_pct_window}h"] = rolling_pct(level, cfg.funding_pct_window, frac)
    for w in cfg.funding_z_windows:
        out[f"funding_z_{w}h"] = rolling_z(level, w, frac)
    for ref in inputs.refs:
        r = ref.lower()
        if ref in per_symbol:
            div = level - _venue_rate(inputs, per_symbol[ref], cfg, level_only=True)["funding_8h"]
        else:
            div = pd.Series(np.nan, index=index)
        out[f"funding_div_{r}"] = div
        for w in cfg.funding_z_windows:
            out[f"funding_div_{r}_z_{w}h"] = rolling_z(div, w, frac)
    return out


def compute(inputs: FeatureInputs, cfg: FeatureConfig) -> pd.DataFrame:
    names = list(describe(cfg, list(inputs.refs)))
    frames = [_venue_features(inputs, v, cfg) for v in cfg.funding_venues]
    out = coalesce_rows(frames, "funding_8h").reindex(columns=names).astype(float)
    w0 = cfg.funding_z_windows[0]
    zs = [out[f"funding_div_{r.lower()}_z_{w0}h"] for r in inputs.refs]
    if zs:
        zmax = pd.concat(zs, axis=1).max(axis=1)
        out["trigger_funding_divergence"] = flag(zmax >= cfg.funding_trigger_z, zmax)
    return out
