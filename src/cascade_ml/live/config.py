"""Settings of the live loop and of paper / testnet / live execution (the `live` section)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import Field, field_validator

from cascade_ml.config_base import StrictModel
from cascade_ml.monitoring.breakers import BreakerConfig
from cascade_ml.trading.db import DEFAULT_DB_URL
from cascade_ml.trading.faults import FaultPlan
from cascade_ml.trading.types import Mode


class ReplayConfig(StrictModel):
    """Where a replay (``cascade-ml live --replay``) reads history from and keeps its state.

    Everything a replay writes lives under ``dir``, apart from the pipeline's own store, models,
    MLflow and book, so replaying never touches what the live loop or ``cascade-ml run`` keep.
    """

    source: Path = Field(Path("data/sample"), description="Raw files (ingested once into "
                         "<dir>/source) that the replay exchange serves bar by bar.")
    dir: Path = Field(Path("data/live/replay"), description="The replay's store, models, MLflow, "
                      "book and loop state.")
    db_url: str | None = Field(None, description="SQLAlchemy URL of the replay's book (e.g. a "
                               "PostgreSQL database); null: <dir>/book.db (SQLite).")
    venue: str = Field("binance", description="Venue of the history the replay exchange serves.")
    faults: FaultPlan = Field(default_factory=FaultPlan, description="testnet replays: the "
                              "exchange faults the simulated venue injects (trading.faults).")
    rate_limit_ms: float = Field(50.0, ge=0, description="testnet replays: ccxt's rate limiter "
                                 "spacing of requests to the simulated venue (Binance's: 50).")


class LiveConfig(StrictModel):
    """The loop (what it collects, when it runs and retrains), the book and where orders go. The
    bot it trades (equity, leverage, margin, stops) is the `trading` section and its side
    ``task.side``, as in the backtest."""

    mode: Mode = Field("paper", description="paper: simulated fills into the book; testnet / "
                       "live: real orders through ccxt (API keys from the environment); a "
                       "replay in testnet trades with the simulated venue (no keys).")
    db_url: str = Field(DEFAULT_DB_URL, description="SQLAlchemy URL of the book.")
    quote: str = "USDT"
    exchange: str = Field("binanceusdm", description="ccxt id the loop collects market data from "
                          "(and sends testnet / live orders to).")
    hedge_mode: bool = Field(
        False, description="The exchange account is in hedge (dual-side) mode: orders carry "
        "positionSide so the hedge leg does not net against the main leg.")

    state_dir: Path = Field(Path("data/live"), description="Loop state (last bar done, next "
                            "retrain) of the live loop.")
    bar_delay_s: float = Field(10.0, ge=0, description="Seconds after a bar's close the cycle "
                               "runs (the exchange needs a moment to publish the final candle).")
    since: str = Field("2023-01-01", description="First timestamp fetched for a dataset the "
                       "store does not hold yet.")
    open_interest_timeframe: str | None = Field(
        "4h", description="Open-interest snapshots collected every cycle (kept in the store, so "
        "they accumulate beyond the exchange's ~30-day window); null: not collected.")
    fear_greed: bool = Field(True, description="Collect the daily Crypto Fear & Greed index "
                             "(alternative.me; served from the store in a replay).")
    fear_greed_url: str = "https://api.alternative.me/fng/"
    warmup_bars: int = Field(
        1500, ge=100, description="Bars of history each cycle computes features over: enough for "
        "the longest window (features.max_window) with room; the newest row matches a full build.")
    retrain_cron: str | None = Field(
        "0 2 * * mon", description="When to retrain (crontab, UTC; days of the week by name: "
        "default Mondays 02:00): the models step on the loop's store, promoted by the "
        "champion/challenger rule; null: never.")
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Serve the loop's Prometheus metrics (monitor, book) "
        "on this port; null: off.")
    breakers: BreakerConfig = Field(
        default_factory=BreakerConfig, description="Circuit breakers: daily loss, maximum "
        "drawdown, stale data, and where their alerts go (docs/live.md, runbook).")
    replay: ReplayConfig = Field(default_factory=ReplayConfig)

    @field_validator("open_interest_timeframe")
    @classmethod
    def _timeframe(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                pd.Timedelta(value)
            except ValueError as exc:
                raise ValueError(f"not a timeframe {value!r} (e.g. 1h, 4h, 1d)") from exc
        return value

    @field_validator("retrain_cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            fields = value.split()
            if len(fields) == 5 and any(c.isdigit() for c in fields[4]):
                # APScheduler counts weekdays from Monday = 0, crontab from Sunday = 0: a number
                # would silently mean another day, so only names are accepted
                raise ValueError(f"write the day of the week in {value!r} by name (mon, tue, "
                                 "..., sun; ranges like mon-fri), not by number")
            try:
                CronTrigger.from_crontab(value, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"not a crontab expression {value!r}: {exc}") from exc
        return value
