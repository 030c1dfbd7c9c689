"""Each family computes what its name says, and missing inputs give NaN columns (never zeros)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from feature_factories import make_bars, make_events, make_inputs

from cascade_ml.features import (
    correlation,
    funding,
    liquidations,
    open_interest,
    sentiment,
    volatility,
    volume,
)
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import EventSeries, FeatureInputs
from cascade_ml.features.registry import compute_families, feature_specs

CFG = FeatureConfig()
INPUTS = make_inputs(n=1000, seed=7)
FIXED = ["ret_1h", "rv_1h", "rv_24h", "rv_168h", "rv_720h", "beta_btc_168h", "beta_eth_168h",
         "corr_btc_168h", "corr_eth_168h", "trigger_funding_divergence",
         "trigger_sentiment_spike", "trigger_volume_breakdown"]


def test_default_config_produces_the_fixed_column_names():
    table = compute_families(INPUTS, CFG)
    assert set(FIXED) <= set(table.columns)
    assert list(table.columns) == [s.name for s in feature_specs(CFG, ["BTC", "ETH"])]
    assert table.index.equals(INPUTS.bars.index) and table.index.name == "timestamp"


def test_realized_variance_is_the_sum_of_squared_log_returns():
    out = volatility.compute(INPUTS, CFG)
    close = INPUTS.bars["close"].to_numpy()
    r = np.diff(np.log(close))
    t = 500
    assert out["ret_1h"].iloc[t] == pytest.approx(r[t - 1])
    assert out["rv_24h"].iloc[t] == pytest.approx(np.sum(r[t - 24:t] ** 2))
    assert out["rv_168h"].iloc[t] == pytest.approx(np.sum(r[t - 168:t] ** 2))
    assert np.isnan(out["rv_720h"].iloc[t])  # window not full yet
    assert out["rv_720h"].iloc[800] == pytest.approx(np.sum(r[800 - 720:800] ** 2))
    assert ((out["semivar_asym_24h"].dropna().abs()) <= 1 + 1e-12).all()
    assert (out["jump_24h"].dropna() >= 0).all()


def test_beta_and_correlation_match_numpy():
    out = correlation.compute(INPUTS, CFG)
    t, w = 700, 168
    y = np.diff(np.log(INPUTS.bars["close"].to_numpy()))[t - w:t]
    x = np.diff(np.log(INPUTS.refs["BTC"]["close"].to_numpy()))[t - w:t]
    assert out["corr_btc_168h"].iloc[t] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert out["beta_btc_168h"].iloc[t] == pytest.approx(np.cov(x, y)[0, 1] / np.var(x, ddof=1))


def test_beta_is_one_against_itself():
    inputs = replace(INPUTS, refs={"BTC": INPUTS.bars})
    out = correlation.compute(inputs, FeatureConfig(corr_windows=[168]))
    assert np.allclose(out["beta_btc_168h"].dropna(), 1.0)
    assert np.allclose(out["corr_btc_168h"].dropna(), 1.0)


def test_funding_divergence_is_the_same_venue_difference_in_8h_units():
    out = funding.compute(INPUTS, CFG)
    assert np.allclose(out["funding_div_btc"].dropna(),
                       (out["funding_8h"] - _binance_8h(INPUTS, "BTC")).dropna())
    fired = out["trigger_funding_divergence"]
    assert set(fired.dropna().unique()) <= {0.0, 1.0}
    z = out[["funding_div_btc_z_72h", "funding_div_eth_z_72h"]].max(axis=1)
    assert ((fired == 1.0) == (z >= 2.0)).all()  # fires at a divergence of 2 sigma


def _binance_8h(inputs: FeatureInputs, symbol: str) -> pd.Series:
    rates = inputs.funding["binance"][symbol].frame["funding_rate"]
    avail = rates.copy()
    avail.index = avail.index - pd.Timedelta("1h")  # settlement at s is on row s - 1h
    return avail.reindex(inputs.bars.index, method="ffill")


def test_funding_falls_back_to_the_next_venue_in_hourly_units():
    binance = INPUTS.funding["binance"]
    cut = INPUTS.bars.index[600]
    short = {s: replace(e, frame=e.frame[e.frame.index <= cut]) for s, e in binance.items()}
    inputs = replace(INPUTS, funding={"binance": short,
                                      "hyperliquid": INPUTS.funding["hyperliquid"]})
    out = funding.compute(inputs, CFG)
    late = out.index > cut + pd.Timedelta("2D")
    hl = INPUTS.funding["hyperliquid"]["NEAR"].frame["funding_rate"]
    row = out.index[late][5]
    assert out.loc[row, "funding_8h"] == pytest.approx(hl.loc[row + pd.Timedelta("1h")] * 8)
    assert out.loc[row, "funding_hours_since"] == 0.0
    # the divergence on that row uses Hyperliquid's BTC rate, not the stale Binance one
    hl_btc = INPUTS.funding["hyperliquid"]["BTC"].frame["funding_rate"]
    assert out.loc[row, "funding_div_btc"] == pytest.approx(
        8 * (hl.loc[row + pd.Timedelta("1h")] - hl_btc.loc[row + pd.Timedelta("1h")]))


def test_cumulative_funding_sums_the_settlements_of_the_window():
    out = funding.compute(replace(INPUTS, funding={"binance": INPUTS.funding["binance"]}), CFG)
    rates = INPUTS.funding["binance"]["NEAR"].frame["funding_rate"]
    row = INPUTS.bars.index[400]
    close = row + pd.Timedelta("1h")
    want = rates[(rates.index > close - pd.Timedelta("24h")) & (rates.index <= close)].sum()
    assert out.loc[row, "funding_cum_24h"] == pytest.approx(want)


def test_volume_breakdown_uses_support_from_earlier_bars():
    bars = make_bars(300, 11)
    t = 250
    bars.iloc[t, bars.columns.get_loc("close")] = bars["low"].iloc[t - 72:t].min() * 0.95
    bars.iloc[t, bars.columns.get_loc("low")] = bars["close"].iloc[t] * 0.99
    bars.iloc[t, bars.columns.get_loc("volume")] = bars["volume"].iloc[t - 24:t].mean() * 5
    out = volume.compute(FeatureInputs("NEAR", bars), CFG)
    assert out["break_support_72h"].iloc[t] == 1.0
    assert out["trigger_volume_breakdown"].iloc[t] == 1.0
    assert out["dist_support_72h"].iloc[t] == pytest.approx(np.log(0.95))
    assert out["volume_ratio_24h"].iloc[t] == pytest.approx(5.0)
    assert np.isnan(out["trigger_volume_breakdown"].iloc[10])  # no 72-bar support yet
    assert out["trigger_volume_breakdown"].iloc[100:t].mean() < 0.1


def test_sentiment_spike_prefers_mentions_and_falls_back_to_greed_after_a_run_up():
    out = sentiment.compute(INPUTS, CFG)
    z, run = out["mentions_z_30d"], out["ret_168h"]
    both = z.notna() & run.notna()
    want = ((z >= 2.0) & (run <= 0)).astype(float)
    assert (out.loc[both, "trigger_sentiment_spike"] == want[both]).all()
    no_mentions = replace(INPUTS, sentiment={"MARKET": INPUTS.sentiment["MARKET"]})
    out = sentiment.compute(no_mentions, CFG)
    assert out["mentions_z_30d"].isna().all()
    ok = out["fng_score"].notna() & out["ret_168h"].notna()
    want = ((out["fng_score"] >= 75) & (out["ret_168h"] >= 0.10)).astype(float)
    assert ok.sum() > 100 and (out.loc[ok, "trigger_sentiment_spike"] == want[ok]).all()


def test_open_interest_share_and_crowding():
    out = open_interest.compute(INPUTS, CFG)
    assert out["oi_chg_4h"].notna().sum() > 500
    assert set(out["oi_up_price_down_24h"].dropna().unique()) <= {0.0, 1.0}
    both = out["oi_up_price_down_24h"] + out["oi_up_price_up_24h"]
    assert (both.dropna() <= 1.0).all()
    assert out["oi_share_btc"].notna().sum() > 500


def test_hourly_open_interest_is_used_when_supplied():
    hourly_idx = INPUTS.bars.index + pd.Timedelta("1h")
    values = np.linspace(1e7, 2e7, len(hourly_idx))
    hourly = EventSeries(make_events(hourly_idx, {"open_interest_value": values}), "1h")
    richer = replace(INPUTS, open_interest={"binance": {
        "NEAR": [hourly, *INPUTS.open_interest["binance"]["NEAR"]]}})
    out = open_interest.compute(richer, CFG)
    assert out["oi_chg_4h"].iloc[300] == pytest.approx(np.log(values[300] / values[296]))


def test_liquidation_ratio_against_previous_periods():
    out = liquidations.compute(INPUTS, CFG)
    total = INPUTS.liquidations["NEAR"].frame["total_notional"]
    day = total.index[35]
    row = day + pd.Timedelta("1D") - pd.Timedelta("1h")  # closes when day ends
    assert out.loc[row, "liq_ratio_30d"] == pytest.approx(
        total.iloc[35] / total.iloc[5:35].median())


def test_missing_datasets_give_nan_columns_not_zeros():
    bare = FeatureInputs("NEAR", INPUTS.bars, refs=INPUTS.refs)
    table = compute_families(bare, CFG)
    ext = [s.name for s in feature_specs(CFG, ["BTC", "ETH"])
           if s.family in ("funding", "open_interest", "liquidations")]
    ext += ["fng_score", "mentions_z_30d", "trigger_sentiment_spike"]
    assert table[ext].isna().all().all()
    assert table["rv_24h"].notna().any() and table["trigger_volume_breakdown"].notna().any()


def test_reference_bar_gap_is_missing_not_stale():
    btc = INPUTS.refs["BTC"].drop(index=INPUTS.bars.index[300])
    out = volatility.compute(replace(INPUTS, refs={"BTC": btc}), FeatureConfig(rv_windows=[1, 24]))
    assert np.isnan(out["btc_rv_24h"].iloc[300]) and np.isnan(out["btc_rv_24h"].iloc[323])
    assert not np.isnan(out["btc_rv_24h"].iloc[326])


def test_windows_and_families_are_configuration():
    cfg = FeatureConfig(families=["volatility", "volume"], rv_windows=[1, 12], range_windows=[6],
                        support_windows=[10], volume_windows=[5])
    table = compute_families(INPUTS, cfg)
    assert {"rv_12h", "parkinson_6h", "dist_support_10h", "volume_z_5h"} <= set(table.columns)
    assert not {"rv_720h", "funding_8h", "corr_btc_168h"} & set(table.columns)
    assert cfg.max_window() == 12
    with pytest.raises(ValueError, match="unknown feature family"):
        FeatureConfig(families=["volatility", "astrology"])
    with pytest.raises(ValueError, match=">= 1 bar"):
        FeatureConfig(rv_windows=[0, 24])
