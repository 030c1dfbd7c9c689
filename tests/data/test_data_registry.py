"""One registry of file sources: every source is reachable, and no source imports ingest back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from cascade_ml.data import ingest
from cascade_ml.data.sources.base import FileSource, SkipFile
from cascade_ml.data.sources.registry import FILE_SOURCES, data_suffixes, find_source
from cascade_ml.errors import CascadeError

REPO = Path(__file__).resolve().parents[2]
RAW = REPO / "tests" / "fixtures" / "raw"
SAMPLE = REPO / "data" / "sample"
EXTRA = REPO / "data" / "extra" / "anotheryearwasted-trivix" / "data"
SOURCES_DIR = REPO / "src" / "cascade_ml" / "data" / "sources"

# One real file per registered source (a new source without an example here fails the test).
EXAMPLES = {
    "freqtrade": RAW / "freqtrade/binance/futures/NEAR_USDT_USDT-1h-futures.feather",
    "varanus": RAW / "varanus/NEARUSDT_4h.parquet",
    "hyperliquid": next(SAMPLE.rglob("daily_notional_liquidated*.json")),
    "binance_dump": RAW / "gravestone/1h/NEARUSDT.csv",
    "coinalyze": next((RAW / "coinalyze").glob("historical_open_interest*")),
    "sentiment": next(SAMPLE.rglob("fng.csv")),
    "binance_vision": EXTRA / "metrics/BTCUSDT.csv",
    "binance_force_orders": EXTRA / "liquidations/NEARUSDT.csv",
}


def test_every_registered_source_is_reached_by_a_real_file() -> None:
    names = [s.name for s in FILE_SOURCES]
    assert len(names) == len(set(names))
    assert set(EXAMPLES) == set(names)
    for name, path in EXAMPLES.items():
        source = find_source(path)
        assert source is not None and source.name == name, (path, source)
        assert ingest.detect(path) is source
        assert ingest.load_file(path)  # and it loads


def test_sources_share_one_interface() -> None:
    for source in FILE_SOURCES:
        assert isinstance(source, FileSource)
        assert source.suffixes and all(s == s.lower() and s.startswith(".")
                                       for s in source.suffixes)
    assert ingest.DATA_SUFFIXES == data_suffixes() >= {".csv", ".parquet", ".feather", ".json",
                                                       ".zip"}


def test_unknown_and_empty_files_keep_their_old_outcomes(tmp_path: Path) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    assert find_source(odd) is None
    with pytest.raises(SkipFile, match=r"format not recognised \(header \['a', 'b'\]\)"):
        ingest.load_file(odd)
    empty = tmp_path / "x.csv"
    empty.write_text("")
    with pytest.raises(CascadeError, match="x.csv: empty file"):
        ingest.load_file(empty)


def _imports_of(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside a function body."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_source_module_imports_ingest() -> None:
    files = sorted(SOURCES_DIR.glob("*.py"))
    assert len(files) >= 10
    offenders = [f.name for f in files if "cascade_ml.data.ingest" in _imports_of(f)]
    assert offenders == []


def test_importing_the_exchange_source_does_not_import_ingest() -> None:
    code = ("import sys\n"
            "import cascade_ml.data.sources.exchange\n"
            "import cascade_ml.data.sources.table\n"
            "import cascade_ml.data.sources.registry\n"
            "print('cascade_ml.data.ingest' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "False"
