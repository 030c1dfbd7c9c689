"""Market-state features: one value per timestamp, shared by every row of the panel at that time.

BTC/ETH state (their own scale-free volatility, trend and drawdown) and the breadth of the
universe (share of perps in drawdown, median volatility ratio, funding dispersion and extremes,
liquidation pressure where data exist). Each value at t is an aggregate of the rows AT t only,
whose inputs use bars up to t: appending rows after t, to any symbol, moves no value at t.
Breadth is taken over ``core`` symbols (the held-out symbols excluded) so left-out perps
influence nothing a panel model trains on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.panel.config import PanelConfig

STATE_COLUMNS = ("d", "w", "zret_24h", "zret_168h", "drawdown_720h")


def market_state(frame: pd.DataFrame, core: list[str], cfg: PanelConfig) -> pd.DataFrame:
    """Market columns indexed by timestamp, from the stacked rows of the ``core`` symbols."""
    rows = frame[frame["symbol"].isin(core)]
    groups = rows.groupby("timestamp", sort=True)
    out = pd.DataFrame(index=pd.DatetimeIndex(sorted(rows["timestamp"].unique()),
                                              name="timestamp"))
    out["mkt_n"] = groups.size().astype(float)
    dd = (rows["drawdown_720h"] < -cfg.drawdown_threshold).astype(float)
    dd = dd.where(rows["drawdown_720h"].notna())
    out["mkt_share_drawdown"] = dd.groupby(rows["timestamp"]).mean()
    out["mkt_median_d"] = groups["d"].median()
    out["mkt_median_w"] = groups["w"].median()
    out["mkt_median_zret_24h"] = groups["zret_24h"].median()
    out["mkt_dispersion_zret_24h"] = groups["zret_24h"].std()
    if "funding_8h" in rows:
        out["mkt_funding_dispersion"] = groups["funding_8h"].std()
        out["mkt_funding_median"] = groups["funding_8h"].median()
    if "funding_z_168h" in rows:
        z = rows["funding_z_168h"]
        hot = (z.abs() > cfg.funding_extreme_z).astype(float).where(z.notna())
        out["mkt_share_funding_extreme"] = hot.groupby(rows["timestamp"]).mean()
        out["mkt_funding_z_max"] = groups["funding_z_168h"].max()
        out["mkt_funding_z_min"] = groups["funding_z_168h"].min()
    if "liq_z_30d" in rows:
        out["mkt_liq_z_mean"] = groups["liq_z_30d"].mean()
    for sym in cfg.market_symbols:
        own = rows[rows["symbol"] == sym].set_index("timestamp")
        for c in STATE_COLUMNS:
            if c in own:
                out[f"mkt_{sym.lower()}_{c}"] = own[c].reindex(out.index)
    return out.astype(float).replace([np.inf, -np.inf], np.nan)
