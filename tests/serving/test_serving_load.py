"""Bounded load test on loopback: 20,000 requests, 16 concurrent, valid, malformed, unauthorized.

Zero 5xx; every malformed request gets a 4xx with a message; every valid one is answered.
"""

from __future__ import annotations

import asyncio
import json
import time

from demo_data import (
    SYMBOL,
    fresh_end,
    make_bundle,
    run_score,
    synthetic_features,
    write_features,
    write_pipeline,
)
from serving_helpers import TOKEN, RawConnection, Server

N_REQUESTS = 20_000
CONCURRENCY = 16
GOOD = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**GOOD, "content-type": "application/json"}
VALID = {"symbol": SYMBOL, "notional": 5000.0, "mark_price": 5.0, "leverage": 3.0}

# (kind, method, path, headers, body bytes, expected status)
CASES = [
    ("valid", "GET", f"/v1/forecasts/{SYMBOL}", GOOD, None, 200),
    ("valid", "POST", "/v1/decisions", JSON, json.dumps(VALID).encode(), 200),
    ("valid", "POST", "/v1/decisions", JSON,
     json.dumps({**VALID, "side": "short", "hedge_ratio": 0.5,
                 "market": {"price": 5.2, "funding_divergence": True}}).encode(), 200),
    ("malformed", "POST", "/v1/decisions", JSON, b"{not json", 422),
    ("malformed", "POST", "/v1/decisions", JSON, json.dumps({**VALID, "notional": -1}).encode(),
     422),
    ("malformed", "POST", "/v1/decisions", JSON, json.dumps({"symbol": SYMBOL}).encode(), 422),
    ("malformed", "POST", "/v1/decisions", JSON, b'{"symbol": "NEAR", "notional": NaN}', 422),
    ("malformed", "POST", "/v1/decisions", JSON, b"[1, 2, 3]", 422),
    ("malformed", "POST", "/v1/decisions", JSON,
     json.dumps({**VALID, "leverage": 1e308 * 10}).encode(), 422),
    ("malformed", "POST", "/v1/decisions", JSON, json.dumps({**VALID, "x": 1}).encode(), 422),
    ("malformed", "POST", "/v1/decisions", JSON, b"\xff\xfe\x00garbage", 422),
    ("malformed", "GET", "/v1/forecasts/NOSUCH", GOOD, None, 404),
    ("unauthorized", "GET", f"/v1/forecasts/{SYMBOL}", {}, None, 401),
    ("unauthorized", "POST", "/v1/decisions", {"Authorization": "Bearer wrong"},
     json.dumps(VALID).encode(), 401),
    ("unauthorized", "GET", "/v1/models", {"Authorization": f"Basic {TOKEN}"}, None, 401),
    ("unauthorized", "POST", "/v1/decisions", {"content-type": "application/json"},
     b"{not json", 401),  # auth is checked before the body is even parsed
]


async def _run(port: int) -> list[tuple[int, int, bytes]]:
    """(case index, status, body) for every request; the case mix is deterministic."""
    results: list[tuple[int, int, bytes]] = []
    todo = iter([i % len(CASES) for i in range(N_REQUESTS)])

    async def worker() -> None:
        conn = await RawConnection(port).open()
        try:
            for idx in todo:  # shared iterator: each request is taken by exactly one worker
                _, method, path, headers, body, _ = CASES[idx]
                status, payload = await conn.request(method, path, headers, body)
                results.append((idx, status, payload))
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return results


def test_twenty_thousand_mixed_requests(tmp_path) -> None:
    pipeline = write_pipeline(tmp_path)
    make_bundle(tmp_path / "models" / SYMBOL, seed=5)
    write_features(tmp_path, synthetic_features(300, fresh_end()))
    [result] = run_score(pipeline)
    assert result.ok
    server = Server(pipeline).start()
    try:
        started = time.perf_counter()
        results = asyncio.run(_run(server.port))
        elapsed = time.perf_counter() - started
    finally:
        server.stop()
    assert len(results) == N_REQUESTS
    assert not [r for r in results if r[1] >= 500], "5xx answers"
    for idx, status, payload in results:
        kind, *_, expected = CASES[idx]
        body = json.loads(payload)
        assert status == expected, (CASES[idx][:3], status, body)
        if kind == "valid":
            assert body["symbol"] == SYMBOL
        else:
            assert isinstance(body["detail"], str) and body["detail"], CASES[idx][:3]
    assert "Traceback" not in server.logs()
    print(f"{N_REQUESTS} requests in {elapsed:.1f} s ({N_REQUESTS / elapsed:.0f} req/s)")
