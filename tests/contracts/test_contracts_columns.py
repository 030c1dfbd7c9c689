"""The vocabulary names columns the feature layer really builds and paths the store holds."""

from __future__ import annotations

import pytest

from cascade_ml.config import PipelineConfig
from cascade_ml.contracts import columns, layout
from cascade_ml.data.store import MarketStore
from cascade_ml.features.build import build_features


def test_helpers_spell_names() -> None:
    assert columns.rv_column(168) == "rv_168h" and columns.rv_hours("rv_720h") == 720
    assert columns.beta_column("BTC", 168) == "beta_btc_168h"
    assert columns.corr_column("ETH", 720) == "corr_eth_720h"
    assert columns.quantile_key(0.99) == "var_q99" and columns.quantile_key(0.5) == "var_q50"
    assert columns.baseline_var("har") == "var_har"
    with pytest.raises(ValueError, match="not a realized-variance column"):
        columns.rv_hours("log_rv_24h")
    assert layout.labels_path("NEAR", 12) == "labels/symbol=NEAR/h=12/labels.parquet"
    assert layout.manifest_path(layout.features_path("BTC")) == "features/symbol=BTC/manifest.json"


def test_built_features_hold_every_name_other_layers_read(sample_store: MarketStore) -> None:
    config = PipelineConfig()
    table = build_features(sample_store, "NEAR", config.task, config.features,
                           start="2026-03-01", end="2026-03-02")
    wanted = {*columns.CORE_FEATURES, *columns.TRIGGER_COLUMNS}
    for ref in config.task.references_for("NEAR"):
        wanted |= {columns.beta_column(ref, config.policy.proxy_window),
                   columns.corr_column(ref, config.policy.proxy_window)}
    assert wanted <= set(table.columns)
    levels = [c for c in table.columns if columns.LEVEL_PATTERN.search(c)]
    assert set(columns.HAR_COLUMNS) <= set(levels)
