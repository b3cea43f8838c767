"""Bounds on what a client can make the server read: the size of a request's body.

A body is read whole and parsed as JSON on the event loop, so without a bound one client's 64 MiB
request costs the server gigabytes and stalls every other client while it is parsed (red team rt3,
e2). `BodyLimit` refuses a body over the limit before any of it is read when its Content-Length says
so, and stops reading one sent in chunks as soon as the count passes the limit; both answer 413.
WebSocket messages get the same limit from uvicorn (`ws_max_size`).
"""

from __future__ import annotations

import json
from typing import Any

MAX_REQUEST_BYTES = 16 * 1024 * 1024
"""Default bound of a request's body and of a WebSocket message: an action is at most
`tools.MAX_ACTION_CHARS` characters, which JSON writes in at most 12 bytes each only when every one
is an escaped astral character; real actions are far below."""


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: HTTP requests whose body is over `limit` bytes get 413 and are not read further."""

    def __init__(self, app: Any, limit: int = MAX_REQUEST_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(send)
            return
        received, started = 0, False

        async def counted_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def watched_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"error": "request_too_large", "detail": f"the request's body is over the server's limit of {self.limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
