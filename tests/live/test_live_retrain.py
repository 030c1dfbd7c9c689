"""Retraining on the schedule inside a replay: the models step on the loop's store, the challenger
promoted only by the champion/challenger rule, the next cycles served by whichever is champion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from loop_helpers import FROM, UNTIL, copy_replay

from cascade_ml.live.run import replay_paths, run_replay
from cascade_ml.live.state import LoopState
from cascade_ml.models.bundle import load_bundle
from cascade_ml.models.tracking import CHAMPION, model_name
from cascade_ml.tracking import connect
from cascade_ml.trading.book import PaperBook


def test_scheduled_retrain_registers_a_challenger_and_promotes_by_rule(
        replay_base: Path, tmp_path: Path) -> None:
    _, sections = copy_replay(replay_base, tmp_path, retrain_cron="0 3 * * *")
    lines: list[str] = []
    summary = run_replay(sections, FROM, UNTIL, echo=lines.append, max_cycles=5)
    assert summary.cycles == 5 and summary.retrains == 1  # 03:00, between two cycles

    paths = replay_paths(sections)
    state = LoopState.load(paths.state_file)
    assert state.last_retrain == FROM + pd.Timedelta(hours=3) and state.retrains == 1
    assert state.next_retrain == FROM + pd.Timedelta(hours=27)  # tomorrow 03:00

    client, _ = connect(paths.tracking, sections.models.experiment)
    name = model_name("NEAR", 24)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    champion = str(client.get_model_version_by_alias(name, CHAMPION).version)
    assert versions == [1, 2]
    retrain = [line for line in lines if line.startswith("retrain: NEAR: v2 ")]
    assert len(retrain) == 1
    promoted = "PROMOTED" in retrain[0]
    # the rule: promoted iff it beats the best baseline and the champion re-scored on its rows
    assert ("does not beat" in retrain[0]) == (not promoted)
    assert champion == ("2" if promoted else "1")
    assert load_bundle(paths.models_dir / "NEAR").version == champion

    with PaperBook(paths.db_url, migrate=False) as book:
        dec = book.frames()["decisions"]
    before = dec[dec["as_of"] < FROM + pd.Timedelta(hours=3)]
    after = dec[dec["as_of"] > FROM + pd.Timedelta(hours=3)]
    assert len(before) == 3 and len(after) == 2
    assert before["model_version"].eq("1").all() and after["model_version"].eq(champion).all()


def test_a_failed_retraining_keeps_the_champion_serving(replay_base: Path,
                                                        tmp_path: Path) -> None:
    from dataclasses import replace

    from cascade_ml.data.sources.fear_greed import StoredFearGreed
    from cascade_ml.data.sources.replay import ReplayExchange
    from cascade_ml.data.store import MarketStore
    from cascade_ml.live.clock import SimClock
    from cascade_ml.live.run import build_loop

    _, sections = copy_replay(replay_base, tmp_path)
    # a models section no store can satisfy: the walk-forward refuses with a CascadeError
    sections = replace(sections, models=sections.models.model_copy(
        update={"min_rows": 10_000_000}))
    history = MarketStore(tmp_path / "replay" / "source")
    clock = SimClock(FROM + pd.Timedelta("10s"))
    loop, _ = build_loop(sections, replay_paths(sections), clock=clock,
                         exchange=ReplayExchange(history, clock),
                         fear_greed=StoredFearGreed(history))
    loop.start()
    report = loop.retrain()
    assert len(report.lines) == 1 and "retraining failed, the champion keeps serving" in \
        report.lines[0] and "min_rows" in report.lines[0]
    assert loop.bundles["NEAR"].version == "1"
    assert loop.cycle().symbols[0].model_version == "1"
    loop.book.close()
