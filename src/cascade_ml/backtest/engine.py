"""Bar-by-bar simulation of a leveraged perp position with a same-perp hedge leg.

Model (documented in docs/policy.md):
- The account holds ``free`` cash and an isolated bucket of margin ``bucket`` for the symbol. The
  bot's main leg (long by default) has gross notional ``leverage x bucket``; the hedge is an
  opposite leg of ``hedge x main`` in the same perp (Binance hedge mode), both on that margin.
- Bar i runs from its open to its close. First the liquidation check: the bucket is liquidated if
  the bar's adverse extreme (low for a net long, high for a net short) reaches the liquidation
  price of both legs with tiered maintenance margin; the bucket's equity is then lost (the rest of
  the maintenance margin goes to the insurance fund). Otherwise the legs are marked to the close.
- Funding settling at the bar's close is paid on every leg: longs pay ``rate x notional`` when
  the rate is positive, shorts receive it.
- At the close the strategy's targets for that bar (decided with data known at that close) are
  applied through the no-trade band: leverage is reset only when it drifted beyond the
  tolerance (and then the isolated margin is also reset to ``margin_fraction`` of equity, a free
  transfer); the hedge only when the policy's benefit-vs-cost test passes. Each traded notional
  pays the fee plus half the spread. After a liquidation the bot re-enters with
  ``margin_fraction`` of the remaining equity.

Plain numpy arrays and floats in the loop: ~10k bars take well under a second per strategy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascade_ml.policy import rules
from cascade_ml.policy.config import MarginTier, PolicyConfig
from cascade_ml.policy.liquidation import tier_arrays


@dataclass
class SimResult:
    """Per-bar paths and totals of one simulated strategy."""

    equity: np.ndarray
    leverage: np.ndarray
    hedge: np.ndarray
    liquidation_bars: list[int]
    fees: float
    funding: float
    traded_notional: float
    trades: int


class _Tiers:
    """Bracket lookups without per-call array building (hot loop)."""

    def __init__(self, tiers: list[MarginTier]) -> None:
        self.bounds, self.mmr, _, self.cum = tier_arrays(tiers)
        self.last = len(self.bounds) - 1

    def get(self, notional: float) -> tuple[float, float]:
        i = min(int(np.searchsorted(self.bounds, notional, side="right")), self.last)
        return float(self.mmr[i]), float(self.cum[i])


def _liq_price(long_q: float, short_q: float, equity: float, price: float, t: _Tiers) -> float:
    """Same solution as ``policy.liquidation.bucket_liquidation_price`` (tested equal)."""
    q_net = long_q - short_q
    mmr_l, cum_l = t.get(long_q * price)
    mmr_s, cum_s = t.get(short_q * price)
    cum = (cum_l if long_q > 0 else 0.0) + (cum_s if short_q > 0 else 0.0)
    denom = long_q * mmr_l + short_q * mmr_s - q_net
    if denom == 0:
        return 0.0 if q_net > 0 else np.inf
    x = (equity - q_net * price + cum) / denom
    if q_net > 0:
        return max(x, 0.0)
    return x if x > 0 else np.inf


def simulate(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
             funding_rate: np.ndarray, target_leverage: np.ndarray, target_hedge: np.ndarray,
             sigma_h: np.ndarray, cascade_prob: np.ndarray, *, side: str, tiers: list[MarginTier],
             policy: PolicyConfig, initial_equity: float = 10_000.0, margin_fraction: float = 0.5,
             leverage_tolerance: float = 0.1) -> SimResult:
    """Simulate one strategy; NaN targets mean 'keep the position as it is'.

    ``funding_rate[i]`` settles at the close of bar i (0 when none). ``sigma_h``/``cascade_prob``
    feed the no-trade band's benefit estimate (NaN: floor tail weight and a 0 benefit).
    """
    n = len(close)
    s = 1.0 if side == "long" else -1.0
    t = _Tiers(tiers)
    cost_rate = policy.trade_cost
    free = initial_equity * (1 - margin_fraction)
    bucket = initial_equity * margin_fraction
    main_q = hedge_q = 0.0
    equity = np.empty(n)
    lev_path = np.zeros(n)
    hedge_path = np.zeros(n)
    liqs: list[int] = []
    fees = funding = traded = 0.0
    trades = 0
    sig = np.where(np.isfinite(sigma_h), sigma_h, 0.0)
    prob = np.where(np.isfinite(cascade_prob), cascade_prob, 0.0)

    for i in range(n):
        c = close[i]
        if i > 0 and main_q > 0:
            p0 = close[i - 1]
            long_q, short_q = (main_q, hedge_q) if s > 0 else (hedge_q, main_q)
            x = _liq_price(long_q, short_q, bucket, p0, t)
            q_net = long_q - short_q
            hit = (q_net > 0 and low[i] <= x) or (q_net < 0 and high[i] >= x)
            if hit:
                liqs.append(i)
                bucket = 0.0
                main_q = hedge_q = 0.0
            else:
                bucket += q_net * (c - p0)
                rate = funding_rate[i]
                if rate != 0.0:
                    pay = rate * c * q_net
                    bucket -= pay
                    funding += pay
        if main_q == 0.0 and bucket <= 0.0:  # start, or re-enter after a liquidation
            total = free + max(bucket, 0.0)
            bucket, free = total * margin_fraction, total * (1 - margin_fraction)
        lt, ht = target_leverage[i], target_hedge[i]
        if bucket > 0 and np.isfinite(lt) and np.isfinite(ht):
            gross = main_q * c
            cur_lev = gross / bucket
            cur_h = hedge_q / main_q if main_q > 0 else 0.0
            relever = main_q == 0.0 or abs(cur_lev - lt) > leverage_tolerance * lt
            worth, _, _ = rules.rebalance_test(ht, cur_h, sig[i], prob[i], max(gross, lt * bucket),
                                               1.0, 1.0, policy)
            new_h = ht if (worth or main_q == 0.0) else cur_h
            if relever:  # re-levering also resets the isolated margin to its share of equity
                total = free + bucket
                bucket, free = total * margin_fraction, total * (1 - margin_fraction)
            new_main = lt * bucket / c if relever else main_q
            new_hedge = new_h * new_main
            dq = abs(new_main - main_q) + abs(new_hedge - hedge_q)
            if dq * c > 1e-9:
                cost = dq * c * cost_rate
                bucket -= cost
                fees += cost
                traded += dq * c
                trades += 1
                main_q, hedge_q = new_main, new_hedge
        equity[i] = free + bucket
        lev_path[i] = main_q * c / bucket if bucket > 0 else 0.0
        hedge_path[i] = hedge_q / main_q if main_q > 0 else 0.0
    return SimResult(equity, lev_path, hedge_path, liqs, fees, funding, traded, trades)
