"""The column vocabulary: names one layer writes and another reads, defined once.

Features are computed in ``cascade_ml.features``, labels in ``cascade_ml.labels``, forecasts in
``cascade_ml.models``; every other layer refers to their columns through these names and
functions, never through string literals of its own.
"""

from __future__ import annotations

import re

# --- features every layer may rely on (docs/architecture.md) ---------------------------------
RET_1H = "ret_1h"
"""Log return of bar t."""


def rv_column(hours: int, prefix: str = "") -> str:
    """Realized variance over the last ``hours`` 1h bars, e.g. ``rv_168h`` (``btc_rv_24h``)."""
    return f"{prefix}rv_{hours}h"


def rv_hours(column: str) -> int:
    """The window of an ``rv_<N>h`` column, e.g. ``rv_168h`` -> 168."""
    match = re.fullmatch(r"rv_(\d+)h", column)
    if not match:
        raise ValueError(f"{column!r} is not a realized-variance column rv_<N>h")
    return int(match.group(1))


HAR_WINDOWS = (24, 168, 720)
"""Day, week and month windows of HAR-RV (Corsi 2009), in 1h bars."""
HAR_COLUMNS = tuple(rv_column(h) for h in HAR_WINDOWS)
CORE_FEATURES = (RET_1H, *HAR_COLUMNS)
"""Inputs without which a row cannot be forecast (the HAR baseline needs them)."""

LEVEL_PATTERN = re.compile(r"(^|_)(rv|parkinson|garman_klass|rs_neg|rs_pos)_(\d+)h$")
"""Variance-level features (sums over N hours): their level drifts across regimes, so models
see them as log ratios to the forecast level; the hours in the name scale them to H bars."""
LOG_LEVEL_PATTERN = re.compile(r"(^|_)log_rv_(\d+)h$")


def beta_column(ref: str, window: int) -> str:
    """Rolling beta of the symbol's returns on ``ref``'s over ``window`` bars."""
    return f"beta_{ref.lower()}_{window}h"


def corr_column(ref: str, window: int) -> str:
    """Rolling correlation of the symbol's returns with ``ref``'s over ``window`` bars."""
    return f"corr_{ref.lower()}_{window}h"


IS_SPOT = "is_spot"
"""1.0 on a bar taken from the spot market (standing in before the perp's first bar), 0.0 on the
perp's own bars; present only when the task splices spot history (``task.spot_venue``)."""

TRIGGERS = {"funding_divergence": "trigger_funding_divergence",
            "sentiment_spike": "trigger_sentiment_spike",
            "volume_breakdown": "trigger_volume_breakdown"}
"""Rule triggers by name -> feature column (1.0 fired, 0.0 not, NaN when inputs are missing)."""
TRIGGER_COLUMNS = tuple(TRIGGERS.values())

# --- labels (cascade_ml.labels) ---------------------------------------------------------------
FWD_RV = "fwd_rv"
"""Sum of squared 1h log returns over bars t+1..t+H (a variance over H bars)."""
FWD_LOG_RV = "fwd_log_rv"
CASCADE = "cascade"
"""1.0 when the move against the side in (t, t+H] passes the cascade threshold, else 0.0."""
FWD_MIN_RETURN = "fwd_min_return"
"""log(lowest low in (t, t+H] / close_t)."""
LABELS = (FWD_RV, FWD_LOG_RV, CASCADE, FWD_MIN_RETURN)

# --- forecasts (models -> predictions, bundle, scores, service) -------------------------------
VAR_FORECAST = "var_forecast"
"""Forecast of ``fwd_rv``: a variance over H bars."""
VOL_FORECAST = "vol_forecast"
"""sqrt(var_forecast): the volatility over H bars the policy reads as sigma_H."""
CASCADE_PROB = "cascade_prob"
"""Calibrated probability of a cascade within H bars."""
FORECASTS = (VAR_FORECAST, VOL_FORECAST, CASCADE_PROB)
FOLD = "fold"
"""Walk-forward fold of an out-of-sample prediction (the final period is fold n_folds)."""


def quantile_key(q: float) -> str:
    """Column of a variance quantile forecast, e.g. 0.99 -> ``var_q99``."""
    return f"var_q{round(q * 100):d}"


SERVED_QUANTILES = (0.5, 0.9, 0.99)
"""Variance quantiles a bundle may carry and scoring, the loop and the service pass on."""
SERVED_FORECASTS = (*FORECASTS, *(quantile_key(q) for q in SERVED_QUANTILES))


def baseline_var(name: str) -> str:
    """Column of a volatility baseline's variance forecast, e.g. ``har`` -> ``var_har``."""
    return f"var_{name}"


def baseline_prob(name: str) -> str:
    """Column of a cascade baseline's probability, e.g. ``logistic`` -> ``prob_logistic``."""
    return f"prob_{name}"
