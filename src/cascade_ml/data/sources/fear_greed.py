"""The Crypto Fear & Greed index as a source the loop collects like any other, behind one interface.

- ``AlternativeMe``: the public API (``GET https://api.alternative.me/fng/?limit=N``; values as
  strings, ``timestamp`` = the UTC day start in epoch seconds, newest first) over httpx, with
  retries on transport errors and 5xx answers.
- ``StoredFearGreed``: the same rows served from a store, for replays: a value appears once its
  day has ended (the store's availability rule for daily data; the API shows the current day's
  value earlier, which the features ignore until the day ends, so decisions do not differ).

Both return canonical ``sentiment`` rows (index = day start, column ``score``). The store keeps
them under ``sentiment/alternative.me/MARKET/1d``, the partition the sample's CSV ingests into,
and the features use a day's value only once the day has ended (its availability time).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

import httpx
import pandas as pd

from cascade_ml.data.store import MarketStore, PartitionKey, to_utc
from cascade_ml.data.validate import to_canonical
from cascade_ml.errors import CascadeError

KEY = PartitionKey("sentiment", "alternative.me", "MARKET", "1d")
DAY = pd.Timedelta("1d")


class FearGreedSource(Protocol):
    """Daily Fear & Greed values stamped at or after ``since`` and published by ``now``."""

    def fetch(self, since: pd.Timestamp | None, now: pd.Timestamp) -> pd.DataFrame: ...


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"score": pd.Series(dtype=float)},
                        index=pd.DatetimeIndex([], tz="UTC", name="timestamp"))


def _known(frame: pd.DataFrame, since: pd.Timestamp | None, now: pd.Timestamp) -> pd.DataFrame:
    frame = frame[frame.index <= now]
    return frame if since is None else frame[frame.index >= since]


class AlternativeMe:
    """The alternative.me API; ``transport`` lets tests answer offline with a recorded body."""

    def __init__(self, url: str = "https://api.alternative.me/fng/", *, timeout: float = 10.0,
                 retries: int = 3, backoff: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def fetch(self, since: pd.Timestamp | None, now: pd.Timestamp) -> pd.DataFrame:
        days = 0 if since is None else max(math.ceil((now - since) / DAY) + 1, 1)
        body = self._get({"limit": days, "format": "json"})
        rows = body.get("data") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise CascadeError(f"unexpected answer, no 'data' list: {str(body)[:200]}", self.url)
        try:
            raw = pd.DataFrame({"timestamp": [int(r["timestamp"]) for r in rows],
                                "score": [float(r["value"]) for r in rows]})
        except (KeyError, TypeError, ValueError) as exc:
            raise CascadeError(f"a Fear & Greed row lacks a numeric timestamp/value ({exc})",
                               self.url) from exc
        if raw.empty:
            return _empty()
        return _known(to_canonical(raw, "sentiment", self.url), since, now)

    def _get(self, params: dict) -> object:
        last = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._http.get(self.url, params=params)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise CascadeError(f"refused: HTTP {response.status_code} {response.text[:200]}",
                                   self.url)
            try:
                return response.json()
            except ValueError as exc:
                raise CascadeError(f"not JSON: {response.text[:200]}", self.url) from exc
        raise CascadeError(f"no answer after {self.retries + 1} attempt(s); last: {last}",
                           self.url)


class StoredFearGreed:
    """Fear & Greed rows of a store (the replay's history), as the API would have served them."""

    def __init__(self, store: MarketStore) -> None:
        self._frame = (store.read_partition(KEY) if (store.root / KEY.relpath()).exists()
                       else None)

    def fetch(self, since: pd.Timestamp | None, now: pd.Timestamp) -> pd.DataFrame:
        if self._frame is None:
            return _empty()
        return _known(self._frame, since, now - DAY)


def collect_fear_greed(store: MarketStore, source: FearGreedSource, now: pd.Timestamp,
                       default_since: str) -> int:
    """Fetch what the store lacks (from the day after its newest row) and merge it in; returns
    the rows added."""
    path = store.root / KEY.relpath()
    since = (store.read_partition(KEY).index.max() + DAY if path.exists()
             else to_utc(default_since))
    frame = source.fetch(since, to_utc(now))
    if frame.empty:
        return 0
    return store.write(KEY, frame, on_conflict="replace", source="alternative.me").added
