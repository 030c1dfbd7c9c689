"""Open interest: change, OI/volume, z-score and percentile vs own history, share vs BTC/ETH,
crowding (OI rising while price falls or rises).

OI is used in quote value (``open_interest_value``, or base units x the bar close). The store
stamps OI at snapshot time, so a row is known at its timestamp + ``oi_lag``; intervals listed in
``oi_period_end_intervals`` (none by default) are treated as stamped at the period start and known
only at its end. Within a
venue the finest interval wins row by row; venues are computed apart and coalesced by priority.
A snapshot older than ``oi_max_age_intervals`` intervals counts as missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import IS_SPOT
from cascade_ml.features.asof import asof_join, coalesce_rows
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import EventSeries, FeatureInputs
from cascade_ml.features.refs import ref_close
from cascade_ml.features.stats import flag, log_return, rolling_pct, rolling_z, safe_log

FAMILY = "open_interest"
_KEY = "_oi_value"


def describe(cfg: FeatureConfig, refs: list[str]) -> dict[str, str]:
    out = {}
    for w in cfg.oi_change_windows:
        out[f"oi_chg_{w}h"] = f"log change of open interest (quote value) over {w} bars"
    out["oi_to_volume_24h"] = "open interest value / quote volume of the last 24 bars"
    for w in cfg.oi_z_windows:
        out[f"oi_z_{w}h"] = f"z-score of log open interest over {w} bars"
        out[f"oi_pct_{w}h"] = f"percentile of open interest within the last {w} bars"
    c = cfg.oi_crowding_window
    for ref in refs:
        r = ref.lower()
        out[f"oi_share_{r}"] = f"log(open interest / {ref}'s open interest on the same venue)"
        out[f"oi_share_{r}_chg_{c}h"] = f"change of oi_share_{r} over {c} bars"
    out[f"oi_up_price_down_{c}h"] = f"1 if OI rose and price fell over {c} bars (longs piling in)"
    out[f"oi_up_price_up_{c}h"] = f"1 if OI rose and price rose over {c} bars (crowded longs)"
    out[f"oi_price_div_{c}h"] = f"oi_chg_{c}h minus the price log return over {c} bars"
    return out


def _delay(series: EventSeries, cfg: FeatureConfig) -> pd.Timedelta:
    end = series.delta if series.interval in cfg.oi_period_end_intervals else pd.Timedelta(0)
    return end + pd.Timedelta(cfg.oi_lag)


def oi_value(inputs: FeatureInputs, series_list: list[EventSeries], close: pd.Series,
             cfg: FeatureConfig) -> pd.Series:
    """Open interest value on the bar grid, finest interval first, as-of its availability."""
    frames = []
    for series in series_list:
        cols = [c for c in ("open_interest_value", "open_interest") if c in series.frame]
        joined = asof_join(inputs.bars.index, series.frame, bar_interval=inputs.bar_interval,
                           delay=_delay(series, cfg), columns=cols,
                           max_age=series.delta * cfg.oi_max_age_intervals)
        value = joined.get("open_interest_value", pd.Series(np.nan, index=joined.index))
        if "open_interest" in joined:
            value = value.fillna(joined["open_interest"] * close)
        frames.append(pd.DataFrame({_KEY: value}))
    return coalesce_rows(frames, _KEY)[_KEY].astype(float)


def _venue_features(inputs: FeatureInputs, venue: str, cfg: FeatureConfig,
                    names: list[str]) -> pd.DataFrame:
    index = inputs.bars.index
    per_symbol = inputs.open_interest.get(venue, {})
    if inputs.symbol not in per_symbol:
        return pd.DataFrame(index=index, columns=[_KEY, *names], dtype=float)
    bars = inputs.bars
    value = oi_value(inputs, per_symbol[inputs.symbol], bars["close"], cfg)
    log_oi = safe_log(value)
    out: dict[str, pd.Series] = {_KEY: value}
    for w in cfg.oi_change_windows:
        out[f"oi_chg_{w}h"] = log_oi - log_oi.shift(w)
    quote = bars["quote_volume"] if "quote_volume" in bars else bars["volume"] * bars["close"]
    if IS_SPOT in bars:  # spot volume is another market's: no 24h sum reaches into it
        quote = quote.where(bars[IS_SPOT] != 1.0)
    qv24 = quote.rolling(24, min_periods=24).sum()
    out["oi_to_volume_24h"] = value / qv24.where(qv24 > 0)
    for w in cfg.oi_z_windows:
        out[f"oi_z_{w}h"] = rolling_z(log_oi, w, cfg.min_periods_frac)
        out[f"oi_pct_{w}h"] = rolling_pct(log_oi, w, cfg.min_periods_frac)
    c = cfg.oi_crowding_window
    for ref in inputs.refs:
        r = ref.lower()
        if ref in per_symbol:
            ref_value = oi_value(inputs, per_symbol[ref], ref_close(inputs, ref), cfg)
            share = log_oi - safe_log(ref_value)
        else:
            share = pd.Series(np.nan, index=index)
        out[f"oi_share_{r}"] = share
        out[f"oi_share_{r}_chg_{c}h"] = share - share.shift(c)
    oi_chg = log_oi - log_oi.shift(c)
    price_chg = log_return(bars["close"]).rolling(c, min_periods=c).sum()
    out[f"oi_up_price_down_{c}h"] = flag((oi_chg > 0) & (price_chg < 0), oi_chg, price_chg)
    out[f"oi_up_price_up_{c}h"] = flag((oi_chg > 0) & (price_chg > 0), oi_chg, price_chg)
    out[f"oi_price_div_{c}h"] = oi_chg - price_chg
    return pd.DataFrame(out, index=index)


def compute(inputs: FeatureInputs, cfg: FeatureConfig) -> pd.DataFrame:
    names = list(describe(cfg, list(inputs.refs)))
    frames = [_venue_features(inputs, v, cfg, names) for v in cfg.oi_venues]
    return coalesce_rows(frames, _KEY).reindex(columns=names).astype(float)
