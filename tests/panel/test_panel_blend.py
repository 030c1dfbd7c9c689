"""The HAR weight of the served forecast: per symbol, shrunk toward the pooled weight, never a
blend that lost to HAR alone on the symbol's own rows, chosen only on rows before the test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.models.metrics import qlike_loss
from cascade_ml.panel.blend import CURVE_COLUMNS, GRID, ROWS, blend, choose_weights, loss_curves
from cascade_ml.panel.fold import Fold, FoldFit, selection_curves


def _rows(symbol: str, n: int, panel_err: float, har_err: float, seed: int,
          start: str = "2025-01-01") -> pd.DataFrame:
    """Rows whose log forecasts miss the truth by noise of the given sizes."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(-4.0, 0.5, n)
    return pd.DataFrame({
        "symbol": symbol,
        "timestamp": pd.date_range(start, periods=n, freq="1h", tz="UTC"),
        "fwd_rv": np.exp(truth + rng.normal(0, 0.3, n)),
        "log_panel": truth + rng.normal(0, panel_err, n),
        "log_har": truth + rng.normal(0, har_err, n)})


def test_curves_are_summed_qlike_of_the_blend():
    rows = _rows("A", 300, 0.2, 0.4, 1)
    rows.loc[rows.index[:10], "log_har"] = np.nan  # no HAR yet: not a selection row
    curves = loss_curves(rows)
    ok = rows.iloc[10:]
    w = 0.35
    direct = qlike_loss(ok["fwd_rv"], np.exp(blend(ok["log_panel"], ok["log_har"], w))).sum()
    assert curves.loc["A", ROWS] == 290
    assert curves.loc["A", f"w{w:.2f}"] == pytest.approx(direct, rel=1e-12)
    np.testing.assert_allclose(blend([1.0, 2.0], [3.0, np.nan], 0.5), [2.0, 2.0])


def test_weights_per_symbol_shrink_toward_the_pool():
    core = pd.concat([_rows(s, 4000, 0.15, 0.45, i) for i, s in enumerate("ABCD")])
    har_wins = _rows("H", 6000, 0.6, 0.1, 9)      # a long record of the panel losing
    short = _rows("S", 48, 0.6, 0.1, 10)          # two days of the same: too few to trust
    curves = loss_curves(pd.concat([core, har_wins, short]))
    pooled_only = choose_weights(curves, list("ABCD"), 0.0, per_symbol=False)
    assert pooled_only.per_symbol == {} and pooled_only.of("H") == pooled_only.pooled
    weights = choose_weights(curves, list("ABCD"), prior_rows=90 * 24)
    assert weights.pooled <= 0.3                  # the panel wins on the core symbols
    assert weights.of("H") >= 0.8                 # ... but not on H: it falls back to HAR
    assert abs(weights.of("S") - weights.pooled) <= 0.1  # short history stays near the pool
    assert weights.of("NEW") == weights.pooled    # no rows at all: the pooled weight
    no_prior = choose_weights(curves, list("ABCD"), prior_rows=0.0)
    assert no_prior.of("S") > weights.of("S")     # its own noisy rows alone pull further


def test_a_weight_that_lost_to_har_is_never_chosen():
    pool = np.linspace(1.0, 3.0, 21)             # the pool strongly prefers the panel (w = 0)
    own = np.full(21, 2.0)
    own[0], own[-1] = 1.5, 1.0                   # X's own rows: HAR alone is best
    curves = pd.DataFrame([np.r_[pool, 1.0], np.r_[own, 2000.0]], index=["P", "X"],
                          columns=[*CURVE_COLUMNS, ROWS])
    w = choose_weights(curves, ["P"], prior_rows=1000.0)
    assert w.pooled == 0.0 and GRID[-1] == 1.0
    assert w.of("X") == 1.0  # the prior alone would pick w = 0, which lost to HAR on X's rows
    # with fewer own rows than the prior is worth, the prior decides
    assert choose_weights(curves, ["P"], prior_rows=3000.0).of("X") == 0.0


def test_history_after_the_validation_slice_is_ignored():
    val = _rows("A", 200, 0.2, 0.2, 3, start="2025-06-01").assign(core=True)
    fit = FoldFit(Fold(1, pd.Timestamp("2025-06-09", tz="UTC"),
                       pd.Timestamp("2025-06-10", tz="UTC"), pd.Timestamp("2025-07-01", tz="UTC")),
                  out=pd.DataFrame(), test=pd.DataFrame(), val=val, choices={}, state=None,
                  val_start=pd.Timestamp("2025-06-01", tz="UTC"))
    before = _rows("A", 500, 0.2, 0.2, 4, start="2025-04-01")
    after = _rows("A", 500, 5.0, 5.0, 5, start="2025-06-02")  # overlaps the slice: not used
    curves = selection_curves(fit, pd.concat([before, after]))
    assert curves.loc["A", ROWS] == 700
    np.testing.assert_allclose(curves.loc["A", CURVE_COLUMNS].to_numpy(float),
                               (loss_curves(val) + loss_curves(before)).loc["A", CURVE_COLUMNS]
                               .to_numpy(float))
