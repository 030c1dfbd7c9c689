"""Fixtures of the live tests (helpers in live_helpers.py)."""

from __future__ import annotations

import pytest
from live_helpers import OrderDesk
from panel_data import (  # noqa: F401 - the small universe's fixtures (tests/panel_data.py)
    panel_bundle_dir,
    panel_cfg,
    panel_store,
    small_panel,
)


@pytest.fixture
def order_desk():
    """A factory: ``make(avg_price=5.1, error=None) -> (ccxt.binanceusdm, OrderDesk)``."""
    import ccxt

    def make(avg_price: float = 5.1, error: str | None = None):
        desk = OrderDesk(avg_price=avg_price, error=error)
        exchange = ccxt.binanceusdm({"enableRateLimit": False})
        exchange.session.mount("https://", desk)
        return exchange, desk

    return make


@pytest.fixture(scope="session")
def replay_base(tmp_path_factory: pytest.TempPathFactory, sample_store):  # noqa: ANN001, ANN201
    """A replay folder seeded at ``loop_helpers.FROM`` with a tiny champion trained by the loop's
    own bootstrap (the sample ingested once, by the session's ``sample_store``). Copy it
    (``loop_helpers.copy_replay``) before running anything on it."""
    import shutil

    from loop_helpers import FROM, SAMPLE, UNTIL, sections_of, write_pipeline

    from cascade_ml.atomic import write_json
    from cascade_ml.live.run import run_replay
    from cascade_ml.live.seed import MARKER, _signature

    root = tmp_path_factory.mktemp("replay_base")
    base = root / "replay"
    shutil.copytree(sample_store.root, base / "source")
    write_json(base / "source" / MARKER, {"source": str(SAMPLE), "files": _signature(SAMPLE)})
    sections = sections_of(write_pipeline(root, base))
    summary = run_replay(sections, FROM, UNTIL, echo=lambda line: None, max_cycles=0)
    assert summary.cycles == 0 and summary.retrains == 1
    return base


@pytest.fixture(scope="session")
def reference_replay(replay_base, tmp_path_factory: pytest.TempPathFactory) -> dict:  # noqa: ANN001
    """The whole test window replayed once (in process, no retraining), with the store checked
    against the history at every cycle."""
    from loop_helpers import FROM, UNTIL, copy_replay, store_is_point_in_time

    from cascade_ml.data.store import MarketStore
    from cascade_ml.live.run import run_replay

    folder = tmp_path_factory.mktemp("reference")
    _, sections = copy_replay(replay_base, folder)
    replay_dir = folder / "replay"
    history = MarketStore(replay_dir / "source")
    seen: list[dict] = []

    def watch(loop, report) -> None:  # noqa: ANN001 - what the loop holds after each cycle
        store_is_point_in_time(history, loop.store, report.now)
        table = loop.features["NEAR"].table
        seen.append({"now": report.now, "bar": report.bar, "last_row": table.index[-1],
                     "cycle": report.symbols[0], "collected": report.collected.rows})

    lines: list[str] = []
    summary = run_replay(sections, FROM, UNTIL, echo=lines.append, report_every=1, watch=watch)
    return {"summary": summary, "seen": seen, "dir": replay_dir, "sections": sections,
            "lines": lines}
