"""The service over a real socket: auth, validation, forecasts, decisions, models, metrics, docs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pandas as pd
import pytest
from demo_data import (
    SYMBOL,
    fresh_end,
    make_bundle,
    run_score,
    synthetic_features,
    write_features,
    write_pipeline,
)
from serving_helpers import TOKEN, Server, auth

from cascade_ml.client import CascadeClient, RequestRejectedError


class Live(NamedTuple):
    server: Server
    version: str
    end: pd.Timestamp  # open time of the newest feature bar


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server with a real bundle and fresh scores for NEAR."""
    tmp = tmp_path_factory.mktemp("api")
    pipeline = write_pipeline(tmp)
    version = make_bundle(tmp / "models" / SYMBOL, seed=1)
    end = fresh_end()
    write_features(tmp, synthetic_features(400, end))
    [result] = run_score(pipeline)
    assert result.ok, result.error
    server = Server(pipeline).start()
    yield Live(server, version, end)
    server.stop()


REPO = Path(__file__).resolve().parents[2]
DECISION = {"symbol": SYMBOL, "side": "long", "notional": 5000.0, "mark_price": 5.0,
            "leverage": 3.0, "portfolio_value": 50_000.0}


def test_health_is_open_and_api_needs_token(live: Live) -> None:
    server, _, _ = live
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/health").json() == {"status": "ok"}
        calls = (("GET", f"/v1/forecasts/{SYMBOL}", None), ("POST", "/v1/decisions", DECISION),
                 ("GET", "/v1/models", None))
        for method, path, body in calls:
            missing = http.request(method, path, json=body)
            wrong = http.request(method, path, json=body,
                                 headers={"Authorization": "Bearer not-" + TOKEN})
            basic = http.request(method, path, json=body, headers={"Authorization": TOKEN})
            for response in (missing, wrong, basic):
                assert response.status_code == 401, (path, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
            assert "missing" in missing.json()["detail"]
            assert "invalid" in wrong.json()["detail"]
        garbage = http.post("/v1/decisions", content=b"{not json",
                            headers={"content-type": "application/json"})
        assert garbage.status_code == 401  # no token: refused before the body is parsed
        text = http.get("/metrics").text
        assert 'method="POST",route="/v1/decisions",status="401"' in text


def test_forecast_fresh_with_version_and_unknown_symbol_404(live: Live) -> None:
    server, version, end = live
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        body = http.get(f"/v1/forecasts/{SYMBOL}").json()
        assert body["symbol"] == SYMBOL and body["model_version"] == version
        assert body["stale"] is False and 0 <= body["age_seconds"] < 7200
        assert body["vol_forecast"] > 0 and 0 <= body["cascade_prob"] <= 1
        assert body["vol_forecast"] == pytest.approx(body["var_forecast"] ** 0.5, rel=1e-6)
        assert pd.Timestamp(body["timestamp"]) == end
        assert pd.Timestamp(body["available_at"]) == end + pd.Timedelta("1h")
        missing = http.get("/v1/forecasts/DOGE")
        assert missing.status_code == 404 and "DOGE" in missing.json()["detail"]


@pytest.mark.parametrize(("payload", "field"), [
    ({**DECISION, "notional": -5}, "body.notional"),
    ({k: v for k, v in DECISION.items() if k != "notional"}, "body.notional"),
    ({**DECISION, "side": "sideways"}, "body.side"),
    ({**DECISION, "leverage": "lots"}, "body.leverage"),
    ({**DECISION, "notionl": 5}, "body.notionl"),
    ({**DECISION, "symbol": "NE AR/../x"}, "body.symbol"),
    ({**DECISION, "market": {"price": 0}}, "body.market.price"),
])
def test_bad_decision_payload_is_422_naming_the_field(live: Live, payload: dict,
                                                      field: str) -> None:
    server, _, _ = live
    response = httpx.post(f"{server.url}/v1/decisions", json=payload, headers=auth())
    assert response.status_code == 422
    assert field in response.json()["detail"]


def test_malformed_json_and_nan_are_422(live: Live) -> None:
    server, _, _ = live
    headers = {**auth(), "content-type": "application/json"}
    for raw in (b"{not json", b'{"symbol": "NEAR", "notional": NaN}', b"[]", b""):
        response = httpx.post(f"{server.url}/v1/decisions", content=raw, headers=headers)
        assert response.status_code == 422, raw
        assert response.json()["detail"]


def test_decision_carries_the_forecast_version(live: Live) -> None:
    """The values themselves are checked against ``decide`` in test_serving_decisions.py."""
    server, version, end = live
    body = httpx.post(f"{server.url}/v1/decisions", json=DECISION, headers=auth()).json()
    assert body["fail_safe"] is False and body["stale"] is False
    assert body["model_version"] == version
    assert pd.Timestamp(body["forecast_timestamp"]) == end
    assert body["action"] and body["reasons"]


def test_unknown_symbol_is_404_on_forecasts_and_decisions(live: Live) -> None:
    """A bot's typo must fail loudly, not get a fail-safe answer for a market nobody forecasts."""
    server, _, _ = live
    with httpx.Client(base_url=server.url, headers=auth()) as http:
        for typo in ("NEARR", "DOGE"):
            forecast = http.get(f"/v1/forecasts/{typo}")
            decision = http.post("/v1/decisions", json={**DECISION, "symbol": typo})
            for response in (forecast, decision):
                assert response.status_code == 404, response.text
                assert typo in response.json()["detail"] and SYMBOL in response.json()["detail"]
        assert http.post("/v1/decisions", json={**DECISION, "symbol": "near"}).status_code == 200
        metrics = http.get("/metrics").text
    assert 'route="/v1/decisions",status="404"' in metrics
    assert "DOGE" not in metrics  # no fail-safe counted, no label for the typo
    with CascadeClient(server.url, TOKEN, retries=3) as client, \
            pytest.raises(RequestRejectedError, match="404") as err:
        client.decision("DOGE", notional=5000, mark_price=5.0, leverage=3)
    assert err.value.status == 404


def test_models_lists_version_span_metrics(live: Live) -> None:
    server, version, _ = live
    [model] = httpx.get(f"{server.url}/v1/models", headers=auth()).json()["models"]
    assert model["symbol"] == SYMBOL and model["version"] == version
    assert model["training_span"] and model["metrics"] and model["load_error"] is None
    assert model["n_features"] > 0


def test_metrics_exposes_routes_ages_and_failsafes(live: Live) -> None:
    server, _, _ = live
    httpx.get(f"{server.url}/v1/forecasts/{SYMBOL}", headers=auth())
    httpx.get(f"{server.url}/v1/forecasts/NOPE", headers=auth())
    text = httpx.get(f"{server.url}/metrics").text
    assert ('cascade_requests_total{method="GET",route="/v1/forecasts/{symbol}",status="200"}'
            in text)
    assert 'route="/v1/forecasts/{symbol}",status="404"' in text
    assert "NOPE" not in text  # raw paths never become labels
    assert f'cascade_forecast_age_seconds{{symbol="{SYMBOL}"}}' in text
    bucket = ('cascade_request_seconds_bucket{le="0.005",method="GET",'
              'route="/v1/forecasts/{symbol}"}')
    assert bucket in text
    assert "cascade_failsafe_decisions_total" in text
    assert f'cascade_model_loaded{{symbol="{SYMBOL}"}} 1.0' in text


def test_ready_and_docs(live: Live) -> None:
    server, _, _ = live
    ready = httpx.get(f"{server.url}/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert httpx.get(f"{server.url}/docs").status_code == 200
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/v1/forecasts/{symbol}", "/v1/decisions", "/v1/models"} <= set(spec["paths"])
    assert spec["paths"]["/v1/decisions"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"]


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in _refs(v)]
    return [r for v in node for r in _refs(v)] if isinstance(node, list) else []


def test_openapi_documents_the_decision_body_and_answers(live: Live) -> None:
    """The handler parses its body itself; /docs must still show the request and response."""
    spec = httpx.get(f"{live.server.url}/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for ref in _refs(spec):  # every reference resolves (nested models included)
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    op = spec["paths"]["/v1/decisions"]["post"]
    body = op["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DecisionRequest"}
    request = schemas["DecisionRequest"]
    assert set(request["required"]) == {"symbol", "notional", "mark_price", "leverage"}
    assert request["properties"]["notional"]["exclusiveMinimum"] == 0
    assert request["additionalProperties"] is False
    assert "price" in schemas["MarketUpdate"]["properties"]

    def answer(status: str) -> str:
        return op["responses"][status]["content"]["application/json"]["schema"]["$ref"]

    assert answer("200") == "#/components/schemas/DecisionOut"
    assert answer("401") == answer("404") == "#/components/schemas/ErrorOut"
    assert answer("422") == "#/components/schemas/ValidationErrorOut"
    assert {"hedge_ratio", "leverage_cap", "fail_safe"} <= set(schemas["DecisionOut"]["properties"])
    assert set(schemas["ValidationErrorOut"]["properties"]) == {"detail", "errors"}


def test_decision_body_must_be_json_and_errors_are_structured(live: Live) -> None:
    url, raw = f"{live.server.url}/v1/decisions", json.dumps(DECISION).encode()
    ok = httpx.post(url, content=raw,
                    headers={**auth(), "content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 200 and ok.json()["symbol"] == SYMBOL
    for headers in ({}, {"content-type": "text/plain"}):  # FastAPI's rule: JSON media type only
        response = httpx.post(url, content=raw, headers={**auth(), **headers})
        assert response.status_code == 422, headers
        assert response.json()["errors"][0]["loc"] == ["body"]
    bad = httpx.post(url, content=b'{"symbol": "NEAR",', headers={
        **auth(), "content-type": "application/json"})
    assert bad.status_code == 422
    [error] = bad.json()["errors"]
    assert error["loc"] == ["body"] and error["type"] == "json_invalid"
    assert bad.json()["detail"].startswith("body: Invalid JSON")
    many = httpx.post(url, json={**DECISION, "notional": 0, "leverage": 500}, headers=auth())
    assert [e["loc"] for e in many.json()["errors"]] == [["body", "notional"], ["body", "leverage"]]


def test_client_typed_results_against_the_service(live: Live) -> None:
    server, version, _ = live
    with CascadeClient(server.url, TOKEN, retries=0) as client:
        assert client.health()
        forecast = client.forecast(SYMBOL)
        assert forecast.fresh and forecast.model_version == version
        assert forecast.timestamp.tzinfo is not None and forecast.vol_forecast > 0
        decision = client.decision(SYMBOL, notional=5000, mark_price=5.0, leverage=3)
        assert isinstance(decision.hedge_ratio, float) and decision.fail_safe is False
        assert decision.model_version == version and decision.reasons
        [model] = client.models()
        assert model.version == version
        with pytest.raises(RequestRejectedError, match="422.*body.notional") as err:
            client.decision(SYMBOL, notional=-1, mark_price=5.0, leverage=3)
        assert err.value.status == 422
    with CascadeClient(server.url, "wrong", retries=3) as client, \
            pytest.raises(RequestRejectedError, match="401"):
        client.forecast(SYMBOL)
