"""Each raw format is read by its real reader from real (sliced) files in tests/fixtures/raw."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from cascade_ml.data.ingest import load_file
from cascade_ml.data.sources import table
from cascade_ml.data.sources.base import SkipFile, infer_interval
from cascade_ml.errors import DataValidationError

RAW = Path(__file__).resolve().parents[1] / "fixtures" / "raw"
FT = RAW / "freqtrade"


def one(path: Path, venue: str | None = None):  # noqa: ANN201
    loaded = load_file(path, venue)
    assert len(loaded) == 1
    return loaded[0]


def test_freqtrade_perp_candles() -> None:
    item = one(FT / "binance/futures/NEAR_USDT_USDT-1h-futures.feather")
    assert str(item.key) == "ohlcv/binance/NEAR/1h"
    raw = pd.read_feather(FT / "binance/futures/NEAR_USDT_USDT-1h-futures.feather")
    assert len(item.frame) == len(raw) == 48
    assert item.frame["close"].iloc[-1] == raw["close"].iloc[-1]


def test_freqtrade_hyperliquid_4h_drops_rows_before_listing() -> None:
    item = one(FT / "hyperliquid/futures/NEAR_USDC_USDC-4h-futures.feather")
    assert str(item.key) == "ohlcv/hyperliquid/NEAR/4h"
    assert len(item.frame) == 30 and (item.frame["volume"] > 0).all()
    assert item.notes == ["dropped 20 leading volume-0 row(s) (before listing)"]


def test_freqtrade_funding_binance_8h_and_hyperliquid_1h_with_jitter() -> None:
    binance = one(FT / "binance/futures/NEAR_USDT_USDT-1h-funding_rate.feather")
    assert str(binance.key) == "funding/binance/NEAR/8h"
    assert (binance.frame["interval_hours"] == 8).all()
    raw = pd.read_feather(FT / "binance/futures/NEAR_USDT_USDT-1h-funding_rate.feather")
    assert binance.frame["funding_rate"].tolist() == raw["open"].tolist()
    hyper = one(FT / "hyperliquid/futures/NEAR_USDC_USDC-1h-funding_rate.feather")
    assert str(hyper.key) == "funding/hyperliquid/NEAR/1h"
    assert (hyper.frame.index == hyper.frame.index.floor("h")).all()
    assert hyper.frame.index[0] == pd.Timestamp("2023-11-01 17:00", tz="UTC")
    assert hyper.notes and "floored" in hyper.notes[0]


def test_freqtrade_spot_candles_are_their_own_market() -> None:
    """Spot candles go to venue binance_spot, never into the perp's partition (even when the
    caller names the perp venue)."""
    path = FT / "binance/NEAR_USDT-1h.feather"
    item = one(path)
    raw = pd.read_feather(path)
    assert str(item.key) == "ohlcv/binance_spot/NEAR/1h"
    assert len(item.frame) == len(raw) == 24
    assert item.frame["volume"].tolist() == raw["volume"].tolist()
    assert str(load_file(path, venue="binance")[0].key) == "ohlcv/binance_spot/NEAR/1h"


@pytest.mark.parametrize("relpath, reason", [
    ("binance/futures/NEAR_USDT_USDT-1h-mark.feather", "mark-price"),
    ("binance/cvd/NEARUSDT_cvd_1h.feather", "derived order-flow"),
])
def test_freqtrade_files_skipped_with_reason(relpath: str, reason: str) -> None:
    with pytest.raises(SkipFile, match=reason):
        load_file(FT / relpath)


def test_binance_dump_klines_drop_the_open_candle() -> None:
    path = RAW / "gravestone/1h/NEARUSDT.csv"
    item = one(path)
    raw = pd.read_csv(path)
    assert str(item.key) == "ohlcv/binance/NEAR/1h"
    assert len(item.frame) == len(raw) - 1
    assert item.frame.index[-1] == pd.Timestamp(int(raw["timestamp"].iloc[-2]), unit="ms", tz="UTC")
    assert {"quote_volume", "trades"} <= set(item.frame.columns)


def test_binance_dump_funding_and_open_interest() -> None:
    funding = one(RAW / "gravestone/funding/NEARUSDT.csv")
    assert str(funding.key) == "funding/binance/NEAR/8h"
    assert (funding.frame.index.minute == 0).all() and (funding.frame.index.second == 0).all()
    oi = one(RAW / "gravestone/oi_4h/NEARUSDT.csv")
    assert str(oi.key) == "open_interest/binance/NEAR/4h"
    raw = pd.read_csv(RAW / "gravestone/oi_4h/NEARUSDT.csv")
    value = raw["sum_open_interest_value"][0]
    assert oi.frame["open_interest_value"].iloc[0] == pytest.approx(value)


def test_varanus_parquet_and_venue_override() -> None:
    item = one(RAW / "varanus/NEARUSDT_4h.parquet", venue="binance_test")
    assert str(item.key) == "ohlcv/binance_test/NEAR/4h" and len(item.frame) == 60


def test_coinalyze_oi_stored_at_day_end_and_funding_skipped() -> None:
    path = next((RAW / "coinalyze").glob("historical_open_interest*"))
    loaded = load_file(path)
    assert [str(x.key) for x in loaded] == ["open_interest/binance_coinm/BTC/1d",
                                            "open_interest/binance_coinm/ETH/1d"]
    raw = pd.read_csv(path)
    first = raw.iloc[0]
    assert loaded[0].frame.index[0] == pd.Timestamp(int(first["timestamp"]), unit="s",
                                                    tz="UTC") + pd.Timedelta(days=1)
    assert loaded[0].frame["open_interest_value"].iloc[0] == first["oi_close"]
    with pytest.raises(SkipFile, match="daily funding aggregates"):
        load_file(next((RAW / "coinalyze").glob("historical_funding*")))


def test_hyperliquid_liquidations_and_fear_greed_from_sample(sample_dir: Path) -> None:
    liq = load_file(next(sample_dir.rglob("daily_notional_liquidated*.json")))
    assert [str(x.key) for x in liq] == ["liquidations/hyperliquid/BTC/1d",
                                         "liquidations/hyperliquid/ETH/1d",
                                         "liquidations/hyperliquid/NEAR/1d"]
    assert liq[2].frame.index[0] == pd.Timestamp("2023-11-03", tz="UTC")
    fng = one(next(sample_dir.rglob("fng.csv")))
    assert str(fng.key) == "sentiment/alternative.me/MARKET/1d"
    assert fng.frame["score"].iloc[0] == 30.0
    assert fng.frame.index[0] == pd.Timestamp("2018-02-01", tz="UTC")


def test_generic_sentiment_csv(tmp_path: Path) -> None:
    path = tmp_path / "mentions.csv"
    path.write_text("timestamp,symbol,mentions,score\n"
                    "2024-01-01T00:00:00Z,NEARUSDT,120,0.4\n2024-01-01T01:00:00Z,NEARUSDT,80,0.1\n"
                    "2024-01-01T00:00:00Z,BTC,900,\n2024-01-01T01:00:00Z,BTC,950,\n")
    loaded = load_file(path)
    assert [str(x.key) for x in loaded] == ["sentiment/social/BTC/1h", "sentiment/social/NEAR/1h"]
    assert loaded[1].frame["mentions"].tolist() == [120.0, 80.0]


def test_mapped_table_and_missing_mapped_column(tmp_path: Path) -> None:
    path = tmp_path / "px.csv"
    path.write_text("time,o,h,l,c,v\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
                    "2024-01-01T01:00:00Z,1.5,2,1,1.8,12\n")
    mapping = {"timestamp": "time", "open": "o", "high": "h", "low": "l", "close": "c",
               "volume": "v"}
    loaded = table.load_table(path, dataset="ohlcv", symbol="NEAR/USDT:USDT", venue="mine",
                              interval="1h", mapping=mapping)
    assert str(loaded[0].key) == "ohlcv/mine/NEAR/1h" and loaded[0].frame["close"].iloc[1] == 1.8
    with pytest.raises(DataValidationError, match=r"px.csv: mapped column\(s\) not in the file: "
                                                  r"close -> 'closing'"):
        table.load_table(path, dataset="ohlcv", symbol="NEAR", venue="mine", interval="1h",
                         mapping={**mapping, "close": "closing"})


def test_truncated_and_empty_files_fail_clearly(tmp_path: Path) -> None:
    good = RAW / "varanus/NEARUSDT_4h.parquet"
    bad = tmp_path / "NEARUSDT_4h.parquet"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataValidationError, match="NEARUSDT_4h.parquet: not a readable Parquet"):
        load_file(bad)
    feather = tmp_path / "binance" / "futures" / "NEAR_USDT_USDT-1h-futures.feather"
    feather.parent.mkdir(parents=True)
    src = FT / "binance/futures/NEAR_USDT_USDT-1h-futures.feather"
    feather.write_bytes(src.read_bytes()[:300])
    with pytest.raises(DataValidationError, match="not a readable feather"):
        load_file(feather)
    empty = tmp_path / "1h" / "NEARUSDT.csv"
    empty.parent.mkdir()
    empty.write_text("")
    with pytest.raises(DataValidationError, match="NEARUSDT.csv: empty file"):
        load_file(empty)


def test_binance_dump_with_misnamed_column_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "1h"
    folder.mkdir()
    shutil.copy(RAW / "gravestone/1h/NEARUSDT.csv", folder / "NEARUSDT.csv")
    path = folder / "NEARUSDT.csv"
    path.write_text(path.read_text().replace("close,", "Close,", 1))
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['close'\]"):
        load_file(path)


def test_infer_interval_ignores_millisecond_jitter() -> None:
    idx = pd.DatetimeIndex(["2024-01-01 00:00:00.031", "2024-01-01 08:00:00.002",
                            "2024-01-01 16:00:00.047"], tz="UTC")
    assert infer_interval(idx, "x") == "8h"


def test_freqtrade_venue_must_be_an_exchange_folder(tmp_path: Path) -> None:
    path = tmp_path / "downloads" / "NEAR_USDT_USDT-1h-futures.feather"
    path.parent.mkdir()
    shutil.copy(FT / "binance/futures/NEAR_USDT_USDT-1h-futures.feather", path)
    with pytest.raises(DataValidationError, match="cannot tell the venue"):
        load_file(path)
    assert str(one(path, venue="binance").key) == "ohlcv/binance/NEAR/1h"
