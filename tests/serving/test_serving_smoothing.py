"""With ``forecast_halflife_bars`` set, the served decision (a real uvicorn server over a
socket) reads the stored vol forecast smoothed over the stored ones before it, as the
backtest's policy does: two stored forecasts 0.02 and 0.08 with a half-life of 1 bar weigh 1/2
each on the logs, so the policy reads their geometric mean 0.04. A symbol with one stored
forecast is decided on it as it is, and the answer says so; an as-of answer smooths the
forecasts known at its time."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from decision_oracle import expected_decision
from demo_data import fresh_end, make_bundle, run_score, synthetic_features, write_features
from demo_data import write_pipeline as pipeline_file
from serving_helpers import auth

from cascade_ml.config import load_pipeline
from cascade_ml.contracts.columns import SERVED_FORECASTS, VOL_FORECAST
from cascade_ml.contracts.layout import features_path, predictions_path, scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.forecasting.scores import merge_scores
from cascade_ml.forecasting.smoothing import UNSMOOTHED
from cascade_ml.policy.schemas import Position

HOUR = pd.Timedelta("1h")
POLICY = {"forecast_halflife_bars": 1.0}
BODY = {"side": "long", "notional": 10_000.0, "mark_price": 2.0, "leverage": 3.0,
        "hedge_ratio": 0.5}


def _set_vols(store: MarketStore, symbol: str, vols: list[float]) -> dict:
    """Overwrite the stored vol forecasts of the symbol's bars (quantiles dropped, so only the
    vol and the cascade probability reach the policy); returns the newest row's values."""
    scores = store.read_table(scores_path(symbol))
    assert len(scores) == len(vols)
    scores[VOL_FORECAST] = vols
    for col in SERVED_FORECASTS:
        if col not in (VOL_FORECAST, "cascade_prob") and col in scores:
            scores[col] = np.nan
    merge_scores(store, symbol, scores, horizon=24,
                 model_version=str(scores["model_version"].iloc[-1]))
    return scores.iloc[-1].to_dict()


def _expected(values: dict, row: dict, answer: dict, config, symbol: str):
    position = Position(side="long", notional=BODY["notional"], entry_price=2.0, mark_price=2.0,
                        leverage=3.0, hedge_ratio=0.5)
    return expected_decision(symbol, values, row, position, BODY["notional"] / 3.0, config.task,
                             config.policy, answer["forecast_age_seconds"])


def test_served_decision_reads_the_smoothed_stored_forecast(tmp_path: Path,
                                                            server_factory) -> None:
    symbols = ("NEAR", "SOL")
    pipeline = pipeline_file(tmp_path, symbols=symbols, policy=POLICY, score_rows=2)
    one_row = pipeline_file(tmp_path, symbols=symbols, policy=POLICY, score_rows=1,
                            name="one.yaml")
    store = MarketStore(tmp_path / "store")
    for i, symbol in enumerate(symbols):
        make_bundle(tmp_path / "models" / symbol, seed=50, symbol=symbol)
        write_features(tmp_path, synthetic_features(80, fresh_end(), seed=51 + i), symbol)
    assert all(r.ok for r in run_score(pipeline, ["NEAR"]))
    assert all(r.ok for r in run_score(one_row, ["SOL"]))
    newest = {"NEAR": _set_vols(store, "NEAR", [0.02, 0.08]),
              "SOL": _set_vols(store, "SOL", [0.08])}
    rows = {s: store.read_table(features_path(s)).iloc[-1].to_dict() for s in symbols}
    config = load_pipeline(pipeline)

    server = server_factory(pipeline).start()
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        answers = {}
        for symbol in symbols:
            got = http.post("/v1/decisions", json={"symbol": symbol, **BODY})
            assert got.status_code == 200, got.text
            answers[symbol] = got.json()

    near = answers["NEAR"]
    smoothed = _expected({**newest["NEAR"], VOL_FORECAST: 0.04}, rows["NEAR"], near, config,
                         "NEAR")
    raw = _expected(newest["NEAR"], rows["NEAR"], near, config, "NEAR")
    assert (near["hedge_ratio"], near["leverage_cap"], near["reasons"]) == (
        smoothed.hedge_ratio, smoothed.leverage_cap, smoothed.reasons)
    assert near["reasons"] != raw.reasons  # 0.04 is not 0.08: the test can tell them apart
    assert UNSMOOTHED not in near["reasons"] and not near["fail_safe"]

    sol = answers["SOL"]
    first = _expected(newest["SOL"], rows["SOL"], sol, config, "SOL")
    assert (sol["hedge_ratio"], sol["leverage_cap"], sol["reasons"]) == (
        first.hedge_ratio, first.leverage_cap, [*first.reasons, UNSMOOTHED])


def test_as_of_decision_reads_the_smoothed_walk_forward_forecasts(tmp_path: Path,
                                                                  server_factory) -> None:
    """As of a past time, the policy reads the walk-forward's forecasts known then, smoothed:
    0.02 then 0.08 (half-life 1) -> 0.04; a later 5.0, not yet known, is not read."""
    end = fresh_end()
    bars = pd.DatetimeIndex([end - 30 * HOUR, end - 29 * HOUR, end - 28 * HOUR],
                            name="timestamp")
    pipeline = pipeline_file(tmp_path, policy=POLICY)
    make_bundle(tmp_path / "models" / "NEAR", seed=50)
    features = synthetic_features(80, end, seed=52)
    write_features(tmp_path, features)
    store = MarketStore(tmp_path / "store")
    predictions = pd.DataFrame({"fold": 3, VOL_FORECAST: [0.02, 0.08, 5.0],
                                "cascade_prob": [0.05, 0.07, 0.5]}, index=bars)
    store.write_table(predictions_path("NEAR", 24), predictions)
    config = load_pipeline(pipeline)

    t = bars[1] + HOUR + pd.Timedelta("5min")  # bar 1 closed, bar 2 not yet
    server = server_factory(pipeline).start()
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        got = http.post("/v1/decisions", json={"symbol": "NEAR", **BODY,
                                               "as_of": t.isoformat()})
    assert got.status_code == 200, got.text
    answer = got.json()
    assert pd.Timestamp(answer["forecast_timestamp"]) == bars[1]
    row = features.loc[bars[1]].to_dict()
    values = {VOL_FORECAST: 0.04, "cascade_prob": 0.07}
    want = _expected(values, row, answer, config, "NEAR")
    assert (answer["hedge_ratio"], answer["leverage_cap"], answer["reasons"]) == (
        want.hedge_ratio, want.leverage_cap, want.reasons)
    raw = _expected({**values, VOL_FORECAST: 0.08}, row, answer, config, "NEAR")
    assert answer["reasons"] != raw.reasons
