"""Features on a spliced long history: perp-only families stay missing on spot rows, volume
windows never mix the two markets, and appending the future changes no past value."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feature_factories import make_bars, make_events, make_inputs

from cascade_ml.contracts.columns import IS_SPOT
from cascade_ml.contracts.layout import features_path, manifest_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.history import splice_bars
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.features.build import build_and_store
from cascade_ml.features.config import PERP_ONLY_FAMILIES, FeatureConfig
from cascade_ml.features.inputs import FeatureInputs
from cascade_ml.features.pit import find_lookahead
from cascade_ml.features.registry import compute_families, feature_specs

SWITCH = 800  # bars 0..799 spot, 800.. perp


def spliced(inputs: FeatureInputs, spot_volume: float = 4.0) -> FeatureInputs:
    """The same candles, the first SWITCH bars relabelled as spot (volume x ``spot_volume``)."""
    def cut(frame: pd.DataFrame) -> pd.DataFrame:
        spot = frame.iloc[:SWITCH].assign(volume=frame["volume"].iloc[:SWITCH] * spot_volume)
        return splice_bars(frame.iloc[SWITCH:], spot)

    return replace(inputs, bars=cut(inputs.bars), refs={k: cut(v) for k, v in inputs.refs.items()})


@pytest.fixture(scope="module")
def cfg() -> FeatureConfig:
    return FeatureConfig()


@pytest.fixture(scope="module")
def base() -> FeatureInputs:
    return make_inputs(1400, seed=3)


def test_perp_only_families_are_nan_on_spot_rows(base: FeatureInputs, cfg: FeatureConfig) -> None:
    """The factory has funding, OI, liquidations and depth over the whole span: unspliced they
    are known on early rows; spliced, every perp-only column is NaN on each spot row (never 0)
    and known again on the perp's rows."""
    plain = compute_families(base, cfg)
    out = compute_families(spliced(base), cfg)
    perp_only = [s.name for s in feature_specs(cfg, list(base.refs))
                 if s.family in PERP_ONLY_FAMILIES]
    assert len(perp_only) > 20
    spot_rows = out.index[:SWITCH]
    assert plain.loc[spot_rows[200:], "funding_z_168h"].notna().any()
    assert out.loc[spot_rows, perp_only].isna().all().all()
    assert out.loc[out.index[SWITCH:], perp_only].notna().any().sum() == \
        plain.loc[plain.index[SWITCH:], perp_only].notna().any().sum()
    assert out[IS_SPOT].tolist() == [1.0] * SWITCH + [0.0] * (len(out) - SWITCH)
    assert list(out.columns[:-1]) == list(plain.columns) and out.columns[-1] == IS_SPOT
    # price families are the same candles: untouched by the splice
    pd.testing.assert_series_equal(out["rv_168h"], plain["rv_168h"])


def test_volume_windows_never_mix_spot_and_perp(base: FeatureInputs, cfg: FeatureConfig) -> None:
    """After the switch the 24-bar volume ratio restarts (NaN until 12 perp bars, the window's
    min periods), and perp-era volume features do not move when spot volume is scaled 10x."""
    a = compute_families(spliced(base, spot_volume=1.0), cfg)
    b = compute_families(spliced(base, spot_volume=10.0), cfg)
    first = a.index[SWITCH]
    assert np.isnan(a.loc[first, "volume_ratio_24h"])
    assert a["volume_ratio_24h"].iloc[SWITCH + 13:SWITCH + 30].notna().all()
    cols = [c for c in a.columns if c.startswith(("volume_", "trigger_volume"))]
    pd.testing.assert_frame_equal(a.loc[a.index[SWITCH:], cols], b.loc[b.index[SWITCH:], cols])
    plain = compute_families(base, cfg)
    assert np.isfinite(plain.loc[first, "volume_ratio_24h"])  # unspliced, the window runs on


@pytest.mark.parametrize("cutoff", [SWITCH - 50, SWITCH - 1, SWITCH, SWITCH + 100])
def test_spliced_features_are_point_in_time(base: FeatureInputs, cfg: FeatureConfig,
                                            cutoff: int) -> None:
    """Appending a wild future (another seed's candles, spliced at the same bar) changes no
    value at or before the cut-off, before, at and after the switch."""
    inputs = spliced(base)
    future = spliced(make_inputs(1400, seed=11))
    ts = inputs.bars.index[cutoff]
    assert find_lookahead(lambda x: compute_families(x, cfg), inputs, future, ts) == {}


def test_the_feature_step_reads_the_spliced_history_from_the_store(tmp_path: Path) -> None:
    """build_and_store with task.spot_venue: the table starts at the first spot bar, funding
    (stored over the whole span) is NaN on spot rows, the manifest records the spot partition;
    without it the table starts at the perp's first bar and has no is_spot column."""
    bars = make_bars(2000, seed=5)
    store = MarketStore(tmp_path / "store")
    store.write(PartitionKey("ohlcv", "binance_spot", "ADA", "1h"), bars.iloc[:SWITCH])
    store.write(PartitionKey("ohlcv", "binance", "ADA", "1h"), bars.iloc[SWITCH:])
    f8 = bars.index[::8]
    store.write(PartitionKey("funding", "binance", "ADA", "8h"),
                make_events(f8, {"funding_rate": np.linspace(-1e-4, 3e-4, len(f8))}))
    cfg = FeatureConfig(families=["volatility", "funding", "volume"], funding_venues=["binance"])
    task = TaskConfig(symbols=["ADA"], references=[], spot_venue="binance_spot")
    result = build_and_store(store, "ADA", task, cfg)
    table = store.read_table(features_path("ADA"))
    assert result.rows == 2000 and table.index[0] == bars.index[0]
    assert table[IS_SPOT].sum() == SWITCH
    assert table["funding_z_168h"].iloc[:SWITCH].isna().all()
    assert table["funding_z_168h"].iloc[SWITCH + 200:].notna().all()
    manifest = (store.root / manifest_path(features_path("ADA"))).read_text()
    assert "ohlcv/venue=binance_spot/symbol=ADA" in manifest
    plain = build_and_store(store, "ADA", TaskConfig(symbols=["ADA"], references=[]), cfg)
    table = store.read_table(features_path("ADA"))
    assert plain.rows == 2000 - SWITCH and IS_SPOT not in table
