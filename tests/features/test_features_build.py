"""Building from the real sample store: fixed names, manifest skip, bad requests, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cascade_ml.cli.main import app
from cascade_ml.config import PipelineConfig, load_pipeline
from cascade_ml.contracts.layout import features_path
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError, ConfigError
from cascade_ml.features.build import build_and_store, build_features
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.registry import feature_specs
from cascade_ml.pipeline import features_step

START, END = "2025-03-01", "2025-04-15"  # Binance + Hyperliquid funding, liquidations, F&G


@pytest.fixture()
def store(sample_store: MarketStore, tmp_path: Path) -> MarketStore:
    """A private copy of the sample store (tests here write derived tables)."""
    root = tmp_path / "store"
    shutil.copytree(sample_store.root, root)
    return MarketStore(root)


def _sections(config: PipelineConfig) -> tuple:
    """The task and the features section: what the feature layer receives."""
    return config.task, config.features


def _config(store: MarketStore, **features) -> PipelineConfig:
    return PipelineConfig.model_validate({"store": {"root": str(store.root)},
                                          "features": features})


def test_near_features_from_the_sample(sample_store: MarketStore):
    cfg = _config(sample_store)
    table = build_features(sample_store, "NEAR", *_sections(cfg), start=START, end=END)
    assert table.index[0] == pd.Timestamp(START, tz="UTC")
    assert table.index[-1] == pd.Timestamp(END, tz="UTC")
    for col in ("rv_720h", "beta_btc_168h", "corr_eth_168h", "funding_div_btc_z_168h",
                "fng_z_30d", "trigger_funding_divergence"):
        assert table[col].notna().all(), col
    # Hyperliquid reports NEAR liquidations only on days with some: unreported days are NaN
    assert 0.5 < table["liq_z_30d"].notna().mean() < 1.0
    # no NEAR open interest in this span: NaN, never zero
    assert table["oi_chg_24h"].isna().all()
    assert not (table.select_dtypes(float) == np.inf).any().any()


def test_oi_features_where_the_sample_has_open_interest(sample_store: MarketStore):
    table = build_features(sample_store, "NEAR", *_sections(_config(sample_store))
                           , start="2026-02-25",
                           end="2026-03-15")
    assert table["oi_chg_24h"].notna().mean() > 0.9
    assert table["oi_share_btc"].notna().mean() > 0.9


def test_build_and_store_writes_manifest_and_skips_when_unchanged(store: MarketStore, capsys):
    cfg = _config(store)
    first = build_and_store(store, "NEAR", *_sections(cfg), start=START, end=END)
    assert not first.up_to_date and first.rows == len(pd.date_range(START, END, freq="1h"))
    stored = store.read_table(features_path("NEAR"))
    assert list(stored.columns)[:2] == ["ret_1h", "rv_1h"]
    manifest = json.loads((first.path.parent / "manifest.json").read_text())
    assert "ohlcv/venue=binance/symbol=NEAR/interval=1h/part.parquet" in manifest["inputs"]
    assert all(len(h) == 64 for h in manifest["inputs"].values())
    again = build_and_store(store, "NEAR", *_sections(cfg), start=START, end=END)
    assert again.up_to_date and "up to date" in again.line()
    changed = build_and_store(store, "NEAR", *_sections(_config(store, corr_windows=[168]))
                              , start=START,
                              end=END)
    assert not changed.up_to_date and changed.columns < first.columns
    # an input changing (one more F&G day) triggers a rebuild too
    key = store.resolve("sentiment", "MARKET")
    extra = pd.DataFrame({"score": [50.0]},
                         index=pd.DatetimeIndex([pd.Timestamp("2026-08-23", tz="UTC")],
                                                name="timestamp"))
    store.write(key, extra)
    assert not build_and_store(store, "NEAR", *_sections(_config(store, corr_windows=[168]))
                               , start=START,
                               end=END).up_to_date
    features_step(_config(store))
    assert "NEAR: built" in capsys.readouterr().out


def test_bad_requests_fail_clearly_before_writing(store: MarketStore):
    with pytest.raises(ConfigError, match="unknown feature family"):
        bad = Path(store.root) / "bad.yaml"
        bad.write_text("features:\n  families: [volatility, astrology]\n")
        load_pipeline(bad)
    with pytest.raises(CascadeError, match="reference symbol 'SOL'"):
        build_and_store(store, "NEAR", *_sections(_config(store)), refs=["BTC", "SOL"])
    with pytest.raises(ConfigError, match="longer than the"):
        build_and_store(store, "NEAR", *_sections(_config(store)), end="2023-01-10")
    with pytest.raises(CascadeError, match="no ohlcv for DOGE"):
        build_features(store, "DOGE", *_sections(_config(store)))
    assert not (store.root / "features").exists()


def test_labels_are_never_in_the_feature_table(sample_store: MarketStore):
    from cascade_ml.labels.build import LABEL_COLUMNS

    table = build_features(sample_store, "NEAR", *_sections(_config(sample_store))
                           , start=START, end=END)
    assert not set(LABEL_COLUMNS) & set(table.columns)
    assert not any(c.startswith("fwd_") or c == "cascade" for c in table.columns)


def test_cli_list_and_build(store: MarketStore, tmp_path: Path):
    runner = CliRunner()
    listed = runner.invoke(app, ["features", "list"])
    assert listed.exit_code == 0 and "rv_168h" in listed.output
    n_specs = len(feature_specs(FeatureConfig(), ["BTC", "ETH"]))
    assert f"{n_specs} features" in listed.output and n_specs > 90
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"store:\n  root: {store.root}\n")
    built = runner.invoke(app, ["features", "build", "--symbol", "near", "--refs", "BTC,ETH",
                                "--start", START, "--end", END, "--pipeline", str(pipeline)])
    assert built.exit_code == 0, built.output
    assert "NEAR: built" in built.output
    # a user error exits 2 with one line, no traceback (real entry point, real process)
    proc = subprocess.run([sys.executable, "-c", "from cascade_ml.cli.main import main; main()",
                           "features", "build", "--symbol", "NEAR", "--refs", "SOL",
                           "--pipeline", str(pipeline)], capture_output=True, text=True)
    assert proc.returncode == 2 and "SOL" in proc.stderr and "Traceback" not in proc.stderr


def test_real_sample_is_point_in_time(sample_store: MarketStore):
    """On real data: the table built with ``end=T`` equals the full build up to T, and appending
    an extreme future to the real inputs changes nothing at or before T."""
    from feature_factories import extreme_future

    from cascade_ml.features.inputs import load_inputs
    from cascade_ml.features.pit import find_lookahead
    from cascade_ml.features.registry import compute_families

    cfg = _config(sample_store)
    cutoff = pd.Timestamp("2025-04-10 13:00", tz="UTC")
    upto = build_features(sample_store, "NEAR", *_sections(cfg), start="2025-03-01", end=cutoff)
    full = build_features(sample_store, "NEAR", *_sections(cfg),
                          start="2025-03-01", end="2025-06-01")
    pd.testing.assert_frame_equal(upto, full.loc[:cutoff])

    fc = cfg.features
    inputs = load_inputs(sample_store, "NEAR", ["BTC", "ETH"], venue="binance", interval="1h",
                         funding_venues=fc.funding_venues, oi_venues=fc.oi_venues,
                         end="2025-05-01")
    start = pd.Timestamp("2024-12-01", tz="UTC")
    inputs = inputs.map_frames(lambda f: f[f.index >= start])

    def compute(i):
        return compute_families(i, fc)

    assert find_lookahead(compute, inputs, extreme_future(inputs, cutoff), cutoff) == {}


def test_a_reference_market_can_be_a_target_with_the_other_references(sample_store) -> None:
    """Any perp, BTC included: the default references drop the target instead of refusing it."""
    from cascade_ml.config import PipelineConfig
    from cascade_ml.features.build import build_features

    config = PipelineConfig()
    assert config.task.references_for("BTC") == ["ETH"]
    table = build_features(sample_store, "BTC", *_sections(config),
                           start="2026-03-01", end="2026-03-02")
    assert len(table) == 25
    assert any("eth" in c for c in table.columns)
    assert not any("_btc_" in c for c in table.columns)
