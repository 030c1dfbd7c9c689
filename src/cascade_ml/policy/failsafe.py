"""The fail-safe, defined once: when forecasts cannot be trusted, and what the policy does then.

``decide`` (one position, with a sentence per failed check) and the backtest (whole columns) both
use these functions, so a backtest row fails safe exactly when ``decide`` would. The fail-safe
answer is the normal decision at the *worst sane forecast* (vol ``max_sigma_h`` over the
horizon, cascade probability 1): top of the hedge band, the leverage cap there (at most
``fail_safe_leverage``), the risk-budget size cap there, and no new exposure. Its caps therefore
agree with each other the same way normal caps do.
"""

from __future__ import annotations

from collections.abc import Sequence

from cascade_ml.policy import rules
from cascade_ml.policy.config import MarginTier, PolicyConfig
from cascade_ml.policy.liquidation import Side
from cascade_ml.policy.numeric import Num, asnum, div, isfinite, logical_not, minimum, out_bool

WORST_PROB = 1.0


def forecast_checks(sigma_h: Num, cascade_prob: Num, vol_q99: Num | None,
                    cfg: PolicyConfig) -> dict[str, object]:
    """Each sanity check of the forecast values -> True where it *fails* (scalars or columns).

    ``None`` values must be passed as NaN; a ``vol_q99`` of None means "no quantile given".
    """
    s, p = asnum(sigma_h), asnum(cascade_prob)
    s_fin, p_fin = isfinite(s), isfinite(p)
    checks: dict[str, object] = {
        "sigma_missing": logical_not(s_fin),
        "sigma_not_positive": s_fin & (s <= 0),
        "sigma_too_high": s_fin & (s > cfg.max_sigma_h),
        "prob_missing": logical_not(p_fin),
        "prob_out_of_range": p_fin & ((p < 0) | (p > 1)),
    }
    if vol_q99 is not None:
        q = asnum(vol_q99)
        checks["vol_q99_insane"] = logical_not(isfinite(q)) | (q < 0) | (q > cfg.max_sigma_h * 10)
    return checks


def forecast_ok(sigma_h: Num, cascade_prob: Num, vol_q99: Num | None,
                cfg: PolicyConfig) -> bool | object:
    """True where every check of :func:`forecast_checks` passes."""
    bad: object = False
    for failed in forecast_checks(sigma_h, cascade_prob, vol_q99, cfg).values():
        bad = bad | failed
    return out_bool(logical_not(bad))


def leverage_cap(horizon_hours: float, side: Side, notional: Num,
                 tiers: Sequence[MarginTier], cfg: PolicyConfig) -> Num:
    """The fail-safe leverage cap: ``fail_safe_leverage`` or the cap at the worst sane forecast,
    whichever is lower."""
    worst = rules.leverage_caps(cfg.max_sigma_h, horizon_hours, WORST_PROB, side, notional,
                                tiers, cfg)["cap"]
    return minimum(asnum(worst), cfg.fail_safe_leverage)


def hedge_ratio(cfg: PolicyConfig) -> float:
    """Top of the band: the hedge ratio at the worst sane forecast."""
    return cfg.hedge_max


def loss_per_notional(cfg: PolicyConfig) -> float:
    """Loss per unit notional on the tail move at the worst sane vol, before the hedge (what the
    fail-safe risk-budget size cap divides by)."""
    return float(rules.loss_per_notional(cfg.max_sigma_h, cfg))


def size_cap(equity: float, notional: float, lev_cap: float, cfg: PolicyConfig
             ) -> tuple[float, str]:
    """(cap, the limit that bound): the lowest of the current notional (no new exposure), what
    the fail-safe leverage cap allows on the equity, and the risk budget at the worst forecast."""
    parts = {"current_notional": notional, "leverage_cap": lev_cap * equity,
             "risk_budget": float(div(cfg.max_risk_fraction * equity, loss_per_notional(cfg)))}
    bound = min(parts, key=parts.__getitem__)
    return parts[bound], bound
