"""The spot-before-perp rule: one join, no overlap, the switch recorded, point-in-time."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cascade_ml.contracts.columns import IS_SPOT
from cascade_ml.data.history import read_bars, splice_bars, spot_venue
from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore, PartitionKey

HISTORY = Path(__file__).resolve().parents[2] / "data" / "history"
T0 = pd.Timestamp("2019-09-08 12:00", tz="UTC")


def bars(start: pd.Timestamp, n: int, close: float, volume: float) -> pd.DataFrame:
    idx = pd.date_range(start, periods=n, freq="1h", name="timestamp")
    c = close + np.arange(n, dtype=float)
    return pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c,
                         "volume": np.full(n, volume)}, index=idx)


def test_spot_only_strictly_before_the_perps_first_bar() -> None:
    """Spot 12:00..21:00 and perp from 17:00: 5 spot rows (12..16), then the perp's own rows;
    on the overlap (17..21) the perp's close (1000+) wins, never the spot's (100+)."""
    spot = bars(T0, 10, 100.0, 7.0)
    perp = bars(T0 + pd.Timedelta("5h"), 8, 1000.0, 3.0)
    out = splice_bars(perp, spot)
    assert out.index.is_unique and out.index.is_monotonic_increasing
    assert len(out) == 13
    assert out[IS_SPOT].tolist() == [1.0] * 5 + [0.0] * 8
    assert out["close"].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0,
                                      *[1000.0 + k for k in range(8)]]
    assert out.loc[out[IS_SPOT] == 1.0, "volume"].eq(7.0).all()  # spot volume kept, marked
    assert out.loc[out[IS_SPOT] == 0.0, "volume"].eq(3.0).all()
    assert out.attrs["splice"] == {"spot_rows": 5, "perp_rows": 8,
                                   "switch": "2019-09-08 17:00:00+00:00",
                                   "spot_first": "2019-09-08 12:00:00+00:00"}


def test_a_hole_in_the_perp_after_its_start_stays_a_hole() -> None:
    spot = bars(T0, 48, 100.0, 7.0)
    perp = bars(T0 + pd.Timedelta("2h"), 30, 1000.0, 3.0).drop(index=T0 + pd.Timedelta("10h"))
    out = splice_bars(perp, spot)
    assert T0 + pd.Timedelta("10h") not in out.index
    assert (out[IS_SPOT] == 1.0).sum() == 2
    assert out.index.max() == T0 + pd.Timedelta("31h")  # spot after the perp's end is not used


def test_no_perp_bar_yet_means_spot_only_and_no_switch() -> None:
    out = splice_bars(bars(T0, 5, 1000.0, 3.0).iloc[0:0], bars(T0, 5, 100.0, 7.0))
    assert out[IS_SPOT].tolist() == [1.0] * 5
    assert out.attrs["splice"]["switch"] is None
    none = splice_bars(bars(T0, 5, 1000.0, 3.0), None)
    assert none[IS_SPOT].tolist() == [0.0] * 5 and none.attrs["splice"]["spot_rows"] == 0


def test_spot_venue_names() -> None:
    assert spot_venue("binance") == "binance_spot"
    assert spot_venue("binance_spot") == "binance_spot"


def _store(tmp_path: Path, perp: pd.DataFrame, spot: pd.DataFrame) -> MarketStore:
    store = MarketStore(tmp_path / "store")
    store.write(PartitionKey("ohlcv", "binance", "ADA", "1h"), perp)
    store.write(PartitionKey("ohlcv", "binance_spot", "ADA", "1h"), spot)
    return store


def test_read_bars_is_point_in_time(tmp_path: Path) -> None:
    """Reading up to T equals the full read cut at T, for T before, at and after the switch;
    appending later rows to either market (spot past the switch too) changes no earlier row."""
    switch = T0 + pd.Timedelta("30h")
    spot = bars(T0, 40, 100.0, 7.0)
    perp = bars(switch, 50, 1000.0, 3.0)
    store = _store(tmp_path, perp.iloc[:20], spot.iloc[:35])
    full, keys = read_bars(store, "ADA", "binance", "1h", spot="binance_spot")
    assert [str(k) for k in keys] == ["ohlcv/binance/ADA/1h", "ohlcv/binance_spot/ADA/1h"]
    for cut in (T0 + pd.Timedelta("10h"), switch - pd.Timedelta("1h"), switch,
                switch + pd.Timedelta("5h")):
        part, _ = read_bars(store, "ADA", "binance", "1h", spot="binance_spot", end=cut)
        pd.testing.assert_frame_equal(part, full[full.index <= cut])
    early, _ = read_bars(store, "ADA", "binance", "1h", spot="binance_spot",
                         end=switch - pd.Timedelta("1h"))
    assert early[IS_SPOT].eq(1.0).all() and early.attrs["splice"]["switch"] is None
    store.write(PartitionKey("ohlcv", "binance", "ADA", "1h"), perp)  # 30 more perp rows
    store.write(PartitionKey("ohlcv", "binance_spot", "ADA", "1h"), spot)  # spot past switch
    later, _ = read_bars(store, "ADA", "binance", "1h", spot="binance_spot")
    pd.testing.assert_frame_equal(later.loc[full.index], full)
    assert len(later) == 30 + 50 and later.attrs["splice"]["switch"] == str(switch)


def test_without_spot_venue_the_perp_is_read_as_stored(tmp_path: Path) -> None:
    store = _store(tmp_path, bars(T0 + pd.Timedelta("3h"), 5, 1000.0, 3.0),
                   bars(T0, 5, 100.0, 7.0))
    plain, keys = read_bars(store, "ADA", "binance", "1h")
    assert IS_SPOT not in plain and len(plain) == 5 and len(keys) == 1
    other, _ = read_bars(store, "ADA", "binance", "1h", spot="okx_spot")
    assert other[IS_SPOT].eq(0.0).all()  # splicing on, no spot candles: every row marked perp


# --- the bundled long history (data/history) --------------------------------------------------
def _provenance_rows() -> list[list[str]]:
    text = (HISTORY / "PROVENANCE.md").read_text()
    rows = [[c.strip().strip("`") for c in line.strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| `roshan")]
    assert len(rows) == 15
    return rows


def test_bundled_history_matches_its_provenance() -> None:
    """Every file in data/history is listed with the right sha256, rows and span, spot files
    end before the time their row names, and nothing unlisted is shipped."""
    rows = _provenance_rows()
    listed = {r[0] for r in rows}
    shipped = {str(p.relative_to(HISTORY)) for p in HISTORY.rglob("*.feather")}
    assert shipped == listed
    for rel, market, before, n, first, last, size, sha, _original in rows:
        path = HISTORY / rel
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, rel
        assert path.stat().st_size == int(size)
        frame = pd.read_feather(path)
        assert len(frame) == int(n), rel
        assert str(frame["date"].min())[:16] == first and str(frame["date"].max())[:16] == last
        assert (frame["date"] < pd.Timestamp(before, tz="UTC")).all()
        assert ("/futures/" in rel) == (market == "perp")
        assert re.search(r"_USDT_USDT-1h-futures|_USDT-1h", rel)


def test_bundled_history_ingests_as_two_markets(tmp_path: Path) -> None:
    """Spot files land in binance_spot, perp files in binance; a spot row is never in a perp
    partition (BCH: spot ends 2019-12-19 07:00, the perp starts at 08:00)."""
    store = MarketStore(tmp_path / "store")
    folder = tmp_path / "in"
    for rel in ("futures/BCH_USDT_USDT-1h-futures.feather", "BCH_USDT-1h.feather"):
        src = HISTORY / "roshan7869-algotrading/user_data/data/binance" / rel
        dst = folder / "binance" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
    report = ingest_path(store, folder)
    assert not report.failed and not report.skipped
    assert [str(k) for k in store.partitions()] == ["ohlcv/binance/BCH/1h",
                                                    "ohlcv/binance_spot/BCH/1h"]
    spliced, _ = read_bars(store, "BCH", "binance", "1h", spot="binance_spot")
    assert spliced.attrs["splice"] == {"spot_rows": 502, "perp_rows": 26608,
                                       "switch": "2019-12-19 08:00:00+00:00",
                                       "spot_first": "2019-11-28 10:00:00+00:00"}
    assert spliced.index.is_unique


@pytest.mark.parametrize("symbol", ["BTC", "ETH", "ADA", "LTC", "XRP"])
def test_spot_files_end_right_before_the_bundled_perp(symbol: str) -> None:
    """The bundled spot file ends one bar before the bundled perp file's first bar."""
    base = HISTORY / "roshan7869-algotrading/user_data/data/binance"
    perp = pd.read_feather(base / f"futures/{symbol}_USDT_USDT-1h-futures.feather")
    spot = pd.read_feather(base / f"{symbol}_USDT-1h.feather")
    assert spot["date"].max() + pd.Timedelta("1h") == perp["date"].min()
