"""Liquidations: the last completed period's liquidated notional vs its own rolling norm.

Daily totals are stamped at the day's start and usable only after the day ends plus
``liquidation_lag``. Norms use the PREVIOUS ``liquidation_norm_periods`` reported periods (days
with no row are "not reported", not zero, so a late report can never rewrite the past).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.features.asof import asof_join
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import FeatureInputs
from cascade_ml.features.stats import min_periods, rolling_z

FAMILY = "liquidations"


def describe(cfg: FeatureConfig, refs: list[str]) -> dict[str, str]:
    n = cfg.liquidation_norm_periods
    out = {
        f"liq_z_{n}d": f"z-score of log(1 + liquidated notional) vs the previous {n} periods",
        f"liq_ratio_{n}d": f"liquidated notional / median of the previous {n} periods",
    }
    for ref in refs:
        out[f"{ref.lower()}_liq_z_{n}d"] = f"{ref}'s liquidation z-score (market-wide stress)"
    return out


def _one(inputs: FeatureInputs, symbol: str, cfg: FeatureConfig) -> pd.DataFrame:
    n = cfg.liquidation_norm_periods
    series = inputs.liquidations.get(symbol)
    if series is None or series.frame.empty:
        return pd.DataFrame(np.nan, index=inputs.bars.index, columns=["z", "ratio"])
    total = series.frame["total_notional"]
    median = total.shift(1).rolling(n, min_periods=min_periods(n, cfg.min_periods_frac)).median()
    events = pd.DataFrame({"z": rolling_z(np.log1p(total), n, cfg.min_periods_frac, prior=True),
                           "ratio": total / median.where(median > 0)})
    return asof_join(inputs.bars.index, events, bar_interval=inputs.bar_interval,
                     delay=series.delta + pd.Timedelta(cfg.liquidation_lag),
                     max_age=2 * series.delta)


def compute(inputs: FeatureInputs, cfg: FeatureConfig) -> pd.DataFrame:
    n = cfg.liquidation_norm_periods
    own = _one(inputs, inputs.symbol, cfg)
    out = {f"liq_z_{n}d": own["z"], f"liq_ratio_{n}d": own["ratio"]}
    for ref in inputs.refs:
        out[f"{ref.lower()}_liq_z_{n}d"] = _one(inputs, ref, cfg)["z"]
    return pd.DataFrame(out, index=inputs.bars.index).astype(float)
