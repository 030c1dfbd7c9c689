"""Volume breakdowns: close breaking the prior N-bar low on volume well above its norm.

Support and volume norms come from bars BEFORE t, so bar t can break them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import IS_SPOT
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import FeatureInputs
from cascade_ml.features.stats import flag, min_periods, rolling_z, safe_log

FAMILY = "volume"


def describe(cfg: FeatureConfig, refs: list[str]) -> dict[str, str]:
    out = {}
    for n in cfg.support_windows:
        out[f"dist_support_{n}h"] = f"log(close / lowest low of the previous {n} bars)"
        out[f"break_support_{n}h"] = f"1 if close is below the previous {n} bars' lowest low"
    for w in cfg.volume_windows:
        out[f"volume_z_{w}h"] = f"z-score of log volume vs the previous {w} bars"
        out[f"volume_ratio_{w}h"] = f"volume / mean volume of the previous {w} bars"
        out[f"range_ratio_{w}h"] = f"log(bar range / mean range of the previous {w} bars)"
    n0, w0 = cfg.support_windows[0], cfg.volume_windows[0]
    out["trigger_volume_breakdown"] = (
        f"1 if close breaks the {n0}-bar support on volume >= {cfg.breakdown_volume_ratio}x "
        f"its {w0}-bar mean")
    return out


def compute(inputs: FeatureInputs, cfg: FeatureConfig) -> pd.DataFrame:
    """The family on the target's bars; on spliced bars each market's run of bars separately,
    so no window compares spot volume with perp volume (the perp's windows restart at its
    first bar and are NaN until they fill)."""
    bars = inputs.bars
    if IS_SPOT not in bars or bars.empty:
        return _compute(bars, cfg)
    market = bars[IS_SPOT].to_numpy(float)
    run = np.concatenate([[0], np.cumsum(market[1:] != market[:-1])])
    return pd.concat([_compute(bars.iloc[run == k], cfg) for k in np.unique(run)])


def _compute(bars: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    close, volume = bars["close"], bars["volume"]
    out: dict[str, pd.Series] = {}
    supports = {}
    for n in cfg.support_windows:
        support = bars["low"].shift(1).rolling(n, min_periods=n).min()
        supports[n] = support
        out[f"dist_support_{n}h"] = np.log(close / support)
        out[f"break_support_{n}h"] = flag(close < support, support)
    log_vol = np.log1p(volume)
    rng = (bars["high"] - bars["low"]) / close
    ratios = {}
    for w in cfg.volume_windows:
        mp = min_periods(w, cfg.min_periods_frac)
        mean_vol = volume.shift(1).rolling(w, min_periods=mp).mean()
        ratios[w] = volume / mean_vol.where(mean_vol > 0)
        out[f"volume_z_{w}h"] = rolling_z(log_vol, w, cfg.min_periods_frac, prior=True)
        out[f"volume_ratio_{w}h"] = ratios[w]
        mean_rng = rng.shift(1).rolling(w, min_periods=mp).mean()
        out[f"range_ratio_{w}h"] = safe_log(rng / mean_rng.where(mean_rng > 0))
    n0, w0 = cfg.support_windows[0], cfg.volume_windows[0]
    fired = (close < supports[n0]) & (ratios[w0] >= cfg.breakdown_volume_ratio)
    out["trigger_volume_breakdown"] = flag(fired, supports[n0], ratios[w0])
    return pd.DataFrame(out, index=bars.index)
