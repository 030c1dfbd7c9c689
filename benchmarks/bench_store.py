"""Store and ingest timings against plain pyarrow baselines measured in the same run.

Run: .venv/bin/python benchmarks/bench_store.py   (prints figures; asserts nothing)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore, PartitionKey

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def best(fn, repeat: int = 5) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = MarketStore(Path(tmp) / "store")
        start = time.perf_counter()
        report = ingest_path(store, SAMPLE)
        first = time.perf_counter() - start
        rows = sum(w.added for w in report.writes)
        start = time.perf_counter()
        ingest_path(store, SAMPLE)
        again = time.perf_counter() - start
        print(f"ingest data/sample: {first:.2f} s for {rows} rows ({rows / first:,.0f} rows/s); "
              f"re-ingest (no changes) {again:.2f} s")

        key = PartitionKey("ohlcv", "binance", "NEAR", "1h")
        path = store.root / key.relpath()
        frame = store.read_partition(key)
        read_store = best(lambda: store.read("ohlcv", "NEAR", venue="binance", interval="1h"))
        read_raw = best(lambda: pq.read_table(path).to_pandas())
        print(f"read {len(frame)} rows: store {read_store * 1e3:.1f} ms vs pyarrow "
              f"{read_raw * 1e3:.1f} ms (x{read_store / read_raw:.2f})")

        fresh = MarketStore(Path(tmp) / "fresh")
        counter = iter(range(100))
        write_store = best(lambda: fresh.write(
            PartitionKey("ohlcv", "binance", f"S{next(counter)}", "1h"), frame))
        table_path = Path(tmp) / "raw.parquet"
        write_raw = best(lambda: pq.write_table(
            pa.Table.from_pandas(frame), table_path, compression="zstd"))
        print(f"write {len(frame)} new rows: store {write_store * 1e3:.1f} ms (validate + atomic) "
              f"vs pyarrow {write_raw * 1e3:.1f} ms (x{write_store / write_raw:.1f})")
        merge = best(lambda: store.write(key, frame), repeat=3)
        print(f"idempotent merge of {len(frame)} identical rows: {merge * 1e3:.1f} ms "
              f"(x{merge / write_raw:.1f} pyarrow write)")


if __name__ == "__main__":
    main()
