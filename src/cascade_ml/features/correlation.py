"""Rolling correlation and beta of the target's 1-bar returns to each reference market."""

from __future__ import annotations

import pandas as pd

from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import FeatureInputs
from cascade_ml.features.refs import ref_close
from cascade_ml.features.stats import log_return, min_periods

FAMILY = "correlation"


def describe(cfg: FeatureConfig, refs: list[str]) -> dict[str, str]:
    out = {}
    lag = cfg.corr_change_lag
    for ref in refs:
        r = ref.lower()
        for w in cfg.corr_windows:
            out[f"corr_{r}_{w}h"] = f"correlation of 1-bar log returns with {ref} over {w} bars"
            out[f"beta_{r}_{w}h"] = f"beta (cov / var of {ref}) over {w} bars"
            out[f"corr_{r}_{w}h_chg"] = f"corr_{r}_{w}h minus its value {lag} bars earlier"
            out[f"beta_{r}_{w}h_chg"] = f"beta_{r}_{w}h minus its value {lag} bars earlier"
    return out


def compute(inputs: FeatureInputs, cfg: FeatureConfig) -> pd.DataFrame:
    ret = log_return(inputs.bars["close"])
    out: dict[str, pd.Series] = {}
    for ref in inputs.refs:
        r = ref.lower()
        ref_ret = log_return(ref_close(inputs, ref))
        for w in cfg.corr_windows:
            mp = min_periods(w, cfg.min_periods_frac)
            corr = ret.rolling(w, min_periods=mp).corr(ref_ret)
            var = ref_ret.rolling(w, min_periods=mp).var()
            beta = ret.rolling(w, min_periods=mp).cov(ref_ret) / var.where(var > 0)
            out[f"corr_{r}_{w}h"] = corr
            out[f"beta_{r}_{w}h"] = beta
            out[f"corr_{r}_{w}h_chg"] = corr - corr.shift(cfg.corr_change_lag)
            out[f"beta_{r}_{w}h_chg"] = beta - beta.shift(cfg.corr_change_lag)
    return pd.DataFrame(out, index=inputs.bars.index)
