"""When the loop's jobs run, live and in a replay; the loop's settings and state file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from cascade_ml.errors import CascadeError
from cascade_ml.live.clock import SimClock
from cascade_ml.live.config import LiveConfig
from cascade_ml.live.run import replay_start
from cascade_ml.live.schedule import Job, cron_trigger, cycle_trigger, next_fire, run_replay
from cascade_ml.live.state import LoopState

T0 = pd.Timestamp("2026-04-06T00:00:00Z")  # a Monday


def test_replay_fires_jobs_in_time_order_on_the_simulated_clock() -> None:
    clock = SimClock(T0)
    fired: list[tuple[str, pd.Timestamp]] = []
    jobs = [Job("retrain", cron_trigger("0 2 * * mon"), lambda: fired.append(("retrain",
                                                                              clock.now))),
            Job("cycle", cycle_trigger("1h", 10), lambda: fired.append(("cycle", clock.now)))]
    runs = run_replay(jobs, clock, T0 + pd.Timedelta(hours=3, seconds=10))
    at = [T0 + pd.Timedelta(t) for t in ("10s", "1h10s", "2h", "2h10s", "3h10s")]
    assert fired == list(zip(["cycle", "cycle", "retrain", "cycle", "cycle"], at, strict=True))
    assert runs == 5  # the end is inclusive
    assert clock.now == fired[-1][1]
    stopped = run_replay(jobs, SimClock(T0), T0 + pd.Timedelta("1d"), stop=lambda: True)
    assert stopped == 0


def test_triggers() -> None:
    cycle = cycle_trigger("4h", 30)
    assert next_fire(cycle, T0 + pd.Timedelta("1h")) == T0 + pd.Timedelta(hours=4, seconds=30)
    at = T0 + pd.Timedelta(hours=4, seconds=30)
    assert next_fire(cycle, at) == at + pd.Timedelta("4h")
    assert next_fire(cycle, at, inclusive=True) == at
    weekly = cron_trigger("0 2 * * mon")
    assert next_fire(weekly, T0 + pd.Timedelta("2h")) == T0 + pd.Timedelta(days=7, hours=2)
    assert next_fire(weekly, T0).day_name() == "Monday"


def test_live_settings_refuse_what_would_silently_mean_something_else() -> None:
    with pytest.raises(ValidationError, match="by name"):
        LiveConfig(retrain_cron="0 2 * * 1")  # crontab's Monday, APScheduler's Tuesday
    with pytest.raises(ValidationError, match="not a crontab"):
        LiveConfig(retrain_cron="every monday")
    with pytest.raises(ValidationError, match="not a timeframe"):
        LiveConfig(open_interest_timeframe="hourly")
    with pytest.raises(ValidationError, match="extra"):
        LiveConfig.model_validate({"retrain": "weekly"})
    assert LiveConfig(retrain_cron=None).retrain_cron is None


def test_warmup_shorter_than_the_longest_window_is_refused(sample_store) -> None:  # noqa: ANN001
    from cascade_ml.contracts.task import TaskConfig
    from cascade_ml.features.config import FeatureConfig
    from cascade_ml.features.incremental import LiveFeatures

    cfg = FeatureConfig()
    with pytest.raises(CascadeError, match="longest feature window"):
        LiveFeatures(sample_store, "NEAR", TaskConfig(), cfg, cfg.max_window())


def test_a_resumed_replay_starts_after_the_last_finished_cycle() -> None:
    bar, delay = pd.Timedelta("1h"), 10.0
    assert replay_start(None, T0, bar, delay) == T0
    resumed = replay_start(T0 + pd.Timedelta("5h"), T0, bar, delay)
    clock = SimClock(resumed)
    assert next_fire(cycle_trigger("1h", delay), clock.now, inclusive=True) == (
        T0 + pd.Timedelta(hours=7, seconds=10))  # the cycle of bar 06:00, never bar 05:00 again


def test_loop_state_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert LoopState.load(path) == LoopState()
    state = LoopState(last_bar=T0, next_retrain=T0 + pd.Timedelta("7d"), cycles=3)
    state.save(path)
    assert LoopState.load(path) == state
    path.write_text('{"last_bar": "not a time"}')
    with pytest.raises(CascadeError, match="unreadable loop state"):
        LoopState.load(path)
