"""Order-book depth: liquidity near the mid relative to its own recent norm, and its imbalance.

Thin books turn forced selling into cascades, so what matters is depth compared with what is
usual for the same market, not its level. Snapshots (``depth`` dataset, stamped at snapshot
time) are first averaged over the bar length on their own timeline (a 1-minute snapshot is
noisy), then as-of joined: the row ``t`` sees the mean of the snapshots taken in the hour before
its close. A snapshot older than ``depth_max_age`` at the close counts as missing, and so does a
market with no depth data: the columns are NaN, never 0. Several partitions (e.g. Binance Vision
1m and hourly exchange snapshots) are coalesced row by row, finest first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.features.asof import asof_join, coalesce_rows
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import EventSeries, FeatureInputs
from cascade_ml.features.stats import min_periods, safe_log

FAMILY = "depth"
_BANDS = ("bid_notional_1pct", "ask_notional_1pct", "bid_notional_5pct", "ask_notional_5pct")
_KEY = "_depth_seen"


def describe(cfg: FeatureConfig, refs: list[str]) -> dict[str, str]:
    w = cfg.depth_norm_window
    return {
        f"depth_1pct_ratio_{w}h": "log(quote notional resting within 1% of the mid, both "
                                  f"sides) minus the log of its median over the previous {w} "
                                  "bars",
        f"depth_5pct_ratio_{w}h": f"the same within 5% of the mid vs its previous-{w}-bar median",
        "depth_1pct_imbalance": "(bid - ask) / (bid + ask) notional within 1% of the mid",
    }


def _on_bars(inputs: FeatureInputs, series: EventSeries, cfg: FeatureConfig) -> pd.DataFrame:
    """One partition's bands averaged over the trailing bar length, as of each bar's close."""
    frame = series.frame.reindex(columns=list(_BANDS)).astype(float)
    smoothed = frame.rolling(inputs.bar_interval).mean()  # snapshots in (s - bar, s]
    smoothed[_KEY] = np.where(smoothed[list(_BANDS)].notna().any(axis=1), 1.0, np.nan)
    return asof_join(inputs.bars.index, smoothed, bar_interval=inputs.bar_interval,
                     max_age=pd.Timedelta(cfg.depth_max_age), columns=[*_BANDS, _KEY])


def _ratio(total: pd.Series, window: int, frac: float) -> pd.Series:
    """log(total) minus the log of its median over the previous ``window`` rows."""
    log_total = safe_log(total)
    norm = log_total.shift(1).rolling(window, min_periods=min_periods(window, frac)).median()
    return log_total - norm


def compute(inputs: FeatureInputs, cfg: FeatureConfig) -> pd.DataFrame:
    names = list(describe(cfg, list(inputs.refs)))
    index = inputs.bars.index
    series_list = sorted(inputs.depth.get(inputs.symbol, []), key=lambda s: s.delta)
    if not series_list:
        return pd.DataFrame(np.nan, index=index, columns=names)
    joined = coalesce_rows([_on_bars(inputs, s, cfg) for s in series_list], _KEY)
    bid1, ask1 = joined["bid_notional_1pct"], joined["ask_notional_1pct"]
    both1 = bid1 + ask1
    both5 = joined["bid_notional_5pct"] + joined["ask_notional_5pct"]
    w = cfg.depth_norm_window
    out = {
        names[0]: _ratio(both1, w, cfg.min_periods_frac),
        names[1]: _ratio(both5, w, cfg.min_periods_frac),
        names[2]: (bid1 - ask1) / both1.where(both1 > 0),
    }
    return pd.DataFrame(out, index=index).astype(float)
