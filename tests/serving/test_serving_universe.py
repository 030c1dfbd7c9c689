"""The universe served: `cascade-ml serve --pipeline <universe>` answers every task symbol from
the one panel bundle, over a real socket, with the same auth, staleness and hot reload as a
per-symbol service; a symbol outside the task is still 404."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import numpy as np
import pandas as pd
import pytest
from demo_data import last_closed_bar
from panel_data import SYMBOLS, fresh_panel, recent, universe_pipeline, write_universe_store
from serving_helpers import Server, auth

from cascade_ml.atomic import replace_dir
from cascade_ml.config import load_pipeline
from cascade_ml.forecasting import load_forecaster


class Universe(NamedTuple):
    server: Server
    pipeline: Path
    end: pd.Timestamp


@pytest.fixture(scope="module")
def universe(tmp_path_factory, small_panel, panel_bundle_dir) -> Iterator[Universe]:
    tmp = tmp_path_factory.mktemp("universe")
    end = last_closed_bar()
    write_universe_store(tmp / "store", fresh_panel(recent(small_panel.frame), end))
    shutil.copytree(panel_bundle_dir, tmp / "models" / "panel")
    pipeline = universe_pipeline(tmp)
    server = Server(pipeline).start()
    yield Universe(server, pipeline, end)
    server.stop()


def _set(folder: Path, **changes) -> None:
    meta = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps({**meta, **changes}))


def _served(pipeline: Path, symbol: str) -> dict[str, float]:
    """What the forecaster gives for the symbol's newest stored row, in this process."""
    config = load_pipeline(pipeline)
    from cascade_ml.data.store import MarketStore

    forecaster = load_forecaster(config.forecasters_dir, symbol, config.task)
    rows = forecaster.input_rows(MarketStore(config.store.root), symbol, last=1)
    return {k: float(v[0]) for k, v in forecaster.predict(rows.to_numpy(float), symbol).items()}


def test_every_task_symbol_gets_the_panel_forecast(universe: Universe) -> None:
    with httpx.Client(base_url=universe.server.url, headers=auth()) as http:
        for symbol in SYMBOLS:
            body = http.get(f"/v1/forecasts/{symbol}").json()
            assert body["model_version"] == "p1" and body["source"] == "live", body
            assert pd.Timestamp(body["timestamp"]) == universe.end and not body["stale"]
            want = _served(universe.pipeline, symbol)
            for key in ("var_forecast", "vol_forecast", "cascade_prob"):
                assert body[key] == pytest.approx(want[key], rel=1e-12), (symbol, key)
            assert body["vol_forecast"] == pytest.approx(math.sqrt(body["var_forecast"]),
                                                         rel=1e-12)
        models = {m["symbol"]: m for m in http.get("/v1/models").json()["models"]}
        assert all(models[s]["version"] == "p1" and models[s]["horizon"] == 24 for s in SYMBOLS)
        assert {m["load_error"] for m in models.values()} == {None}


def test_decisions_for_every_task_symbol_are_on_the_model_path(universe: Universe) -> None:
    with httpx.Client(base_url=universe.server.url, headers=auth()) as http:
        for symbol in SYMBOLS:
            answer = http.post("/v1/decisions", json={
                "symbol": symbol, "side": "long", "notional": 5000.0, "mark_price": 5.0,
                "leverage": 3.0, "portfolio_value": 50_000.0})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert not body["fail_safe"] and body["model_version"] == "p1", body
            assert body["leverage_cap"] > 0 and body["size_cap"] > 0
            assert pd.Timestamp(body["forecast_timestamp"]) == universe.end


def test_auth_and_symbols_outside_the_task(universe: Universe) -> None:
    with httpx.Client(base_url=universe.server.url) as http:
        assert http.get("/v1/forecasts/NEAR").status_code == 401
        assert http.get("/v1/forecasts/DOGE", headers=auth()).status_code == 404
        answer = http.post("/v1/decisions", headers=auth(), json={
            "symbol": "DOGE", "side": "long", "notional": 100.0, "mark_price": 1.0,
            "leverage": 1.0})
        assert answer.status_code == 404


def test_stale_universe_rows_fail_safe(tmp_path, small_panel, panel_bundle_dir,
                                       server_factory) -> None:
    """Rows three hours old against a two-hour limit: every symbol's decision fails safe."""
    end = last_closed_bar() - pd.Timedelta("3h")
    write_universe_store(tmp_path / "store", fresh_panel(recent(small_panel.frame, 300), end))
    shutil.copytree(panel_bundle_dir, tmp_path / "models" / "panel")
    server = server_factory(universe_pipeline(tmp_path)).start()
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        for symbol in ("NEAR", "SEI"):
            body = http.post("/v1/decisions", json={
                "symbol": symbol, "side": "long", "notional": 5000.0, "mark_price": 5.0,
                "leverage": 3.0}).json()
            assert body["fail_safe"] and body["stale"], body


def test_a_new_panel_bundle_is_hot_reloaded_for_every_symbol(tmp_path, small_panel,
                                                            panel_bundle_dir,
                                                            server_factory) -> None:
    write_universe_store(tmp_path / "store",
                         fresh_panel(recent(small_panel.frame, 300), last_closed_bar()))
    shutil.copytree(panel_bundle_dir, tmp_path / "models" / "panel")
    server = server_factory(universe_pipeline(tmp_path)).start()
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        assert http.get("/v1/forecasts/ETH").json()["model_version"] == "p1"
        new = tmp_path / "models" / ".panel-new"
        shutil.copytree(panel_bundle_dir, new)
        _set(new, version="p2")
        replace_dir(new, tmp_path / "models" / "panel")  # atomic, as the train step does
        deadline = time.monotonic() + 20
        versions: set = set()
        while time.monotonic() < deadline:
            versions = {http.get(f"/v1/forecasts/{s}").json()["model_version"] for s in SYMBOLS}
            if versions == {"p2"}:
                break
            time.sleep(0.2)
        assert versions == {"p2"}
        # a bundle for another horizon is refused; the loaded one keeps serving
        _set(tmp_path / "models" / "panel", horizon=12, version="p3")
        deadline = time.monotonic() + 20
        errors: list = []
        while time.monotonic() < deadline and not errors:
            errors = [m["load_error"] for m in http.get("/v1/models").json()["models"]
                      if m["load_error"]]
            time.sleep(0.2)
        assert errors and "task.horizon is 24" in errors[0]
        assert http.get("/v1/forecasts/NEAR").json()["model_version"] == "p2"
        assert np.isfinite(http.get("/v1/forecasts/NEAR").json()["var_forecast"])
