"""``decide`` on whole columns: the backtest's view of the policy, bar by bar at once.

The same rules (:mod:`cascade_ml.policy.rules`) and the same fail-safe
(:mod:`cascade_ml.policy.failsafe`) as ``decide``; a test checks the two agree row by row.
Freshness does not apply here (every out-of-sample row is fresh by construction); a row whose
forecast values fail the checks gets the fail-safe answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cascade_ml.policy import failsafe, rules
from cascade_ml.policy.config import MarginTier, PolicyConfig
from cascade_ml.policy.liquidation import Side


def _col(x: np.ndarray | float | None, n: int) -> np.ndarray:
    """A float column of length n (NaN where None)."""
    if x is None:
        return np.full(n, np.nan)
    return np.broadcast_to(np.asarray(x, dtype=float), (n,)).astype(float)


def decide_columns(sigma_h: np.ndarray, cascade_prob: np.ndarray, n_fired: np.ndarray,
                   horizon_hours: float, side: Side, notional: float,
                   tiers: Sequence[MarginTier], cfg: PolicyConfig, **kw: np.ndarray | None
                   ) -> dict[str, np.ndarray]:
    """:func:`decide_columns_hold`'s columns, without the hold rule."""
    return decide_columns_hold(sigma_h, cascade_prob, n_fired, horizon_hours, side, notional,
                               tiers, cfg, **kw)[0]


def decide_columns_hold(sigma_h: np.ndarray, cascade_prob: np.ndarray, n_fired: np.ndarray,
                        horizon_hours: float, side: Side, notional: float,
                        tiers: Sequence[MarginTier], cfg: PolicyConfig, *,
                        vol_q99: np.ndarray | None = None,
                        trailing_vol_annual: np.ndarray | None = None,
                        beta_btc: np.ndarray | None = None, r2_btc: np.ndarray | None = None,
                        beta_eth: np.ndarray | None = None, r2_eth: np.ndarray | None = None
                        ) -> tuple[dict[str, np.ndarray], HedgeHold | None]:
    """Per bar: ``hedge`` target, ``held`` hedge (the hedge a position following the policy
    holds from the first bar on: it moves to the target only where ``decide`` would say the
    move pays, see :class:`HedgeHold`), leverage ``cap``, ``fail_safe`` flag, hedge
    ``instrument`` code (:data:`rules.INSTRUMENTS`), ``beta``, ``r2``, ``exposure`` (1 - h R^2
    of the held hedge), ``adverse`` (the tail move the size is built on),
    ``loss_per_notional`` (the risk-budget size cap is ``max_risk_fraction x equity /
    loss_per_notional``) and ``ok_btc``/``ok_eth`` (the proxy qualifies:
    :func:`rules.proxy_qualifies`, on every bar, fail-safe or not: a proxy hedge held where it
    does not is moved even inside the no-trade band). ``notional`` picks the margin tier. With
    them, the hold rule a position opening from flat restarts from (:class:`HedgeHold`; None
    under the ``score`` rule, whose held hedge is the target)."""
    s = np.asarray(sigma_h, dtype=float)
    n = len(s)
    p = _col(cascade_prob, n)
    q99 = None if vol_q99 is None else _col(vol_q99, n)
    ok = np.asarray(failsafe.forecast_ok(s, p, q99, cfg), dtype=bool)
    s_ok, p_ok = np.where(ok, s, 0.01), np.where(ok, p, 0.0)
    q_ok = None if q99 is None else np.where(ok, q99, np.nan)
    ref = rules.vol_reference(None if trailing_vol_annual is None
                              else _col(trailing_vol_annual, n), cfg)
    code, beta, r2 = rules.hedge_instrument(_col(beta_btc, n), _col(r2_btc, n),
                                            _col(beta_eth, n), _col(r2_eth, n), cfg)
    code, beta, r2 = (np.broadcast_to(np.asarray(v, dtype=float), (n,)) for v in (code, beta, r2))
    terms = rules.objective_terms(s_ok, horizon_hours, p_ok, cfg, ref, r2, beta)
    hedge = (terms["hedge"] if cfg.hedge_rule == "objective" else
             rules.hedge_ratio(s_ok, horizon_hours, p_ok, _col(n_fired, n), cfg, ref))
    cap = np.broadcast_to(rules.leverage_caps(s_ok, horizon_hours, p_ok, side, notional, tiers,
                                              cfg, q_ok, hedge)["cap"], (n,))
    s_ref = np.broadcast_to(np.asarray(rules.reference_sigma_h(ref, horizon_hours)), (n,))
    adverse = np.asarray(rules.adverse_move(s_ref, cfg))
    safe_r2 = cfg.same_perp_effectiveness
    out = {
        "hedge": np.where(ok, hedge, failsafe.hedge_ratio(cfg)),
        "cap": np.where(ok, cap, float(failsafe.leverage_cap(horizon_hours, side, notional,
                                                             tiers, cfg))),
        "fail_safe": ~ok,
        "instrument": np.where(ok, code, 0.0).astype(int),
        "beta": np.where(ok, beta, 1.0),
        "r2": np.where(ok, r2, safe_r2),
        "adverse": np.where(ok, adverse, float(rules.adverse_move(cfg.max_sigma_h, cfg))),
    }
    out["ok_btc"] = np.broadcast_to(rules.proxy_qualifies(_col(beta_btc, n), _col(r2_btc, n),
                                                         cfg), (n,))
    out["ok_eth"] = np.broadcast_to(rules.proxy_qualifies(_col(beta_eth, n), _col(r2_eth, n),
                                                         cfg), (n,))
    hold = (HedgeHold(out["hedge"], out["fail_safe"], terms, cfg)
            if cfg.hedge_rule == "objective" and n else None)
    out["held"] = (out["hedge"].copy() if hold is None
                   else np.asarray(hold.path(), dtype=float))
    out["exposure"] = np.asarray(rules.net_exposure(out["held"], out["r2"]))
    out["loss_per_notional"] = np.where(ok, np.asarray(rules.loss_per_notional(s_ref, cfg)),
                                        failsafe.loss_per_notional(cfg))
    return out, hold


class HedgeHold:
    """The hedge held bar after bar by a position that follows ``decide``: under the
    ``objective`` rule it moves to the bar's target only when the objective's gain beats the
    amortised cost (:func:`rules.objective_move`; on a fail-safe bar only the no-trade band
    applies, as in ``decide``); under the ``score`` rule it is the target (the trading core's
    benefit test applies there; no HedgeHold is built). A position that opens from flat
    starts from the bar's target: live, a flat position's hedge ratio is 0, outside the band,
    so ``decide`` moves it to the target whatever the cost; the engine asks :meth:`path` for
    the rest of the path there (``backtest.engine.PositionPlan.hedge_hold``)."""

    def __init__(self, target: np.ndarray, fail_safe: np.ndarray,
                 terms: dict[str, np.ndarray], cfg: PolicyConfig) -> None:
        self.target = np.asarray(target, dtype=float)
        t = self.target
        names = ("mean", "var", "carry", "cost", "r2")
        cols = {k: np.broadcast_to(np.asarray(terms[k], dtype=float), t.shape) for k in names}
        lists = {k: v.tolist() for k, v in cols.items()}
        safe = np.asarray(fail_safe, dtype=bool)
        safe_list = safe.tolist()
        band = cfg.no_trade_band - 1e-12

        def pays(i: int, target_i: float, held: float) -> bool:
            if safe_list[i]:
                return abs(target_i - held) >= band
            return bool(rules.objective_move(target_i, held, {k: lists[k][i] for k in names},
                                             cfg)[0])

        def pays_block(a: int, b: int, held: float) -> np.ndarray:
            """:func:`pays` for bars [a, b) at once (the same float operations on arrays)."""
            worth = rules.objective_move(t[a:b], held, {k: cols[k][a:b] for k in names},
                                         cfg)[0]
            return np.where(safe[a:b], np.abs(t[a:b] - held) >= band, worth)

        self._pays, self._pays_block = pays, pays_block

    def path(self, begin: int = 0) -> list[float]:
        """The held hedge on bars ``begin``, ``begin + 1``, ...: bar ``begin`` takes its target
        (a position opening there, or the first bar), each later bar moves to its target only
        where the move pays. From a bar whose held hedge equals its target the path is the
        same as from bar 0, bit for bit (the rule reads only the hedge held)."""
        pays, block = self._pays, self._pays_block
        if begin == 0:
            return rules.hedge_path(self.target, pays, moves=block)
        return rules.hedge_path(self.target[begin:],
                                lambda i, x, h: pays(begin + i, x, h),
                                moves=lambda a, b, h: block(begin + a, begin + b, h))

