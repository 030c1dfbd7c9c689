"""ingest_path, the pipeline step and `cascade-ml ingest` on real sample data and bad files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cascade_ml.cli.main import app
from cascade_ml.config import load_pipeline
from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.pipeline import ingest_step

RAW = Path(__file__).resolve().parents[1] / "fixtures" / "raw"
runner = CliRunner()


def snapshot(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_sample_store_holds_every_dataset(sample_store: MarketStore) -> None:
    keys = {str(k) for k in sample_store.partitions()}
    for sym in ("NEAR", "BTC", "ETH"):
        assert {f"ohlcv/binance/{sym}/1h", f"funding/binance/{sym}/8h",
                f"funding/hyperliquid/{sym}/1h", f"open_interest/binance/{sym}/4h",
                f"liquidations/hyperliquid/{sym}/1d"} <= keys
    assert {"open_interest/binance_coinm/BTC/1d", "sentiment/alternative.me/MARKET/1d"} <= keys
    near = sample_store.read("ohlcv", "NEAR", venue="binance", interval="1h")
    assert near.index[0] == pd.Timestamp("2023-01-01", tz="UTC")
    assert near.index[-1] == pd.Timestamp("2026-05-18 11:00", tz="UTC")
    assert (near.index.to_series().diff().dropna() == pd.Timedelta("1h")).all()


def test_later_file_wins_on_overlap(sample_store: MarketStore, sample_dir: Path) -> None:
    """Varanus and Roshan differ on 8 hours; the later-collected Roshan values are kept."""
    near = sample_store.read("ohlcv", "NEAR", venue="binance", interval="1h")
    roshan = pd.read_feather(next(sample_dir.rglob("NEAR_USDT_USDT-1h-futures.feather")))
    roshan = roshan.set_index("date")
    overlap = roshan.index.intersection(near.index)
    assert len(overlap) == len(roshan)
    assert (near.loc[overlap, "close"].to_numpy() == roshan.loc[overlap, "close"].to_numpy()).all()


def test_reingesting_changes_nothing(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store")
    first = ingest_path(store, RAW)
    assert len(first.failed) == 0 and len(first.skipped) == 3  # mark, cvd, coinalyze funding
    assert "ohlcv/binance_spot/NEAR/1h" in {str(k) for k in store.partitions()}
    before = snapshot(tmp_path / "store")
    second = ingest_path(store, RAW)
    assert all(w.added == 0 and w.replaced == 0 for w in second.writes)
    assert snapshot(tmp_path / "store") == before


def test_bad_file_in_folder_fails_alone(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    shutil.copytree(RAW / "gravestone", folder)
    bad = folder / "1h" / "BTCUSDT.csv"
    lines = (folder / "1h" / "NEARUSDT.csv").read_text().split("\n")
    lines[3] = lines[3].replace(lines[3].split(",")[3], "-1", 1)  # negative low in data row 3
    bad.write_text("\n".join(lines))
    store = MarketStore(tmp_path / "store")
    report = ingest_path(store, folder)
    assert [o.path for o in report.failed] == ["1h/BTCUSDT.csv"]
    assert "column low: must be positive at 2026-" in report.failed[0].reason
    assert {k.symbol for k in store.partitions()} == {"NEAR"}
    assert "1 failed" in report.format()


def test_missing_path_and_unrecognised_single_file(tmp_path: Path) -> None:
    with pytest.raises(CascadeError, match="path not found"):
        ingest_path(MarketStore(tmp_path), tmp_path / "nope")
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    report = ingest_path(MarketStore(tmp_path / "s"), odd)
    assert report.failed and "format not recognised" in report.failed[0].reason


def test_run_step_ingests_configured_sources(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"store: {{root: {tmp_path / 'store'}}}\n"
                    f"sources:\n  - {{kind: files, path: {RAW / 'gravestone'}}}\n"
                    f"  - {{kind: files, path: {RAW / 'varanus'}, venue: other}}\n")
    ingest_step(load_pipeline(pipe))
    out = capsys.readouterr().out
    assert "4 input(s): 4 loaded, 0 skipped, 0 failed" in out
    store = MarketStore(tmp_path / "store")
    assert "ohlcv/other/NEAR/4h" in {str(k) for k in store.partitions()}


# ------------------------------------------------------------------ CLI and bad inputs
def kline_csv(tmp_path: Path, edit) -> Path:  # noqa: ANN001
    """A real gravestone kline slice in a `1h/` folder, edited to carry one defect."""
    folder = tmp_path / "in" / "1h"
    folder.mkdir(parents=True)
    frame = pd.read_csv(RAW / "gravestone/1h/NEARUSDT.csv", dtype=str)
    path = folder / "NEARUSDT.csv"
    result = edit(frame)
    if isinstance(result, str):
        path.write_text(result)
    else:
        result.to_csv(path, index=False)
    return path


def _set(frame: pd.DataFrame, row: int, col: str, value: str) -> pd.DataFrame:
    frame.loc[row, col] = value
    return frame


BAD_KLINES = {
    "missing column": (lambda f: f.drop(columns="high"), r"missing column\(s\) \['high'\]"),
    "misnamed column": (lambda f: f.rename(columns={"volume": "vol"}),
                        r"missing column\(s\) \['volume'\]"),
    "empty file": (lambda f: "", "empty file"),
    "header only": (lambda f: ",".join(f.columns) + "\n", "no data rows"),
    "unparsable timestamp": (lambda f: _set(f, 4, "timestamp", "yesterday"),
                             "unparsable timestamp in data rows 5"),
    "naive timestamps": (lambda f: f.assign(timestamp=pd.to_datetime(
        f["timestamp"].astype("int64"), unit="ms").astype(str)), "timestamps have no timezone"),
    "conflicting duplicates": (lambda f: _set(f, 2, "timestamp", f.loc[1, "timestamp"]),
                               "duplicate timestamps with conflicting values"),
    "NaN price": (lambda f: _set(f, 6, "close", ""), "column 'close': missing/NaN value in data "
                                                     "rows 7"),
    "inf price": (lambda f: _set(_set(f, 6, "close", "inf"), 6, "high", "inf"),
                  "values must be finite"),
    "negative price": (lambda f: _set(f, 6, "open", "-1.3"), "column open: must be positive"),
    "high below low": (lambda f: _set(f, 6, "high", "0.5"), "high must be >= low"),
}


@pytest.fixture
def seeded_store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    report = ingest_path(MarketStore(root), RAW / "varanus")
    assert not report.failed
    return root


@pytest.mark.parametrize("case", sorted(BAD_KLINES))
def test_cli_bad_input_fails_and_leaves_store_identical(case: str, tmp_path: Path,
                                                        seeded_store: Path) -> None:
    edit, message = BAD_KLINES[case]
    path = kline_csv(tmp_path, edit)
    before = snapshot(seeded_store)
    result = runner.invoke(app, ["ingest", str(path), "--store", str(seeded_store)])
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output and "NEARUSDT.csv" in result.output
    assert pd.Series([result.output]).str.contains(message).iloc[0], result.output
    assert snapshot(seeded_store) == before


def test_cli_unsorted_rows_get_sorted(tmp_path: Path) -> None:
    path = kline_csv(tmp_path, lambda f: pd.concat([f.iloc[10:20], f.iloc[:10], f.iloc[20:]]))
    root = tmp_path / "store"
    result = runner.invoke(app, ["ingest", str(path), "--store", str(root)])
    assert result.exit_code == 0, result.output
    stored = MarketStore(root).read("ohlcv", "NEAR")
    assert stored.index.is_monotonic_increasing and len(stored) == 29


def test_cli_truncated_parquet(tmp_path: Path, seeded_store: Path) -> None:
    bad = tmp_path / "NEARUSDT_1h.parquet"
    good = (RAW / "varanus/NEARUSDT_4h.parquet").read_bytes()
    bad.write_bytes(good[: len(good) // 3])
    before = snapshot(seeded_store)
    result = runner.invoke(app, ["ingest", str(bad), "--store", str(seeded_store)])
    assert result.exit_code == 1 and "not a readable Parquet file" in result.output
    assert snapshot(seeded_store) == before


def test_cli_mapping_to_missing_column(tmp_path: Path, seeded_store: Path) -> None:
    data = tmp_path / "mentions.csv"
    data.write_text("time,n\n2024-01-01T00:00:00Z,3\n2024-01-02T00:00:00Z,4\n")
    pipe = tmp_path / "p.yaml"
    pipe.write_text("sources:\n  - kind: table\n    path: " + str(data) + "\n"
                    "    dataset: sentiment\n    symbol: NEAR\n    venue: social\n"
                    "    interval: 1d\n    mapping: {timestamp: time, mentions: count}\n")
    before = snapshot(seeded_store)
    result = runner.invoke(app, ["ingest", "--pipeline", str(pipe), "--store", str(seeded_store)])
    assert result.exit_code == 1
    assert "mentions.csv: mapped column(s) not in the file: mentions -> 'count'" in result.output
    assert snapshot(seeded_store) == before


def test_cli_on_conflict_error_and_bad_rule(tmp_path: Path, seeded_store: Path) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    frame = pd.read_parquet(RAW / "varanus/NEARUSDT_4h.parquet")
    frame.iloc[0, frame.columns.get_loc("volume")] += 1
    frame.to_parquet(folder / "NEARUSDT_4h.parquet")
    before = snapshot(seeded_store)
    result = runner.invoke(app, ["ingest", str(folder), "--store", str(seeded_store),
                                 "--on-conflict", "error"])
    assert result.exit_code == 1 and "1 row(s) conflict" in result.output
    assert snapshot(seeded_store) == before
    result = runner.invoke(app, ["ingest", str(folder), "--on-conflict", "merge"])
    assert result.exit_code != 0 and "unknown --on-conflict 'merge'" in str(result.exception)


def test_cli_exit_codes_through_the_real_entry_point(tmp_path: Path) -> None:
    """The installed command prints one line for a user error and exits 2; a failed file exits 1."""
    exe = [sys.executable, "-c", "from cascade_ml.cli.main import main; main()"]
    missing = subprocess.run([*exe, "ingest", str(tmp_path / "nope"), "--store", str(tmp_path)],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "path not found" in missing.stderr
    assert "Traceback" not in missing.stderr
    empty = tmp_path / "1h" / "NEARUSDT.csv"
    empty.parent.mkdir()
    empty.write_text("")
    failed = subprocess.run([*exe, "ingest", str(empty), "--store", str(tmp_path / "s")],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and "empty file" in failed.stdout
