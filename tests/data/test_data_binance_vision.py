"""Binance Vision archives (zips or CSVs) and Binance liquidation-order recordings.

Real rows: the 5-minute BTC metrics and the NEAR forceOrder recording in data/extra (see
data/sample/PROVENANCE.md); klines and funding archives are rebuilt in Binance Vision's exact
layout from the real gravestone REST dumps in tests/fixtures/raw. No real bookDepth file is
bundled, so its archives are written here in the documented format.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cascade_ml.data.ingest import ingest_path, load_file
from cascade_ml.data.sources.base import SkipFile
from cascade_ml.data.sources.binance_vision import BOOK_DEPTH_COLS, KLINE_COLS
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import DataValidationError

REPO = Path(__file__).resolve().parents[2]
RAW = REPO / "tests" / "fixtures" / "raw"
EXTRA = REPO / "data" / "extra" / "anotheryearwasted-trivix" / "data"
METRICS = EXTRA / "metrics" / "BTCUSDT.csv"
FORCE = EXTRA / "liquidations" / "NEARUSDT.csv"


def archive(folder: Path, name: str, text: str, *, checksum: bool = True) -> Path:
    """``name``.zip holding ``name``.csv, plus the ``.CHECKSUM`` sidecar Binance publishes."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr(f"{name}.csv", text)
    if checksum:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        path.with_name(path.name + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def kline_text(header: bool = True) -> str:
    """The real gravestone NEAR 1h rows (closed candles only) in Binance Vision's columns."""
    dump = pd.read_csv(RAW / "gravestone/1h/NEARUSDT.csv", dtype=str).iloc[:-1]
    rows = [",".join([r.timestamp, r.open, r.high, r.low, r.close, r.volume, r.close_time,
                      r.quote_volume, r.trades, "0", "0", "0"]) for r in dump.itertuples()]
    return "\n".join(([",".join(KLINE_COLS)] if header else []) + rows) + "\n"


def funding_text() -> str:
    dump = pd.read_csv(RAW / "gravestone/funding/NEARUSDT.csv", dtype=str)
    rows = [f"{r.timestamp},8,{r.funding_rate}" for r in dump.itertuples()]
    return "calc_time,funding_interval_hours,last_funding_rate\n" + "\n".join(rows) + "\n"


BANDS = (-5, -4, -3, -2, -1, -0.2, 0.2, 1, 2, 3, 4, 5)


def book_depth_text(snapshots: int = 4, start: str = "2024-03-01 00:00:07") -> str:
    """Cumulative depth per band every 30 s, as Binance Vision writes it (12 bands incl. 0.2)."""
    lines = [",".join(BOOK_DEPTH_COLS)]
    t0 = pd.Timestamp(start)
    for i in range(snapshots):
        stamp = (t0 + pd.Timedelta(seconds=30 * i)).strftime("%Y-%m-%d %H:%M:%S")
        for pct in BANDS:
            depth = 1000.0 * abs(pct) * (1 + 0.1 * i) * (1.2 if pct < 0 else 1.0)
            lines.append(f"{stamp},{pct:.2f},{depth:.3f},{depth * 7.0:.2f}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- metrics (real)
def test_real_metrics_csv_gives_open_interest_and_positioning() -> None:
    oi, pos = load_file(METRICS)
    raw = pd.read_csv(METRICS)
    assert str(oi.key) == "open_interest/binance/BTC/5m"
    assert str(pos.key) == "positioning/binance/BTC/5m"
    assert len(oi.frame) == len(pos.frame) == len(raw) == 288
    assert oi.frame.index[0] == pd.Timestamp("2023-11-14 00:00", tz="UTC")
    assert oi.frame["open_interest"].iloc[0] == 80424.539
    assert oi.frame["open_interest_value"].tolist() == raw["sum_open_interest_value"].tolist()
    assert pos.frame["top_trader_account_ratio"].tolist() == raw[
        "count_toptrader_long_short_ratio"].tolist()
    assert pos.frame["taker_buy_sell_ratio"].iloc[-1] == raw[
        "sum_taker_long_short_vol_ratio"].iloc[-1]


def test_zipped_metrics_with_checksum_unsorted_rows(tmp_path: Path) -> None:
    lines = METRICS.read_text().splitlines()
    shuffled = [lines[0], *reversed(lines[1:])]  # archives are not in time order
    path = archive(tmp_path, "BTCUSDT-metrics-2023-11-14", "\n".join(shuffled) + "\n")
    oi, pos = load_file(path)
    assert oi.notes == ["sha256 verified against BTCUSDT-metrics-2023-11-14.zip.CHECKSUM"]
    assert oi.frame.index.is_monotonic_increasing and len(oi.frame) == 288
    assert oi.frame.equals(load_file(METRICS)[0].frame)


def test_metrics_rows_without_values_are_dropped_and_counted(tmp_path: Path) -> None:
    lines = METRICS.read_text().splitlines()
    lines[5] = "2023-11-14 00:20:00,BTCUSDT,,,,,,"
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join(lines) + "\n")
    oi, pos = load_file(path)
    assert len(oi.frame) == len(pos.frame) == 287
    assert oi.notes == ["dropped 1 row(s) without open interest"]
    lines[7] = lines[7].replace("BTCUSDT", "ETHUSDT")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match=r"expected one symbol, found \['BTCUSDT', "
                                                  r"'ETHUSDT'\]"):
        load_file(path)


# ---------------------------------------------------------------------------- klines, funding
@pytest.mark.parametrize("header", [True, False], ids=["header", "headerless"])
def test_klines_archive_matches_the_rest_dump(tmp_path: Path, header: bool) -> None:
    path = archive(tmp_path / "klines" / "NEARUSDT" / "1h", "NEARUSDT-1h-2026-03-18",
                   kline_text(header))
    (item,) = load_file(path)
    dump = load_file(RAW / "gravestone/1h/NEARUSDT.csv")[0]  # the same candles via REST
    assert str(item.key) == "ohlcv/binance/NEAR/1h"
    pd.testing.assert_frame_equal(item.frame, dump.frame)


def test_klines_spacing_must_match_the_file_name(tmp_path: Path) -> None:
    path = archive(tmp_path, "NEARUSDT-4h-2026-03-18", kline_text())
    with pytest.raises(DataValidationError, match="rows are 1h apart, not 4h"):
        load_file(path)


def test_funding_archive_floors_jitter_and_keeps_the_interval(tmp_path: Path) -> None:
    path = archive(tmp_path, "NEARUSDT-fundingRate-2026-03", funding_text())
    (item,) = load_file(path)
    dump = load_file(RAW / "gravestone/funding/NEARUSDT.csv")[0]
    assert str(item.key) == "funding/binance/NEAR/8h" == str(dump.key)
    assert item.frame["funding_rate"].tolist() == dump.frame["funding_rate"].tolist()
    assert item.frame.index.equals(dump.frame.index)
    assert (item.frame["interval_hours"] == 8).all()
    assert any("floored" in n for n in item.notes)


# ---------------------------------------------------------------------------- bookDepth
def test_book_depth_becomes_one_row_per_snapshot(tmp_path: Path) -> None:
    path = archive(tmp_path, "NEARUSDT-bookDepth-2024-03-01", book_depth_text(snapshots=4))
    (item,) = load_file(path)
    assert str(item.key) == "depth/binance/NEAR/1m"
    frame = item.frame
    assert len(frame) == 4 and frame.index[0] == pd.Timestamp("2024-03-01 00:00:07", tz="UTC")
    assert list(frame.columns) == [f"{s}_notional_{p}pct" for s in ("bid", "ask")
                                   for p in range(1, 6)]
    # snapshot 2: bid 1% = 1000 * 1 * 1.2 * 1.2 * 7, ask 5% = 1000 * 5 * 1.2 * 7
    assert frame["bid_notional_1pct"].iloc[2] == pytest.approx(1000 * 1.2 * 1.2 * 7)
    assert frame["ask_notional_5pct"].iloc[2] == pytest.approx(1000 * 5 * 1.2 * 7)
    assert (frame["bid_notional_5pct"] > frame["bid_notional_1pct"]).all()


def test_book_depth_missing_band_is_nan_not_zero(tmp_path: Path) -> None:
    lines = [ln for ln in book_depth_text(snapshots=2).splitlines()
             if not (ln.startswith("2024-03-01 00:00:37") and ",3.00," in ln)]
    path = tmp_path / "NEARUSDT-bookDepth-2024-03-01.csv"
    path.write_text("\n".join(lines) + "\n")
    (item,) = load_file(path)
    assert np.isnan(item.frame["ask_notional_3pct"].iloc[1])
    assert item.frame["ask_notional_3pct"].iloc[0] > 0


# ---------------------------------------------------------------------------- malformed
def _truncated(tmp_path: Path) -> Path:
    good = archive(tmp_path / "src", "NEARUSDT-bookDepth-2024-03-01", book_depth_text(40),
                   checksum=False)
    bad = tmp_path / "in" / good.name
    bad.parent.mkdir()
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return bad


def _wrong_checksum(tmp_path: Path) -> Path:
    path = archive(tmp_path / "in", "NEARUSDT-bookDepth-2024-03-01", book_depth_text())
    path.with_name(path.name + ".CHECKSUM").write_text(f"{'0' * 64}  {path.name}\n")
    return path


def _wrong_columns(tmp_path: Path) -> Path:
    text = book_depth_text().replace("notional", "quote", 1)
    return archive(tmp_path / "in", "NEARUSDT-bookDepth-2024-03-01", text)


def _empty(tmp_path: Path) -> Path:
    return archive(tmp_path / "in", "NEARUSDT-bookDepth-2024-03-01", "")


def _two_members(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "NEARUSDT-metrics-2023-11-14.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as handle:
        handle.writestr("a.csv", METRICS.read_text())
        handle.writestr("b.csv", METRICS.read_text())
    return path


def _not_a_zip(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "NEARUSDT-1h-2026-03-18.zip"
    path.parent.mkdir()
    path.write_text(kline_text())
    return path


MALFORMED = {
    "truncated zip": (_truncated, "not a readable zip archive"),
    "wrong checksum": (_wrong_checksum, "does not match NEARUSDT-bookDepth-2024-03-01.zip"
                                        ".CHECKSUM"),
    "wrong columns": (_wrong_columns, r"missing column\(s\) \['notional'\]"),
    "empty csv": (_empty, "empty file"),
    "two csv members": (_two_members, r"expected one CSV inside the zip, found \['a.csv', "
                                      r"'b.csv'\]"),
    "not a zip": (_not_a_zip, "not a readable zip archive"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_archive_fails_naming_the_file_and_writes_nothing(case: str,
                                                                    tmp_path: Path) -> None:
    make, message = MALFORMED[case]
    path = make(tmp_path)
    with pytest.raises(DataValidationError, match=message) as info:
        load_file(path)
    assert str(path) in info.value.message
    store = MarketStore(tmp_path / "store")
    report = ingest_path(store, path.parent)
    assert [o.path for o in report.failed] == [path.name]
    assert not (tmp_path / "store").exists() or snapshot(tmp_path / "store") == {}


def test_a_bad_archive_in_a_folder_fails_alone(tmp_path: Path) -> None:
    folder = tmp_path / "vision"
    archive(folder, "NEARUSDT-1h-2026-03-18", kline_text())
    archive(folder, "NEARUSDT-fundingRate-2026-03", funding_text())
    archive(folder, "BTCUSDT-metrics-2023-11-14", METRICS.read_text())
    archive(folder, "NEARUSDT-bookDepth-2024-03-01", book_depth_text())
    broken = archive(folder, "ETHUSDT-bookDepth-2024-03-01", book_depth_text())
    broken.write_bytes(broken.read_bytes()[:-40])  # damaged after the checksum was taken
    store = MarketStore(tmp_path / "store")
    report = ingest_path(store, folder)
    assert [o.path for o in report.failed] == [broken.name]
    assert "does not match" in report.failed[0].reason
    assert len(report.loaded) == 4 and not report.skipped
    assert {str(k) for k in store.partitions()} == {
        "ohlcv/binance/NEAR/1h", "funding/binance/NEAR/8h", "open_interest/binance/BTC/5m",
        "positioning/binance/BTC/5m", "depth/binance/NEAR/1m"}
    before = snapshot(tmp_path / "store")
    again = ingest_path(store, folder)
    assert all(w.added == 0 and w.replaced == 0 for w in again.writes)
    assert snapshot(tmp_path / "store") == before


@pytest.mark.parametrize("relpath, reason", [
    ("markPriceKlines/NEARUSDT/1h/NEARUSDT-1h-2026-03-18", "not traded prices"),
    ("aggTrades/NEARUSDT/NEARUSDT-aggTrades-2026-03-18", "aggregated trades"),
    ("klines/BTCUSDT_240329/1h/BTCUSDT_240329-1h-2024-03-01", "delivery or COIN-M"),
])
def test_archives_that_are_not_stored_are_skipped_with_a_reason(tmp_path: Path, relpath: str,
                                                                reason: str) -> None:
    *folders, name = relpath.split("/")
    path = archive(tmp_path.joinpath(*folders), name, kline_text())
    with pytest.raises(SkipFile, match=reason):
        load_file(path)


# ---------------------------------------------------------------------------- forceOrder (real)
def test_force_orders_become_hourly_long_short_liquidations() -> None:
    (item,) = load_file(FORCE)
    assert str(item.key) == "liquidations/binance/NEAR/1h"
    events = pd.read_csv(FORCE)
    hour = pd.to_datetime(events["Time"], unit="ms", utc=True).dt.floor("h")
    notional = events["Quantity"] * events["Price"]
    first, last = hour.min(), hour.max()
    frame = item.frame
    assert frame.index[0] == first + pd.Timedelta("1h")  # partial first and last hours dropped
    assert frame.index[-1] == last - pd.Timedelta("1h")
    assert len(frame) == (last - first) // pd.Timedelta("1h") - 1
    for ts in frame.index[[0, 5, 17]]:
        here = hour == ts
        assert frame.loc[ts, "long_notional"] == pytest.approx(
            notional[here & (events["Side"] == "SELL")].sum())
        assert frame.loc[ts, "short_notional"] == pytest.approx(
            notional[here & (events["Side"] == "BUY")].sum())
    assert np.allclose(frame["total_notional"], frame["long_notional"] + frame["short_notional"])
    quiet = frame.index.difference(hour.unique())
    assert len(quiet) >= 1 and (frame.loc[quiet, "total_notional"] == 0).all()


def test_force_orders_with_an_unknown_side_fail(tmp_path: Path) -> None:
    path = tmp_path / "NEARUSDT.csv"
    path.write_text(FORCE.read_text().replace("NEARUSDT,BUY,", "NEARUSDT,HOLD,", 1))
    with pytest.raises(DataValidationError, match="column 'Side': expected BUY or SELL in data "
                                                  "rows \\[13\\]"):
        load_file(path)
