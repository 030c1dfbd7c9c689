"""Bearer-token auth: one shared secret, read once at start-up, compared in constant time."""

from __future__ import annotations

import hmac
import json
import os

from starlette.types import ASGIApp, Receive, Scope, Send

from cascade_ml.errors import ConfigError
from cascade_ml.serving.config import ServingConfig


def load_token(config: ServingConfig) -> str:
    """The service token from the environment variable, else the token file; refuse to run without.

    Running open by accident is worse than not starting, so a missing token is a user error.
    """
    token = os.environ.get(config.token_env, "").strip()
    if token:
        return token
    if config.token_file is not None:
        path = config.token_file
        if not path.exists():
            raise ConfigError("token file not found", str(path))
        token = path.read_text().strip()
        if token:
            return token
        raise ConfigError("token file is empty", str(path))
    raise ConfigError(f"no service token: set the environment variable {config.token_env}",
                      hint="or set serving.token_file in the pipeline file")


class BearerAuthMiddleware:
    """Pure ASGI middleware: every path under ``prefix`` needs ``Authorization: Bearer <token>``.

    Checked before routing and body parsing, so an unauthenticated caller gets 401 whatever it
    sends (never a 422 that would tell it about the payload), and any route added later under
    ``/v1/`` is protected without remembering to.
    """

    def __init__(self, app: ASGIApp, token: str, prefix: str = "/v1/") -> None:
        if not token:
            raise ConfigError("the service token is empty")
        self.app = app
        self.prefix = prefix
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            header = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    header = value
                    break
            if header is None:
                await _unauthorized(send, "missing bearer token ('Authorization: Bearer <token>')")
                return
            if not hmac.compare_digest(header, self._expected):
                await _unauthorized(send, "invalid bearer token")
                return
        await self.app(scope, receive, send)


async def _unauthorized(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b"Bearer")]})
    await send({"type": "http.response.body", "body": body})
