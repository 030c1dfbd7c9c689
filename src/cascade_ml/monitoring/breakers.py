"""Circuit breakers of the live book: a daily loss limit, a maximum drawdown and stale data.

Pure logic over numbers the loop hands in (the book's equity marked at the bar's close, how many
bars the newest feature row is behind); the loop turns a tripped breaker into reasons for
``decide(..., monitor_reasons=...)``, so the decision is the policy's one fail-safe (the position
reduced to its caps, no new exposure) until the breaker resets; ``monitoring.alerts`` logs and
posts the trips and resets, ``monitoring.exporter`` exports them.

- ``daily_loss`` (book): equity at the start of the UTC day (the mark at the close of the day's
  last bar before it) minus the equity now, at least ``daily_loss_limit`` x that start equity.
  Resets by itself at the next UTC day.
- ``max_drawdown`` (book): peak equity since the loop started (or since the last reset) minus
  the equity now, at least ``max_drawdown`` x the peak. Resets only by the operator
  (``cascade-ml live --reset-breakers``), which also starts a new peak at the current equity.
- ``stale_data`` (per symbol): the newest feature row (so the forecast) is at least
  ``stale_intervals`` bars behind the bar that just closed. Resets when a fresh row arrives.

A breaker trips at its limit exactly (a 5 % limit on 10,000 trips at a loss of 500.00). The
state (``BreakerState.to_dict``) is saved with the loop state, so a restart keeps a tripped
breaker tripped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from cascade_ml.config_base import StrictModel

DAILY_LOSS, MAX_DRAWDOWN, STALE_DATA = "daily_loss", "max_drawdown", "stale_data"
BREAKERS = (DAILY_LOSS, MAX_DRAWDOWN, STALE_DATA)
BOOK = "book"
TOL = 1e-9  # a loss computed as 500.0000000001 on a 500 limit still trips


class BreakerConfig(StrictModel):
    """The `live.breakers` section: each limit, null to turn that breaker off."""

    daily_loss_limit: float | None = Field(
        0.05, gt=0, lt=1, description="Largest loss in one UTC day, as a share of the equity "
        "at the day's start; at it the book fails safe until the next UTC day.")
    max_drawdown: float | None = Field(
        0.15, gt=0, lt=1, description="Largest fall from the peak equity, as a share of the "
        "peak (the maximum tolerable loss of the book); at it the book fails safe until an "
        "operator resets it (cascade-ml live --reset-breakers).")
    stale_intervals: int | None = Field(
        3, ge=1, description="Bars without a fresh feature row (so without a fresh forecast) "
        "after which the symbol fails safe until one arrives.")
    webhook_url: str | None = Field(
        None, description="POST every trip and reset as JSON to this URL; null: log and metric "
        "only.")
    webhook_timeout_s: float = Field(5.0, gt=0, description="Seconds a webhook POST may take.")


@dataclass(frozen=True)
class Trip:
    """One tripped breaker: which, on what (``book`` or a symbol), since when, and why."""

    breaker: str
    scope: str
    at: pd.Timestamp
    reason: str

    @property
    def key(self) -> str:
        return self.breaker if self.scope == BOOK else f"{self.breaker}:{self.scope}"

    def to_dict(self) -> dict[str, str]:
        return {"breaker": self.breaker, "scope": self.scope, "at": self.at.isoformat(),
                "reason": self.reason}

    @classmethod
    def from_dict(cls, raw: dict[str, str]) -> Trip:
        return cls(raw["breaker"], raw["scope"], pd.Timestamp(raw["at"]), raw["reason"])


@dataclass(frozen=True)
class BreakerEvent:
    """A trip or a reset (what is alerted)."""

    kind: Literal["trip", "reset"]
    trip: Trip
    note: str = ""

    def payload(self) -> dict[str, str]:
        return {"event": self.kind, **self.trip.to_dict(), "note": self.note}

    def line(self) -> str:
        if self.kind == "trip":
            return f"CIRCUIT BREAKER TRIPPED: {self.trip.reason}"
        return f"circuit breaker {self.trip.key} reset: {self.note}"


@dataclass(frozen=True)
class BreakerStatus:
    """One breaker's reading for the metrics: current value against its limit."""

    breaker: str
    scope: str
    value: float
    limit: float
    tripped: bool


@dataclass
class BreakerState:
    """Where every breaker stands; mutated by ``check_*`` (which return what changed)."""

    day: str | None = None
    day_start_equity: float | None = None
    last_equity: float | None = None
    peak_equity: float | None = None
    tripped: dict[str, Trip] = field(default_factory=dict)
    readings: dict[str, BreakerStatus] = field(default_factory=dict)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "day_start_equity": self.day_start_equity,
                "last_equity": self.last_equity, "peak_equity": self.peak_equity,
                "tripped": {k: t.to_dict() for k, t in self.tripped.items()}}

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> BreakerState:
        raw = raw or {}
        return cls(raw.get("day"), raw.get("day_start_equity"), raw.get("last_equity"),
                   raw.get("peak_equity"),
                   {k: Trip.from_dict(t) for k, t in (raw.get("tripped") or {}).items()})

    # ------------------------------------------------------------------ queries
    def reasons(self, symbol: str) -> list[str]:
        """Why ``symbol``'s decision must fail safe: the book's trips and its own."""
        return [t.reason for t in self.tripped.values() if t.scope in (BOOK, symbol)]

    def status(self) -> list[BreakerStatus]:
        return list(self.readings.values())

    # ------------------------------------------------------------------ transitions
    def _trip(self, breaker: str, scope: str, at: pd.Timestamp, reason: str
              ) -> list[BreakerEvent]:
        trip = Trip(breaker, scope, at, reason)
        if trip.key in self.tripped:
            return []
        self.tripped[trip.key] = trip
        return [BreakerEvent("trip", trip)]

    def _reset(self, key: str, note: str) -> list[BreakerEvent]:
        trip = self.tripped.pop(key, None)
        return [] if trip is None else [BreakerEvent("reset", trip, note)]

    def check_book(self, cfg: BreakerConfig, equity: float, bar: pd.Timestamp
                   ) -> list[BreakerEvent]:
        """The book's breakers after the bar opening at ``bar`` (its close marked at
        ``equity``)."""
        events: list[BreakerEvent] = []
        day = f"{bar:%Y-%m-%d}"  # the bar's own day: the 23:00 bar closes the day
        if day != self.day:
            self.day_start_equity = self.last_equity if self.last_equity is not None else equity
            self.day = day
            events += self._reset(DAILY_LOSS, f"a new UTC day ({day}) began")
        self.last_equity = equity
        if cfg.daily_loss_limit is not None:
            start = float(self.day_start_equity)  # type: ignore[arg-type]
            loss, limit = start - equity, cfg.daily_loss_limit * start
            self.readings[DAILY_LOSS] = BreakerStatus(DAILY_LOSS, BOOK, loss / start,
                                                      cfg.daily_loss_limit, False)
            if loss >= limit - TOL:
                events += self._trip(DAILY_LOSS, BOOK, bar, (
                    f"circuit breaker daily_loss tripped on the bar of {bar:%Y-%m-%d %H:%M}: "
                    f"the book lost {loss:,.2f} since the UTC day's start ({start:,.2f} -> "
                    f"{equity:,.2f}), at least the {cfg.daily_loss_limit:.1%} daily loss "
                    f"limit ({limit:,.2f}); no new risk until the next UTC day"))
        self.peak_equity = max(self.peak_equity or equity, equity)
        if cfg.max_drawdown is not None:
            peak = self.peak_equity
            drop, limit = peak - equity, cfg.max_drawdown * peak
            self.readings[MAX_DRAWDOWN] = BreakerStatus(MAX_DRAWDOWN, BOOK, drop / peak,
                                                        cfg.max_drawdown, False)
            if drop >= limit - TOL:
                events += self._trip(MAX_DRAWDOWN, BOOK, bar, (
                    f"circuit breaker max_drawdown tripped on the bar of {bar:%Y-%m-%d %H:%M}: "
                    f"equity {equity:,.2f} is {drop:,.2f} below its peak {peak:,.2f}, at least "
                    f"the {cfg.max_drawdown:.1%} maximum drawdown ({limit:,.2f}); no new risk "
                    "until an operator resets it (cascade-ml live --reset-breakers)"))
        self._mark_tripped()
        return events

    def check_stale(self, cfg: BreakerConfig, symbol: str, behind: int, bar: pd.Timestamp
                    ) -> list[BreakerEvent]:
        """``symbol``'s stale-data breaker: its newest feature row is ``behind`` bars older
        than the bar opening at ``bar`` (0: it is that bar)."""
        if cfg.stale_intervals is None:
            return []
        key = f"{STALE_DATA}:{symbol}"
        self.readings[key] = BreakerStatus(STALE_DATA, symbol, float(behind),
                                           float(cfg.stale_intervals), False)
        if behind == 0:
            events = self._reset(key, f"a fresh {symbol} bar ({bar:%Y-%m-%d %H:%M}) arrived")
        elif behind >= cfg.stale_intervals:
            events = self._trip(STALE_DATA, symbol, bar, (
                f"circuit breaker stale_data tripped for {symbol} on the bar of "
                f"{bar:%Y-%m-%d %H:%M}: its newest feature row (and forecast) is {behind} bars "
                f"old, at least the {cfg.stale_intervals} allowed; no new risk until a fresh "
                "bar arrives"))
        else:
            events = []
        self._mark_tripped()
        return events

    def reset(self, names: list[str] | None = None) -> list[BreakerEvent]:
        """The operator's reset: the named breakers (``daily_loss``, ``max_drawdown``,
        ``stale_data`` or a key such as ``stale_data:NEAR``; None: all). Resetting the maximum
        drawdown starts a new peak at the next cycle's equity."""
        keys = [k for k in self.tripped if names is None or k in names
                or self.tripped[k].breaker in names]
        if names is None or MAX_DRAWDOWN in names:
            self.peak_equity = None
        events = [e for k in keys for e in self._reset(k, "reset by the operator")]
        self._mark_tripped()
        return events

    def _mark_tripped(self) -> None:
        for key, r in self.readings.items():
            tripped = key in self.tripped
            if r.tripped != tripped:
                self.readings[key] = BreakerStatus(r.breaker, r.scope, r.value, r.limit,
                                                   tripped)
