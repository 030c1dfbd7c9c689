"""Shared fixtures: the real sample data ingested once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascade_ml.data.ingest import ingest_path
from cascade_ml.data.store import MarketStore

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "data" / "sample"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The shipped slice of real data (see data/sample/PROVENANCE.md)."""
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    """A store holding all of data/sample, ingested once per session (treat it as read-only)."""
    store = MarketStore(tmp_path_factory.mktemp("sample_store"))
    report = ingest_path(store, SAMPLE_DIR)
    assert not report.failed, report.format()
    return store


# ---------------------------------------------------------------- recorded exchange (offline)
class RecordedBinance:
    """A requests transport adapter answering Binance USD-M REST calls from recorded bodies.

    The bodies in tests/fixtures/exchange/binanceusdm are Binance's wire format (klines arrays,
    fundingRate and openInterestHist objects, exchangeInfo). Each request is answered the way the
    server does: rows filtered by startTime/endTime, at most ``limit`` of them, oldest first.
    ccxt's real HTTP handling, parsing, pagination and rate limiter run unchanged on top.
    ``fail_calls`` lists 1-based call numbers (per endpoint path) that raise a connection error.
    """

    DEFAULT_LIMIT = {"/fapi/v1/klines": 500, "/fapi/v1/fundingRate": 100,
                     "/futures/data/openInterestHist": 30}

    def __init__(self, root: Path | None = None, fail_calls: dict[str, set[int]] | None = None):
        self.root = root or FIXTURES / "exchange" / "binanceusdm"
        self.fail_calls = fail_calls or {}
        self.calls: list[str] = []

    # requests' adapter interface -------------------------------------------------
    def send(self, request, **kwargs):  # noqa: ANN001, ANN201 - requests' signature
        import json
        from urllib.parse import parse_qs, urlsplit

        import requests

        parts = urlsplit(request.url)
        path = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.calls.append(request.url)
        n = sum(1 for u in self.calls if urlsplit(u).path == path)
        if n in self.fail_calls.get(path, set()):
            raise requests.ConnectionError("Connection aborted. (recorded failure)")
        status, body = self._answer(path, query)
        response = requests.Response()
        response.status_code = status
        response.reason = "OK" if status == 200 else "Bad Request"
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass

    # the recorded server ---------------------------------------------------------
    def _answer(self, path: str, query: dict[str, str]) -> tuple[int, object]:
        import json

        if path == "/fapi/v1/exchangeInfo":
            return 200, json.loads((self.root / "exchangeInfo.json").read_text())
        files = {"/fapi/v1/klines": f"klines_{query.get('symbol')}_{query.get('interval')}.json",
                 "/fapi/v1/fundingRate": f"fundingRate_{query.get('symbol')}.json",
                 "/futures/data/openInterestHist":
                     f"openInterestHist_{query.get('symbol')}_{query.get('period')}.json"}
        if path not in files:
            return 404, {"code": -5000, "msg": f"Path {path}, Method GET is invalid"}
        file = self.root / files[path]
        if not file.exists():
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        rows = json.loads(file.read_text())

        def stamp(row: object) -> int:
            if isinstance(row, list):
                return int(row[0])
            return int(row.get("fundingTime", row.get("timestamp")))  # type: ignore[union-attr]

        start = int(query.get("startTime", 0))
        end = int(query.get("endTime", 2**62))
        limit = int(query.get("limit", self.DEFAULT_LIMIT[path]))
        return 200, [r for r in rows if start <= stamp(r) <= end][:limit]


@pytest.fixture
def recorded_binance():
    """A factory: ``make(fail_calls=None) -> (ccxt.binanceusdm, RecordedBinance)``, offline."""
    import ccxt

    def make(fail_calls: dict[str, set[int]] | None = None):
        server = RecordedBinance(fail_calls=fail_calls)
        exchange = ccxt.binanceusdm({"enableRateLimit": True, "rateLimit": 1})
        exchange.session.mount("https://", server)
        return exchange, server

    return make
