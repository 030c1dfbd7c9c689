"""Realized variance (HAR components), range estimators, semivariances, jumps, reference vol.

All windows end at bar ``t`` inclusive: bar t's high, low and close are known at its close.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import FeatureInputs
from cascade_ml.features.refs import ref_close
from cascade_ml.features.stats import log_return, safe_log

FAMILY = "volatility"
_LN2 = np.log(2.0)


def describe(cfg: FeatureConfig, refs: list[str]) -> dict[str, str]:
    out = {"ret_1h": "log return of bar t (close_t / close_t-1)"}
    for w in cfg.rv_windows:
        out[f"rv_{w}h"] = f"realized variance: sum of squared 1-bar log returns, last {w} bars"
        out[f"log_rv_{w}h"] = f"log of rv_{w}h"
    for w in cfg.range_windows:
        out[f"parkinson_{w}h"] = f"Parkinson high-low variance summed over {w} bars"
        out[f"garman_klass_{w}h"] = f"Garman-Klass OHLC variance summed over {w} bars"
        out[f"rs_neg_{w}h"] = f"downside semivariance (squared negative returns) over {w} bars"
        out[f"rs_pos_{w}h"] = f"upside semivariance over {w} bars"
        out[f"semivar_asym_{w}h"] = f"(rs_neg - rs_pos) / rv over {w} bars, in [-1, 1]"
        out[f"jump_{w}h"] = f"jump share max(rv - bipower, 0) / rv over {w} bars"
    if 24 in cfg.rv_windows and 168 in cfg.rv_windows:
        out["rv_ratio_24_168"] = "log(7 * rv_24h / rv_168h): short-term vs weekly variance"
    for ref in refs:
        r = ref.lower()
        for w in cfg.rv_windows:
            if w > 1:
                out[f"{r}_rv_{w}h"] = f"{ref} realized variance over {w} bars"
    return out


def rolling_rv(ret: pd.Series, window: int) -> pd.Series:
    """Sum of squared returns over the last ``window`` bars (t inclusive), full windows only:
    the ``rv_<N>h`` features and the policy's trailing vol reference are both this."""
    sq = ret**2
    return sq if window == 1 else sq.rolling(window, min_periods=window).sum()


def realized(ret: pd.Series, cfg: FeatureConfig, prefix: str = "") -> dict[str, pd.Series]:
    """rv_N = sum of squared returns over the last N bars, full windows only."""
    out = {}
    for w in cfg.rv_windows:
        rv = rolling_rv(ret, w)
        out[f"{prefix}rv_{w}h"] = rv
        if not prefix:
            out[f"log_rv_{w}h"] = safe_log(rv)
    return out


def compute(inputs: FeatureInputs, cfg: FeatureConfig) -> pd.DataFrame:
    bars = inputs.bars
    ret = log_return(bars["close"])
    out: dict[str, pd.Series] = {"ret_1h": ret, **realized(ret, cfg)}
    hl = np.log(bars["high"] / bars["low"])
    co = np.log(bars["close"] / bars["open"])
    park = hl**2 / (4 * _LN2)
    gk = 0.5 * hl**2 - (2 * _LN2 - 1) * co**2
    neg, pos = (ret.clip(upper=0)) ** 2, (ret.clip(lower=0)) ** 2
    bipower = (np.pi / 2) * ret.abs() * ret.abs().shift(1)
    for w in cfg.range_windows:
        def roll(s: pd.Series, w: int = w) -> pd.Series:
            return s.rolling(w, min_periods=w).sum()

        rv = roll(ret**2)
        rv_ok = rv.where(rv > 0)
        out[f"parkinson_{w}h"] = roll(park)
        out[f"garman_klass_{w}h"] = roll(gk)
        rn, rp = roll(neg), roll(pos)
        out[f"rs_neg_{w}h"] = rn
        out[f"rs_pos_{w}h"] = rp
        out[f"semivar_asym_{w}h"] = (rn - rp) / rv_ok
        out[f"jump_{w}h"] = (rv - roll(bipower)).clip(lower=0) / rv_ok
    if 24 in cfg.rv_windows and 168 in cfg.rv_windows:
        out["rv_ratio_24_168"] = safe_log(7 * out["rv_24h"] / out["rv_168h"])
    for ref in inputs.refs:
        close = ref_close(inputs, ref)
        ref_rv = realized(log_return(close), cfg, prefix=f"{ref.lower()}_")
        out.update({k: v for k, v in ref_rv.items() if not k.endswith("_rv_1h")})
    return pd.DataFrame(out, index=bars.index)
