"""Labels: forward variance, minimum return and the cascade event; stored apart from features."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cascade_ml.config import PipelineConfig
from cascade_ml.contracts.layout import labels_path
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import ConfigError
from cascade_ml.labels.build import build_and_store_labels, build_labels
from cascade_ml.labels.config import LabelConfig
from cascade_ml.pipeline import labels_step


def bars(n: int = 400, seed: int = 0, vol: float = 0.005) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    close = 10 * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.r_[10.0, close[:-1]]
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": np.full(n, 1e5)}, index=idx)


def test_forward_variance_and_min_return_by_hand():
    b = bars()
    out = build_labels(b, LabelConfig(), horizon=24)
    r = np.diff(np.log(b["close"].to_numpy()))
    t = 200
    assert out["fwd_rv"].iloc[t] == pytest.approx(np.sum(r[t:t + 24] ** 2))  # bars t+1..t+24
    assert out["fwd_log_rv"].iloc[t] == pytest.approx(np.log(out["fwd_rv"].iloc[t]))
    low = b["low"].iloc[t + 1:t + 25].min()
    assert out["fwd_min_return"].iloc[t] == pytest.approx(np.log(low / b["close"].iloc[t]))
    assert out.iloc[-24:].isna().all().all()  # incomplete windows
    assert out.iloc[:-24]["fwd_rv"].notna().all()


def test_cascade_fires_on_a_crash_beyond_k_sigma_and_the_floor():
    b = bars(400, 1, vol=0.003)
    t = 300
    crash = b.index[t + 10]
    b.loc[crash, "low"] = b["close"].iloc[t] * 0.80  # a 20% wick 10 bars later
    out = build_labels(b, LabelConfig(cascade_k=2.5, cascade_floor=0.05), horizon=24)
    assert out.loc[b.index[t], "cascade"] == 1.0
    assert out.loc[b.index[t + 10], "cascade"] == 0.0  # the crash bar itself is not after t+10
    assert out["cascade"].loc[b.index[t - 14]:b.index[t + 9]].eq(1.0).all()
    assert out["cascade"].iloc[:250].sum() == 0.0  # quiet market: 0.3% hourly vol
    # threshold is max(k * sigma * sqrt(H), floor): the floor binds in this quiet market
    assert out["cascade_threshold"].iloc[300] == pytest.approx(0.05)
    loud = build_labels(bars(400, 1, vol=0.03), LabelConfig(), horizon=24)
    assert (loud["cascade_threshold"].dropna() > 0.05).all()


def test_short_side_looks_for_squeezes():
    b = bars(400, 2)
    b.loc[b.index[310], "high"] = b["close"].iloc[300] * 1.3
    long = build_labels(b, LabelConfig(), horizon=24, side="long")
    short = build_labels(b, LabelConfig(), horizon=24, side="short")
    assert short.loc[b.index[300], "cascade"] == 1.0 and long.loc[b.index[300], "cascade"] == 0.0


def test_oi_confirmation_applies_only_where_oi_exists():
    b = bars(400, 3)
    for t in (150, 300):
        b.loc[b.index[t + 5], "low"] = b["close"].iloc[t] * 0.8
    oi_idx = b.index[200:] + pd.Timedelta("1h")  # OI known only from bar 200 on, flat
    oi = pd.DataFrame({"open_interest_value": np.full(len(oi_idx), 1e7)}, index=oi_idx)
    cfg = LabelConfig(require_oi_drop=True)
    out = build_labels(b, cfg, horizon=24, oi=oi)
    assert out.loc[b.index[150], "cascade"] == 1.0  # no OI there: price rule alone
    assert out.loc[b.index[300], "cascade"] == 0.0  # OI did not drop: not confirmed
    assert out.loc[b.index[300], "cascade_price"] == 1.0
    oi.loc[oi.index >= b.index[306], "open_interest_value"] = 8e6  # a 20% OI flush
    assert build_labels(b, cfg, horizon=24, oi=oi).loc[b.index[300], "cascade"] == 1.0


def test_liquidation_confirmation():
    b = bars(24 * 40, 4)
    t = 24 * 35 + 3
    b.loc[b.index[t + 5], "low"] = b["close"].iloc[t] * 0.8
    days = pd.date_range("2024-01-01", periods=40, freq="1D", tz="UTC", name="timestamp")
    liq = pd.DataFrame({"total_notional": np.random.default_rng(0).lognormal(12, 0.3, 40)},
                       index=days)
    cfg = LabelConfig(require_liquidations=True)
    assert build_labels(b, cfg, horizon=24, liquidations=liq).iloc[t]["cascade"] == 0.0
    liq.loc[days[35], "total_notional"] = 1e9
    assert build_labels(b, cfg, horizon=24, liquidations=liq).iloc[t]["cascade"] == 1.0


def test_gap_in_the_bar_grid_gives_nan():
    b = bars(200).drop(index=bars(200).index[100])
    out = build_labels(b, LabelConfig(), horizon=10)
    # rows 90..99 have windows crossing the missing hour 100; row 89's window ends at 99
    assert out.loc[out.index[90:100], "fwd_rv"].isna().all()
    assert out["fwd_rv"].iloc[89] > 0 and out["fwd_rv"].iloc[100] > 0


def test_horizon_longer_than_data_is_refused():
    with pytest.raises(ConfigError, match="horizon"):
        build_labels(bars(20), LabelConfig(), horizon=24)


def test_store_and_base_rate(sample_store: MarketStore, tmp_path: Path, capsys):
    root = tmp_path / "store"
    shutil.copytree(sample_store.root, root)
    store = MarketStore(root)
    cfg = PipelineConfig.model_validate({"store": {"root": str(root)}})
    task12 = cfg.task.model_copy(update={"horizon": 12})
    first = build_and_store_labels(store, "NEAR", task12, cfg.labels)
    assert first.path == root / labels_path("NEAR", 12)
    assert first.path.parent.name == "h=12" and not first.up_to_date
    stored = store.read_table(labels_path("NEAR", 12))
    assert stored["cascade"].isna().sum() >= 12 and 0.0 < first.base_rate < 0.2
    assert first.base_rate == pytest.approx(stored["cascade"].mean())
    manifest = json.loads((first.path.parent / "manifest.json").read_text())
    assert manifest["horizon"] == 12 and manifest["config"]["cascade_k"] == 2.5
    assert manifest["side"] == "long"
    assert build_and_store_labels(store, "NEAR", task12, cfg.labels).up_to_date
    labels_step(cfg)
    out = capsys.readouterr().out
    assert "NEAR h=24: built" in out and "base rate" in out


def test_shifting_labels_does_not_change_features(sample_store: MarketStore, tmp_path: Path):
    """Features never read labels: storing shifted labels and rebuilding changes nothing."""
    from cascade_ml.features.build import build_features

    root = tmp_path / "store"
    shutil.copytree(sample_store.root, root)
    store = MarketStore(root)
    cfg = PipelineConfig.model_validate({"store": {"root": str(root)}})
    span = {"start": "2025-03-01", "end": "2025-03-20"}
    before = build_features(store, "NEAR", cfg.task, cfg.features, **span)
    labels = build_labels(store.read("ohlcv", "NEAR", venue="binance", interval="1h"),
                          LabelConfig(), horizon=24)
    shifted = labels.shift(-5)
    assert not labels.equals(shifted)
    store.write_table(labels_path("NEAR", 24), shifted)
    after = build_features(store, "NEAR", cfg.task, cfg.features, **span)
    pd.testing.assert_frame_equal(before, after)
    assert not set(shifted.columns) & set(after.columns)


def test_labels_on_a_spliced_history_start_with_the_spot_bars(tmp_path: Path) -> None:
    """task.spot_venue: labels exist from the first spot bar; the window of the last spot row
    runs over perp bars (the hand-computed fwd_rv below); without it they start at the perp."""
    from cascade_ml.contracts.task import TaskConfig
    from cascade_ml.data.store import PartitionKey

    idx = pd.date_range("2019-01-01", periods=40, freq="1h", tz="UTC", name="timestamp")
    close = 100.0 * np.exp(0.01 * np.arange(40) * (-1) ** np.arange(40))
    frame = pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99,
                          "close": close, "volume": 1.0}, index=idx)
    store = MarketStore(tmp_path / "store")
    store.write(PartitionKey("ohlcv", "binance_spot", "ADA", "1h"), frame.iloc[:15])
    store.write(PartitionKey("ohlcv", "binance", "ADA", "1h"), frame.iloc[15:])
    cfg = LabelConfig(sigma_window=10)
    long = build_and_store_labels(store, "ADA", TaskConfig(horizon=3, spot_venue="binance_spot"),
                                  cfg)
    labels = store.read_table(labels_path("ADA", 3))
    assert long.rows == 40 and labels.index[0] == idx[0]
    r = np.diff(np.log(close))
    assert labels.loc[idx[14], "fwd_rv"] == pytest.approx(float(np.sum(r[14:17] ** 2)))
    short = build_and_store_labels(store, "ADA", TaskConfig(horizon=3), cfg, force=True)
    assert short.rows == 25
