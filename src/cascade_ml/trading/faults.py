"""The fault plan of a simulated venue (``cascade_ml.trading.venue``): which exchange faults a
run meets, how often, drawn from one seed so a run is repeatable.

Each order request (new order, new stop, cancel) meets at most one of the order faults, each
with its own share of the requests (the shares add up to at most 1), and, independently, a
hand change. A read request meets, with probability ``reads``, one of the faults a read can
meet (rate limit, ban, 503, timeout), then is asked again by the client. The faults are
Binance USD-M's own:

- ``rate_limit``: HTTP 429 with ``Retry-After`` and code -1003 (the request was not executed);
- ``ban``: HTTP 418, the IP ban that follows ignored 429s, with ``Retry-After``;
- ``timeout``: the venue accepts and executes the order, then the answer is lost (the client
  sees ``requests.Timeout``, ccxt raises ``RequestTimeout``);
- ``server_error``: HTTP 503 "execution status unknown": the order was executed or not, a coin
  flip of the plan;
- ``partial_fill``: a market order fills ``partial_fraction`` of its quantity and expires;
- ``margin``: the order is rejected with -2019 "Margin is insufficient.";
- ``hand_change``: before the request, someone changes a held position by hand on the
  exchange (a trade without our client order id); with ``hand_change_undo_s`` it is put back
  by hand that long after (an operator repairing it).
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field, model_validator

from cascade_ml.config_base import StrictModel

Fault = Literal["rate_limit", "ban", "timeout", "server_error", "partial_fill", "margin",
                "hand_change"]
ORDER_FAULTS: tuple[Fault, ...] = ("ban", "rate_limit", "margin", "timeout", "server_error",
                                   "partial_fill")
READ_FAULTS: tuple[Fault, ...] = ("rate_limit", "ban", "server_error", "timeout")


class FaultPlan(StrictModel):
    """Probabilities per order request of each fault (0: never), and the seed of the draws."""

    seed: int = Field(0, description="Seed of the draws: the same plan meets the same faults.")
    rate_limit: float = Field(0.0, ge=0, le=1, description="HTTP 429 with Retry-After.")
    ban: float = Field(0.0, ge=0, le=1, description="HTTP 418 (IP ban) with Retry-After.")
    timeout: float = Field(0.0, ge=0, le=1, description="The order is executed, the answer "
                           "is lost (requests.Timeout).")
    server_error: float = Field(0.0, ge=0, le=1, description="HTTP 503, execution unknown "
                                "(executed with probability 1/2).")
    partial_fill: float = Field(0.0, ge=0, le=1, description="A market order fills only "
                                "partial_fraction of its quantity.")
    margin: float = Field(0.0, ge=0, le=1, description="Rejected with -2019 (margin).")
    hand_change: float = Field(0.0, ge=0, le=1, description="A held position is changed by "
                               "hand on the exchange before the request.")
    hand_change_undo_s: float = Field(0.0, ge=0, description="Seconds (venue clock) after "
                                      "which the hand change is put back by hand (the "
                                      "operator's recovery); 0: never.")
    reads: float = Field(0.0, ge=0, le=1, description="Share of read requests (orders, "
                         "trades, positions, balance) meeting a 429, 418, 503 or timeout.")
    script: tuple[Fault | Literal["none"], ...] = Field(
        (), description="Faults of the first order requests, in order ('none': no fault), "
        "before the random draws take over (tests: one known fault at a known request).")
    retry_after_s: float = Field(0.05, ge=0, description="Seconds in the Retry-After header.")
    partial_fraction: float = Field(0.5, gt=0, lt=1, description="Share a partial fill fills.")

    @model_validator(mode="after")
    def _one_fault_per_request(self) -> FaultPlan:
        total = sum(getattr(self, f) for f in ORDER_FAULTS)
        if total > 1 + 1e-12:
            raise ValueError(f"the order faults' shares add up to {total:g}; at most 1 (one "
                             "fault per request)")
        return self


class FaultDice:
    """The plan's draws: one seeded generator per run (``state`` survives a restart)."""

    def __init__(self, plan: FaultPlan, state: dict | None = None) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.scripted = 0
        if state is not None:
            self.rng.setstate(_as_state(state["rng"]))
            self.scripted = int(state["scripted"])

    def order_fault(self) -> Fault | None:
        """The fault an order request meets (None: none)."""
        if self.scripted < len(self.plan.script):
            fault = self.plan.script[self.scripted]
            self.scripted += 1
            return None if fault == "none" else fault
        u, edge = self.rng.random(), 0.0
        for fault in ORDER_FAULTS:
            edge += getattr(self.plan, fault)
            if u < edge:
                return fault
        return None

    def hand_change(self) -> bool:
        """Whether a held position is changed by hand before this order request."""
        p = self.plan.hand_change
        return p > 0 and self.rng.random() < p

    def read_fault(self) -> Fault | None:
        p = self.plan.reads
        if p > 0 and self.rng.random() < p:
            return READ_FAULTS[self.rng.randrange(len(READ_FAULTS))]
        return None

    def coin(self) -> bool:
        return self.rng.random() < 0.5

    def pick(self, n: int) -> int:
        return self.rng.randrange(n)

    def state(self) -> dict:
        """JSON-ready state: the generator's and the script's position."""
        version, internal, gauss = self.rng.getstate()
        return {"rng": [version, list(internal), gauss], "scripted": self.scripted}


def _as_state(raw: object) -> tuple:
    version, internal, gauss = raw  # type: ignore[misc]
    return version, tuple(internal), gauss
