"""One documented schema per dataset, enforced with pandera on the way into the store.

Every dataset is indexed by a UTC ``DatetimeIndex`` named ``timestamp`` with one row per
timestamp (the symbol, venue and interval are the store partition, not columns). Timestamps mean:

- ``ohlcv``: candle open time; the bar is known at ``timestamp + interval``.
- ``funding``: settlement time; the rate is known at that time.
- ``open_interest``: snapshot time.
- ``liquidations``: period start (a daily total is known at the end of the day).
- ``sentiment``: period start (a daily index is known at the end of the day).
- ``positioning``: snapshot time (Binance 5-minute long/short and taker ratios).
- ``depth``: snapshot time of the order book the band notionals were summed from.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandera.pandas as pa

DATASETS = ("ohlcv", "funding", "open_interest", "liquidations", "sentiment", "positioning",
            "depth")
DEPTH_BANDS = (1, 2, 3, 4, 5)
"""Percent distances from the mid price whose resting notional the ``depth`` dataset holds."""
DEPTH_COLUMNS = tuple(f"{side}_notional_{p}pct" for side in ("bid", "ask") for p in DEPTH_BANDS)
POSITIONING_COLUMNS = ("top_trader_account_ratio", "top_trader_position_ratio", "account_ratio",
                       "taker_buy_sell_ratio")


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset must and may hold, and which columns must not all be missing."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    any_of: tuple[str, ...] = ()
    description: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


SPECS: dict[str, DatasetSpec] = {
    "ohlcv": DatasetSpec(
        "ohlcv",
        required=("open", "high", "low", "close", "volume"),
        optional=("quote_volume", "trades"),
        description="Perp candles: prices in quote currency, volume in base units.",
    ),
    "funding": DatasetSpec(
        "funding",
        required=("funding_rate",),
        optional=("interval_hours",),
        description="Funding rate per settlement (fraction, positive = longs pay).",
    ),
    "open_interest": DatasetSpec(
        "open_interest",
        required=(),
        optional=("open_interest", "open_interest_value"),
        any_of=("open_interest", "open_interest_value"),
        description="Open interest in base units and/or quote (USD) value.",
    ),
    "liquidations": DatasetSpec(
        "liquidations",
        required=("total_notional",),
        optional=("long_notional", "short_notional"),
        description="Liquidated notional in quote currency over the period.",
    ),
    "sentiment": DatasetSpec(
        "sentiment",
        required=(),
        optional=("score", "mentions"),
        any_of=("score", "mentions"),
        description="A sentiment score (e.g. Fear & Greed 0-100) and/or a mention count.",
    ),
    "positioning": DatasetSpec(
        "positioning",
        required=(),
        optional=POSITIONING_COLUMNS,
        any_of=POSITIONING_COLUMNS,
        description="Long/short ratios of top traders (accounts, positions) and of all "
                    "accounts, and the taker buy/sell volume ratio.",
    ),
    "depth": DatasetSpec(
        "depth",
        required=(),
        optional=DEPTH_COLUMNS,
        any_of=DEPTH_COLUMNS,
        description="Quote notional resting on each side of the book within 1..5% of the mid "
                    "(cumulative: the 2% band includes the 1% band).",
    ),
}


@functools.cache
def schemas() -> dict[str, pa.DataFrameSchema]:
    """The pandera schema of each dataset, built on first use: importing pandera costs about
    0.2 s of CPU, and a process that only reads the store (a backtest worker) never validates."""
    import pandera.pandas as pa
    from pandera import Check

    finite = Check(lambda s: s.isna() | s.abs().lt(float("inf")), error="values must be finite")
    non_negative = Check.ge(0, error="must not be negative")
    positive = Check.gt(0, error="must be positive")

    def index() -> pa.Index:
        return pa.Index(
            "datetime64[ns, UTC]",
            name="timestamp",
            unique=True,
            checks=[Check(lambda idx: idx.is_monotonic_increasing,
                          error="timestamps must increase")],
        )

    def col(*checks: Check, nullable: bool = False, required: bool = True) -> pa.Column:
        return pa.Column(float, checks=[finite, *checks], nullable=nullable, required=required,
                         coerce=True)

    def high_low_checks() -> list[Check]:
        return [
            Check(lambda df: df["high"] >= df[["open", "close"]].max(axis=1),
                  error="high must be >= max(open, close)"),
            Check(lambda df: df["low"] <= df[["open", "close"]].min(axis=1),
                  error="low must be <= min(open, close)"),
            Check(lambda df: df["high"] >= df["low"], error="high must be >= low"),
        ]

    return {
        "ohlcv": pa.DataFrameSchema(
            {
                "open": col(positive),
                "high": col(positive),
                "low": col(positive),
                "close": col(positive),
                "volume": col(non_negative),
                "quote_volume": col(non_negative, nullable=True, required=False),
                "trades": col(non_negative, nullable=True, required=False),
            },
            index=index(),
            checks=high_low_checks(),
            strict=True,
        ),
        "funding": pa.DataFrameSchema(
            {
                "funding_rate": col(Check.in_range(-1.0, 1.0,
                                                   error="must be a fraction in [-1, 1]")),
                "interval_hours": col(positive, required=False),
            },
            index=index(),
            strict=True,
        ),
        "open_interest": pa.DataFrameSchema(
            {
                "open_interest": col(non_negative, nullable=True, required=False),
                "open_interest_value": col(non_negative, nullable=True, required=False),
            },
            index=index(),
            strict=True,
        ),
        "liquidations": pa.DataFrameSchema(
            {
                "total_notional": col(non_negative),
                "long_notional": col(non_negative, nullable=True, required=False),
                "short_notional": col(non_negative, nullable=True, required=False),
            },
            index=index(),
            strict=True,
        ),
        "sentiment": pa.DataFrameSchema(
            {
                "score": col(nullable=True, required=False),
                "mentions": col(non_negative, nullable=True, required=False),
            },
            index=index(),
            strict=True,
        ),
        "positioning": pa.DataFrameSchema(
            {c: col(non_negative, nullable=True, required=False) for c in POSITIONING_COLUMNS},
            index=index(),
            strict=True,
        ),
        "depth": pa.DataFrameSchema(
            {c: col(non_negative, nullable=True, required=False) for c in DEPTH_COLUMNS},
            index=index(),
            strict=True,
        ),
    }
