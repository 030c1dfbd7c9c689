"""A real HTTP server on a loopback socket that records the JSON bodies POSTed to it (the
breakers' webhook in the tests: no mock between the alert and a socket)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def recording_server() -> Iterator[tuple[str, list[dict]]]:
    """(the URL of ``/hook`` on 127.0.0.1, the requests received: path, type, body)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            length = int(self.headers["Content-Length"])
            received.append({"path": self.path, "type": self.headers["Content-Type"],
                             "body": json.loads(self.rfile.read(length))})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
