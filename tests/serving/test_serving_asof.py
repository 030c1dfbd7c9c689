"""Forecasts and decisions "as of t" over a real socket: each answer comes from the newest stored
forecast whose bar had closed by t (and, for a batch score, that had been scored by t), aged at
t, with the feature row of that bar; and it equals ``decide`` on those inputs written out
independently (tests/decision_oracle.py). Before the first forecast: 404 naming the span; a
naive, unparsable or future time: 422."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from decision_oracle import expected_decision
from demo_data import fresh_end, make_bundle, synthetic_features, write_features
from demo_data import write_pipeline as pipeline_file
from serving_helpers import TOKEN, Server, auth

from cascade_ml.client import CascadeClient, RequestRejectedError
from cascade_ml.config import load_pipeline
from cascade_ml.contracts.columns import TRIGGERS, beta_column, corr_column
from cascade_ml.contracts.layout import predictions_path, scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.policy.schemas import Position

H = pd.Timedelta("1h")
END = fresh_end()  # newest feature bar (open time); its forecast is served now
FIRST = END - 300 * H  # first walk-forward bar
GAP = [END - k * H for k in range(200, 195, -1)]  # five bars the predictions lack
BAR = END - 250 * H  # the bar whose feature row carries fired triggers and a BTC proxy
ON_TIME, LATE = END - 150 * H, END - 140 * H  # scored 30 s after the close / scored today
# each forecast read as it is (half-life 0): the smoothed one is tested in
# test_serving_smoothing.py
POLICY = {"proxy_window": 720, "same_perp_effectiveness": 0.85, "vol_reference_annual": 2.0,
          "forecast_halflife_bars": 0.0}
BODY = {"symbol": "NEAR", "side": "long", "notional": 20_000.0, "mark_price": 5.0,
        "leverage": 3.0, "portfolio_value": 50_000.0, "hedge_ratio": 0.2}


def _values(vol: float, prob: float) -> dict[str, float]:
    return {"var_forecast": vol ** 2, "vol_forecast": vol, "cascade_prob": prob,
            "var_q90": (1.5 * vol) ** 2, "var_q99": (2.2 * vol) ** 2}


def _predictions() -> pd.DataFrame:
    bars = pd.date_range(FIRST, END - 101 * H, freq="1h", tz="UTC", name="timestamp")
    bars = bars[~bars.isin(GAP)]
    k = np.arange(len(bars))
    rows = [_values(0.02 + 0.0001 * i, 0.05 + 0.001 * (i % 50)) for i in k]
    frame = pd.DataFrame(rows, index=bars)
    frame.insert(0, "fold", 3)
    frame["var_har"] = 1e-3  # a baseline column: never served
    return frame


def _scores() -> pd.DataFrame:
    rows = {ON_TIME: (_values(0.05, 0.2), ON_TIME + H + pd.Timedelta("30s")),
            LATE: (_values(0.06, 0.3), pd.Timestamp.now(tz="UTC")),
            END: (_values(0.03, 0.1), pd.Timestamp.now(tz="UTC"))}
    frame = pd.DataFrame([v for v, _ in rows.values()],
                         index=pd.DatetimeIndex(list(rows), name="timestamp"))
    frame["model_version"] = "7"
    frame["scored_at"] = [s for _, s in rows.values()]
    return frame


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("asof")
    pipeline = pipeline_file(tmp, references=("BTC", "ETH"), policy=POLICY)
    features = synthetic_features(400, END, seed=5)
    fired = {"funding_divergence": 1.0, "sentiment_spike": 1.0, "volume_breakdown": 0.0}
    for name, column in TRIGGERS.items():  # BAR fires two triggers; every other bar none
        features[column] = 0.0
        features.loc[BAR, column] = fired[name]
    features[beta_column("BTC", 720)], features[corr_column("BTC", 720)] = 0.2, 0.1
    features[beta_column("ETH", 720)], features[corr_column("ETH", 720)] = 0.3, 0.1
    features.loc[BAR, [beta_column("BTC", 720), corr_column("BTC", 720)]] = [1.3, 0.97]
    write_features(tmp, features, "NEAR")
    store = MarketStore(tmp / "store")
    store.write_table(predictions_path("NEAR", 24), _predictions())
    store.write_table(scores_path("NEAR"), _scores())
    make_bundle(tmp / "models" / "NEAR", seed=3)
    return pipeline, features


@pytest.fixture(scope="module")
def http(setup: tuple[Path, pd.DataFrame]):  # noqa: ANN201 - a client on a running server
    server = Server(setup[0]).start()
    try:
        with httpx.Client(base_url=server.url, headers=auth()) as client:
            yield client
    finally:
        server.stop()


def _forecast(http: httpx.Client, t: pd.Timestamp) -> dict:
    answer = http.get("/v1/forecasts/NEAR", params={"as_of": t.isoformat()})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_newest_bar_closed_by_t_is_served_aged_at_t(http: httpx.Client) -> None:
    t = BAR + H + pd.Timedelta("17min")  # BAR closed 17 min earlier; the next bar is open
    got = _forecast(http, t)
    assert pd.Timestamp(got["timestamp"]) == BAR
    assert got["age_seconds"] == pytest.approx(17 * 60) and not got["stale"]
    assert (got["source"], got["model_version"]) == ("predictions", "oos-fold3")
    assert got["vol_forecast"] == pytest.approx(0.02 + 0.0001 * 50)  # BAR is row 50
    assert pd.Timestamp(got["as_of"]) == t
    # the edges: at the close the bar is available (age 0); a second earlier it is not
    at_close = _forecast(http, BAR + H)
    assert pd.Timestamp(at_close["timestamp"]) == BAR and at_close["age_seconds"] == 0
    before = _forecast(http, BAR + H - pd.Timedelta("1s"))
    assert pd.Timestamp(before["timestamp"]) == BAR - H and before["age_seconds"] == 3599


def test_staleness_is_judged_at_t(http: httpx.Client) -> None:
    last = GAP[0] - H  # the last bar before the five missing ones
    fresh = _forecast(http, last + H + pd.Timedelta(seconds=7199))
    stale = _forecast(http, last + H + pd.Timedelta(seconds=7201))
    assert pd.Timestamp(fresh["timestamp"]) == pd.Timestamp(stale["timestamp"]) == last
    assert not fresh["stale"] and stale["stale"]  # policy.max_data_age_s = 7200
    answer = http.post("/v1/decisions", json={
        **BODY, "as_of": (last + H + pd.Timedelta(seconds=7201)).isoformat()}).json()
    assert answer["fail_safe"] and answer["stale"]
    assert answer["leverage_cap"] <= 1.0  # at most the fail-safe leverage
    assert "7201 s old, more than the 7200 s allowed" in answer["reasons"][0]


def test_a_score_counts_only_once_it_was_written(http: httpx.Client) -> None:
    early = _forecast(http, ON_TIME + H + pd.Timedelta("10s"))  # scored 30 s after the close
    assert (early["source"], early["model_version"]) == ("predictions", "oos-fold3")
    scored = _forecast(http, ON_TIME + H + pd.Timedelta("40s"))
    assert (scored["source"], scored["model_version"]) == ("scores", "7")
    assert scored["vol_forecast"] == pytest.approx(0.05)
    # a bar scored today was not known at its close: the walk-forward's forecast is served
    late = _forecast(http, LATE + H + pd.Timedelta("1min"))
    assert pd.Timestamp(late["timestamp"]) == LATE and late["source"] == "predictions"


def test_decisions_as_of_equal_decide_on_that_bar(http: httpx.Client,
                                                  setup: tuple[Path, pd.DataFrame]) -> None:
    pipeline, features = setup
    config = load_pipeline(pipeline)
    predictions = _predictions()
    for t, bar in ((BAR + H + pd.Timedelta("17min"), BAR),
                   (BAR + 2 * H, BAR + H), (END - 120 * H, END - 121 * H)):
        answer = http.post("/v1/decisions", json={**BODY, "as_of": t.isoformat()})
        assert answer.status_code == 200, answer.text
        got = answer.json()
        age = (t - (bar + H)).total_seconds()
        position = Position(side="long", notional=20_000.0, entry_price=5.0, mark_price=5.0,
                            leverage=3.0, hedge_ratio=0.2)
        want = expected_decision("NEAR", predictions.loc[bar].to_dict(),
                                 features.loc[bar].to_dict(), position, 50_000.0, config.task,
                                 config.policy, age)
        assert pd.Timestamp(got["forecast_timestamp"]) == bar
        assert got["forecast_age_seconds"] == pytest.approx(age)
        assert (got["leverage_cap"], got["size_cap"], got["hedge_ratio"], got["instrument"],
                got["reasons"], got["fail_safe"]) == (
            want.leverage_cap, want.size_cap_notional, want.hedge_ratio, want.hedge_instrument,
            want.reasons, want.fail_safe)
        assert got["model_version"] == "oos-fold3" and not got["fail_safe"]
        if bar == BAR:  # that bar's feature row: two triggers fired, a BTC proxy hedge
            assert got["instrument"] == "BTC"
            assert "funding_divergence, sentiment_spike" in got["reasons"][0]
        else:
            assert got["instrument"] == "same_perp"


def test_as_of_now_is_the_served_answer(http: httpx.Client) -> None:
    now = pd.Timestamp.now(tz="UTC")
    served = http.get("/v1/forecasts/NEAR").json()
    asked = _forecast(http, now)
    assert {k: asked[k] for k in ("timestamp", "source", "model_version", "vol_forecast")} == \
        {k: served[k] for k in ("timestamp", "source", "model_version", "vol_forecast")}
    assert pd.Timestamp(served["timestamp"]) == END
    plain = http.post("/v1/decisions", json=BODY).json()
    dated = http.post("/v1/decisions", json={**BODY, "as_of": now.isoformat()}).json()
    assert plain["as_of"] is None and pd.Timestamp(dated["as_of"]) == now
    for key in ("leverage_cap", "size_cap", "hedge_ratio", "instrument", "fail_safe",
                "model_version", "forecast_timestamp"):
        assert dated[key] == plain[key], key
    assert not plain["fail_safe"]


def test_no_forecast_then_or_a_bad_time_is_refused(http: httpx.Client) -> None:
    early = FIRST + pd.Timedelta("30min")  # the first bar closes at FIRST + 1h
    answer = http.get("/v1/forecasts/NEAR", params={"as_of": early.isoformat()})
    assert answer.status_code == 404
    detail = answer.json()["detail"]
    assert f"no forecast of NEAR was available as of {early.isoformat()}" in detail
    assert f"predictions cover bars {FIRST.isoformat()}" in detail
    decision = http.post("/v1/decisions", json={**BODY, "as_of": early.isoformat()})
    assert decision.status_code == 404 and "predictions cover bars" in decision.json()["detail"]

    naive = http.get("/v1/forecasts/NEAR", params={"as_of": "2026-03-01T10:00:00"})
    assert naive.status_code == 422
    assert naive.json()["detail"].startswith("query.as_of: Input should have timezone info")
    garbled = http.post("/v1/decisions", json={**BODY, "as_of": "last tuesday"})
    assert garbled.status_code == 422 and garbled.json()["detail"].startswith("body.as_of:")
    future = pd.Timestamp.now(tz="UTC") + pd.Timedelta("1h")
    ahead = http.post("/v1/decisions", json={**BODY, "as_of": future.isoformat()})
    assert ahead.status_code == 422
    assert "later than the server's clock" in ahead.json()["detail"]


def test_the_client_asks_as_of(http: httpx.Client) -> None:
    t = (BAR + H + pd.Timedelta("17min")).to_pydatetime()
    with CascadeClient(str(http.base_url), TOKEN) as client:
        forecast = client.forecast("NEAR", as_of=t)
        assert (pd.Timestamp(forecast.timestamp), forecast.as_of) == (BAR, t)
        assert forecast.age_seconds == 17 * 60 and forecast.source == "predictions"
        decision = client.decision("NEAR", notional=20_000.0, mark_price=5.0, leverage=3.0,
                                   as_of=t)
        assert pd.Timestamp(decision.forecast_timestamp) == BAR and decision.as_of == t
        with pytest.raises(RequestRejectedError) as naive:
            client.decision("NEAR", notional=20_000.0, mark_price=5.0, leverage=3.0,
                            as_of=datetime(2026, 3, 1, 10))
        assert naive.value.status == 422 and "timezone" in naive.value.message
