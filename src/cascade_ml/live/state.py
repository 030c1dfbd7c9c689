"""The loop's own small state: the last bar it finished and when it retrains next (atomic JSON).

The book and the store are the real record (each written atomically, the book one transaction
per cycle); this file only lets a restarted loop know where to resume. Losing its last update to
a kill is harmless: the bar is simply run again, and every write of a cycle is idempotent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pandas as pd

from cascade_ml.atomic import read_json, write_json
from cascade_ml.data.store import to_utc
from cascade_ml.errors import CascadeError
from cascade_ml.monitoring.breakers import BREAKERS, BreakerEvent, BreakerState

_TIMES = ("last_bar", "next_retrain", "last_retrain", "window_from", "window_until")


@dataclass
class LoopState:
    """Where the loop is. Times are UTC; ``window_*`` is set for a replay only."""

    last_bar: pd.Timestamp | None = None
    next_retrain: pd.Timestamp | None = None
    last_retrain: pd.Timestamp | None = None
    window_from: pd.Timestamp | None = None
    window_until: pd.Timestamp | None = None
    cycles: int = 0
    retrains: int = 0
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> LoopState:
        raw = read_json(path)
        if raw is None:
            return cls()
        known = {f.name for f in fields(cls)}
        try:
            values = {k: v for k, v in raw.items() if k in known}
            for key in _TIMES:
                values[key] = to_utc(values[key]) if values.get(key) else None
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise CascadeError(f"unreadable loop state ({exc})", str(path),
                               hint="delete it to start the loop afresh") from exc

    def save(self, path: Path) -> None:
        out = asdict(self)
        for key in _TIMES:
            out[key] = None if out[key] is None else out[key].isoformat()
        write_json(path, out)


def reset_breakers(path: Path, names: list[str] | None) -> list[BreakerEvent]:
    """The operator's reset of the circuit breakers saved in the loop state at ``path`` (run it
    with the loop stopped: a running loop rewrites the file every cycle). ``names``: breakers
    (``daily_loss``, ``max_drawdown``, ``stale_data``) or keys (``stale_data:NEAR``); None:
    all. Returns the resets done (none when nothing was tripped)."""
    state = LoopState.load(path)
    breakers = BreakerState.from_dict(state.extra.get("breakers"))
    unknown = [n for n in names or [] if n.split(":")[0] not in BREAKERS]
    if unknown:
        raise CascadeError(f"no circuit breaker named {', '.join(unknown)}", str(path),
                           hint=f"name one of {', '.join(BREAKERS)} (or stale_data:<SYMBOL>), "
                                "or 'all'")
    events = breakers.reset(names)
    state.extra["breakers"] = breakers.to_dict()
    state.save(path)
    return events
