"""The routes' FastAPI dependencies: the app's `SessionManager` (from `app.state`, where
`create_app` puts it) and the token check (a bearer token, or HTTP Basic with the token as the
password) that says who the caller is (`Caller`: a client, or the operator), which `/ws` also
calls itself before it accepts a connection."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.requests import HTTPConnection

from .api_errors import ApiError
from .config import ServerConfig
from .sessions import Caller, SessionManager


def get_manager(connection: HTTPConnection) -> SessionManager:
    """The app's session manager (an HTTP request's or a WebSocket's)."""
    return connection.app.state.manager


Manager = Annotated[SessionManager, Depends(get_manager)]
"""A route parameter typed `Manager` receives the app's session manager."""


def presented_token(request_headers: Any) -> str:
    """The token a request presents: a bearer token, or HTTP Basic's password; "" when none."""
    header = request_headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic" and value:
        # For clients that can only put credentials in the URL (http://user:TOKEN@host, as OpenEnv 0.3's
        # WebSocket client can): HTTP Basic with the token as the password, any user name.
        try:
            return base64.b64decode(value, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return value if scheme.lower() == "bearer" else ""


def authorize(request_headers: Any, config: ServerConfig) -> Caller:
    """Who a request is (`Caller`), or the 401/403 ApiError: the server's token or the operator's is needed
    when the server has a token; without one every caller is the same anonymous client."""
    if not config.token:
        return Caller(owner="anonymous")
    value = presented_token(request_headers)
    if not value:
        raise ApiError(
            401,
            "unauthorized",
            "missing bearer token: send the header 'Authorization: Bearer <token>' (or put it in the URL as the password: http://user:<token>@host)",
        )
    if config.operator_token and hmac.compare_digest(value.encode(), config.operator_token.encode()):
        return Caller(owner=fingerprint(value), operator=True)
    # Every token is compared (no early exit), so the time taken says nothing about which one nearly matched.
    matched = [hmac.compare_digest(value.encode(), token.encode()) for token in (config.token, *config.client_tokens)]
    if not any(matched):
        raise ApiError(403, "forbidden", "wrong bearer token")
    return Caller(owner=fingerprint(value))


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


async def require_token(request: Request, manager: Manager) -> Caller:
    """The request's `Caller`; raises the 401/403 ApiError unless it carries the server's token (when it has one)."""
    return authorize(request.headers, manager.config)


Authorized = Annotated[Caller, Depends(require_token)]
"""A route parameter typed `Authorized` receives the request's `Caller` (the token checked)."""
