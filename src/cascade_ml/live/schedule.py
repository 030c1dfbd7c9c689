"""When the loop's jobs run: APScheduler triggers, fired by APScheduler itself when live, and by
a simulated clock in a replay, so both modes run the same jobs at the same times.

- the cycle: every bar close plus ``live.bar_delay_s`` (an ``IntervalTrigger`` anchored at the
  epoch, so 1h bars fire at hh:00:10);
- retraining: ``live.retrain_cron`` (a ``CronTrigger``, UTC).

``run_live`` hands the jobs to a ``BlockingScheduler`` with one worker (jobs never overlap),
coalescing missed runs and running the cycle once at start. ``run_replay`` walks the jobs' fire
times in order, moving the ``SimClock`` to each before calling the job: what the job sees is what
it would have seen at that moment live.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from cascade_ml.live.clock import SimClock

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Job:
    """A named job and when it fires."""

    name: str
    trigger: BaseTrigger
    run: Callable[[], object]


def cycle_trigger(interval: str, delay_s: float) -> IntervalTrigger:
    """Every bar close (multiples of ``interval`` since the epoch) plus ``delay_s``."""
    step = pd.Timedelta(interval).to_pytimedelta()
    return IntervalTrigger(seconds=step.total_seconds(), timezone=UTC,
                           start_date=EPOCH + pd.Timedelta(seconds=delay_s).to_pytimedelta())


def cron_trigger(crontab: str) -> CronTrigger:
    return CronTrigger.from_crontab(crontab, timezone=UTC)


def next_fire(trigger: BaseTrigger, after: pd.Timestamp, *,
              inclusive: bool = False) -> pd.Timestamp | None:
    """The trigger's first fire time after ``after`` (at or after it when ``inclusive``)."""
    moment = after if inclusive else after + pd.Timedelta(microseconds=1)
    fire = trigger.get_next_fire_time(None, moment.to_pydatetime())
    return None if fire is None else pd.Timestamp(fire).tz_convert("UTC")


def run_replay(jobs: list[Job], clock: SimClock, end: pd.Timestamp,
               stop: Callable[[], bool] = lambda: False) -> int:
    """Fire ``jobs`` in time order from the clock's now through ``end`` (inclusive), moving the
    clock to each fire time first; ties run in list order. Returns the number of runs."""
    pending = {i: next_fire(job.trigger, clock.now, inclusive=True) for i, job in enumerate(jobs)}
    runs = 0
    while not stop():
        due = [(t, i) for i, t in pending.items() if t is not None and t <= end]
        if not due:
            break
        when, i = min(due)
        clock.set(when)
        jobs[i].run()
        runs += 1
        pending[i] = next_fire(jobs[i].trigger, when)
    return runs


def run_live(jobs: list[Job], *, misfire_grace_s: int, run_first_now: str | None = None) -> None:
    """Run ``jobs`` on a blocking APScheduler (one worker, missed runs coalesced) until SIGINT or
    SIGTERM; ``run_first_now`` names a job to run once immediately."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(
        timezone=UTC, executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": misfire_grace_s})
    for job in jobs:
        first = {"next_run_time": datetime.now(UTC)} if job.name == run_first_now else {}
        scheduler.add_job(job.run, job.trigger, id=job.name, name=job.name, **first)

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping after the running job", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    scheduler.start()
