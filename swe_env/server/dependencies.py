"""The routes' FastAPI dependencies: the app's `SessionManager` (from `app.state`, where
`create_app` puts it) and the token check (a bearer token, or HTTP Basic with the token as the
password), which `/ws` also calls itself before it accepts a connection."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.requests import HTTPConnection

from .api_errors import ApiError
from .sessions import SessionManager


def get_manager(connection: HTTPConnection) -> SessionManager:
    """The app's session manager (an HTTP request's or a WebSocket's)."""
    return connection.app.state.manager


Manager = Annotated[SessionManager, Depends(get_manager)]
"""A route parameter typed `Manager` receives the app's session manager."""


def bearer_error(request_headers: Any, token: str | None) -> ApiError | None:
    if not token:
        return None
    header = request_headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic" and value:
        # For clients that can only put credentials in the URL (http://user:TOKEN@host, as OpenEnv 0.3's
        # WebSocket client can): HTTP Basic with the token as the password, any user name.
        try:
            value = base64.b64decode(value, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            value = ""
    elif scheme.lower() != "bearer":
        value = ""
    if not value:
        return ApiError(401, "unauthorized", "missing bearer token: send the header 'Authorization: Bearer <token>' "
                                             "(or put it in the URL as the password: http://user:<token>@host)")
    if not hmac.compare_digest(value.encode(), token.encode()):
        return ApiError(403, "forbidden", "wrong bearer token")
    return None


async def require_token(request: Request, manager: Manager) -> None:
    """Raise the 401/403 ApiError unless the request carries the server's token (when it has one)."""
    problem = bearer_error(request.headers, manager.config.token)
    if problem is not None:
        raise problem
