"""Baselines: correct recursions, re-estimated per window, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
from arch import arch_model
from arch.univariate import EWMAVariance, ZeroMean

from cascade_ml.models.baselines import EWMA, GARCH, HAR, Climatology, Logistic, NaiveRV, Rules


def test_garch_filter_with_fixed_params_matches_arch_forecast_of_a_refit_free_model(near_small):
    ds = near_small
    train, test = ds.rows[:1500], ds.rows[1600:1700]
    g = GARCH(24, window=1000, o=1).fit(ds.features, ds.labels["fwd_rv"], train)
    pred = g.predict(ds.features, test)
    # independent check: arch's own forecast from the fitted result on the series up to each row
    ret = ds.features["ret_1h"].fillna(0.0)
    row = test[50]
    series = ret.loc[g.start_:row] * 100
    res = arch_model(series, mean="Zero", vol="GARCH", p=1, o=1, q=1,
                     rescale=False).fix(g.params_)
    ref = res.forecast(horizon=24, reindex=False).variance.iloc[-1].sum() / 1e4
    assert np.isclose(pred[50], ref, rtol=1e-6)
    assert np.all(pred > 0)


def test_garch_uses_only_past_returns(near_small):
    ds = near_small
    train, test = ds.rows[:1500], ds.rows[1600:1700]
    g = GARCH(24, window=1000).fit(ds.features, ds.labels["fwd_rv"], train)
    before = g.predict(ds.features, test)
    shocked = ds.features.copy()
    shocked.loc[test[60]:, "ret_1h"] = 0.5  # a huge shock from row 60 on
    after = g.predict(shocked, test)
    assert np.allclose(before[:60], after[:60])
    assert after[60] > before[60] * 2


def test_ewma_matches_arch_riskmetrics_recursion(near_small):
    ds = near_small
    idx = ds.features.index[100:400]
    ours = EWMA(24, 0.94).predict(ds.features, idx) / 24
    r = ds.features["ret_1h"].fillna(0.0)
    r2 = r.to_numpy() ** 2
    s = np.mean(r2[:24])
    manual = []
    for v in r2:
        s = 0.94 * s + 0.06 * v
        manual.append(s)
    manual = pd.Series(manual, index=r.index).loc[idx].to_numpy()
    assert np.allclose(ours, manual)
    # and the same smoothing as arch's EWMAVariance one step ahead, once the start-up is forgotten
    m = ZeroMean(r * 100, volatility=EWMAVariance(0.94))
    cond = m.fit(disp="off").conditional_volatility ** 2 / 1e4
    shifted = cond.shift(-1).loc[idx].to_numpy()
    assert np.allclose(ours[-100:], shifted[-100:], rtol=1e-3)


def test_har_recovers_known_coefficients_and_is_refit_per_window():
    rng = np.random.default_rng(0)
    n = 3000
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    f = pd.DataFrame({"rv_24h": rng.lognormal(-6, 0.5, n), "rv_168h": rng.lognormal(-4, 0.4, n),
                      "rv_720h": rng.lognormal(-2.5, 0.3, n)}, index=idx)
    lin = 0.3 + 0.5 * np.log(f.rv_24h / 24) + 0.3 * np.log(f.rv_168h / 168)
    lin += 0.1 * np.log(f.rv_720h / 720)
    y = pd.Series(np.exp(lin + rng.normal(0, 0.01, n)), index=idx)
    har = HAR(24).fit(f, y, idx[:2000])
    assert np.allclose(har.coef_, [0.3, 0.5, 0.3, 0.1], atol=0.02)
    pred = har.predict(f, idx[2000:])
    assert np.allclose(pred, y.iloc[2000:], rtol=0.05)
    other = HAR(24).fit(f, y * 2, idx[:2000])  # a different window gives different estimates
    assert not np.allclose(other.coef_, har.coef_)


def test_naive_scales_last_day_rv_to_h(near_small):
    ds = near_small
    idx = ds.rows[:10]
    assert np.allclose(NaiveRV(48).predict(ds.features, idx), 2 * ds.features.loc[idx, "rv_24h"])


def test_cascade_baselines_fit_on_train_only(near_small):
    ds = near_small
    train, test = ds.rows[:1500], ds.rows[1600:1900]
    y = ds.labels["cascade"]
    clim = Climatology().fit(ds.features, y, train)
    assert np.allclose(clim.predict(ds.features, test), y.loc[train].mean())
    flipped = y.copy()
    flipped.loc[test] = 1 - flipped.loc[test]
    for base in (Logistic(columns=ds.feature_names), Rules()):
        a = base.fit(ds.features, y, train).predict(ds.features, test)
        b = type(base)(**({"columns": ds.feature_names} if isinstance(base, Logistic) else {})
                       ).fit(ds.features, flipped, train).predict(ds.features, test)
        assert np.allclose(a, b)
        assert ((a >= 0) & (a <= 1)).all()
