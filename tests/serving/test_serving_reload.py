"""Hot reload: a new bundle swaps in while requests keep succeeding; a broken bundle, or one whose
features do not match the store, keeps the old model and shows the error in /v1/models."""

from __future__ import annotations

import shutil
import threading

import httpx
from demo_data import (
    SYMBOL,
    fresh_end,
    make_bundle,
    run_score,
    synthetic_features,
    write_features,
    write_pipeline,
)
from serving_helpers import auth, until

DECISION = {"symbol": SYMBOL, "notional": 1000.0, "mark_price": 5.0, "leverage": 2.0}


def _model(http: httpx.Client) -> dict:
    return http.get("/v1/models").json()["models"][0]


def test_hot_reload_swaps_and_keeps_old_on_bad_bundle(tmp_path, server_factory) -> None:
    pipeline = write_pipeline(tmp_path)
    bundle_dir = tmp_path / "models" / SYMBOL
    v1 = make_bundle(bundle_dir, seed=11)
    write_features(tmp_path, synthetic_features(300, fresh_end()))
    assert run_score(pipeline)[0].ok
    server = server_factory(pipeline).start()

    statuses: list[int] = []
    versions: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, headers=auth()) as http:
            while not stop.is_set():
                r = http.get(f"/v1/forecasts/{SYMBOL}")
                statuses.append(r.status_code)
                if r.status_code == 200:
                    versions.append(r.json()["model_version"])
                statuses.append(http.post("/v1/decisions", json=DECISION).status_code)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        with httpx.Client(base_url=server.url, headers=auth()) as http:
            assert _model(http)["version"] == v1
            # 1. a new valid bundle: served without a restart
            staging = tmp_path / "staging"
            v2 = make_bundle(staging, seed=12)
            assert v2 != v1
            shutil.rmtree(bundle_dir)
            shutil.copytree(staging, bundle_dir)
            until(lambda: _model(http)["version"] == v2)
            until(lambda: http.get(f"/v1/forecasts/{SYMBOL}").json()["model_version"] == v2)

            # 2. a corrupt bundle: old one kept, error exposed
            for path in bundle_dir.iterdir():
                if path.suffix == ".json":
                    path.write_text("{ this is not json")
            model = until(lambda: (m := _model(http))["load_error"] and m)
            assert model["version"] == v2

            # 3. a valid bundle for other features: rejected, old one kept
            shutil.rmtree(bundle_dir)
            make_bundle(bundle_dir, seed=13, features=["foo", "bar", "baz"])
            model = until(lambda: (m := _model(http))["load_error"]
                           and "foo" in m["load_error"] and m)
            assert model["version"] == v2
            assert http.get(f"/v1/forecasts/{SYMBOL}").json()["model_version"] == v2
            text = http.get("/metrics").text
            assert f'cascade_model_reloads_total{{outcome="error",symbol="{SYMBOL}"}}' in text
    finally:
        stop.set()
        thread.join(10)
    assert len(statuses) > 20
    assert set(statuses) == {200}, f"failed requests during reload: {set(statuses)}"
    assert v1 in versions and v2 in versions
