"""Point-in-time proof: appending (extreme) future rows never changes any past feature value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from feature_factories import extreme_future, make_inputs

from cascade_ml.features.config import FAMILIES, FeatureConfig
from cascade_ml.features.inputs import FeatureInputs
from cascade_ml.features.pit import find_lookahead
from cascade_ml.features.registry import FAMILY_MODULES, compute_families

CFG = FeatureConfig(rv_windows=[1, 24, 168], corr_windows=[168], funding_z_windows=[24, 72],
                    funding_pct_window=168, oi_z_windows=[72], liquidation_norm_periods=10,
                    sentiment_z_periods=10)
INPUTS = make_inputs(n=900, seed=3)
# cut-offs at odd hours (mid-funding interval, mid-day) and on a day boundary
CUTOFFS = [INPUTS.bars.index[i] for i in (500, 611, 743)]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("cutoff", CUTOFFS, ids=["h500", "h611", "h743"])
def test_every_family_is_point_in_time(family: str, cutoff: pd.Timestamp):
    def compute(inputs: FeatureInputs) -> pd.DataFrame:
        return FAMILY_MODULES[family].compute(inputs, CFG)

    future = extreme_future(INPUTS, cutoff)
    assert find_lookahead(compute, INPUTS, future, cutoff) == {}
    # the check is not vacuous: the family produced values before the cut-off
    values = compute(INPUTS.truncate(cutoff))
    assert values.notna().any().any()


def test_whole_table_with_default_config_is_point_in_time():
    cutoff = INPUTS.bars.index[760]
    cfg = FeatureConfig(rv_windows=[1, 24, 168, 720])

    def compute(inputs: FeatureInputs) -> pd.DataFrame:
        return compute_families(inputs, cfg)

    assert find_lookahead(compute, INPUTS, extreme_future(INPUTS, cutoff), cutoff) == {}


def test_future_rows_do_change_later_values():
    """Sanity: the extreme future is visible after the cut-off (so the test above has teeth)."""
    cutoff = CUTOFFS[0]
    full = compute_families(extreme_future(INPUTS, cutoff), CFG)
    cut = compute_families(INPUTS, CFG)
    later = full.index > cutoff + pd.Timedelta("2D")
    for col in ("rv_24h", "funding_8h", "oi_z_72h", "fng_score", "liq_z_10d", "volume_z_24h"):
        assert not np.allclose(full.loc[later, col], cut.loc[later, col], equal_nan=True), col


def _leaky_family(inputs: FeatureInputs) -> pd.DataFrame:
    """A deliberately leaky feature: next bar's return (close shifted -1)."""
    close = inputs.bars["close"]
    return pd.DataFrame({"next_ret": np.log(close.shift(-1) / close)})


def _leaky_centered(inputs: FeatureInputs) -> pd.DataFrame:
    """A subtler leak: a centred rolling mean peeks 12 bars ahead."""
    return pd.DataFrame({"centered": inputs.bars["volume"].rolling(25, center=True).mean()})


def _leaky_funding_join(inputs: FeatureInputs) -> pd.DataFrame:
    """Funding joined on the bar's OPEN + 8h (a settlement known hours too early)."""
    series = inputs.funding["binance"]["NEAR"].frame["funding_rate"]
    shifted = series.copy()
    shifted.index = shifted.index - pd.Timedelta("8h")
    return pd.DataFrame({"early": shifted.reindex(inputs.bars.index, method="ffill")})


@pytest.mark.parametrize("leaky", [_leaky_family, _leaky_centered, _leaky_funding_join])
def test_checker_catches_leaky_features(leaky):
    cutoff = CUTOFFS[1]
    leaks = find_lookahead(leaky, INPUTS, extreme_future(INPUTS, cutoff), cutoff)
    assert len(leaks) == 1
    (when,) = leaks.values()
    assert cutoff - pd.Timedelta("13h") <= when <= cutoff


def test_labels_leak_if_used_as_features():
    """The forward label would fail the checker, which is why it lives in a separate table."""
    from cascade_ml.labels.build import build_labels
    from cascade_ml.labels.config import LabelConfig

    def as_feature(inputs: FeatureInputs) -> pd.DataFrame:
        return build_labels(inputs.bars, LabelConfig(), horizon=6)[["fwd_rv"]]

    cutoff = CUTOFFS[0]
    assert "fwd_rv" in find_lookahead(as_feature, INPUTS, extreme_future(INPUTS, cutoff), cutoff)
