"""`WS /ws`: OpenEnv's message protocol, one session per connection.

Messages are `{"type": ..., "data": ...}`; `HANDLERS` maps each type (reset, step, state, and our
`trajectory`) to the method that answers it, and `close` ends the connection. Errors are `error`
messages with OpenEnv's codes; our own code travels as `error`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from .api_errors import ApiError, validation_text
from .dependencies import Manager, authorize
from .models import SessionState, StepBody, WsResetBody
from .replies import ignored, json_response, openenv_result
from .sessions import OPERATOR, Caller, Session, SessionManager

WAIT_TOOL = "wait"
"""The action `{"tool": "wait"}`: on /ws, wait for the call still running (it is never sent to the env)."""

router = APIRouter()

_WS_CODES_BY_ERROR = {
    "unknown_session": "SESSION_ERROR",
    "no_episode": "SESSION_ERROR",
    "capacity": "CAPACITY_REACHED",
    "unknown_task": "VALIDATION_ERROR",
}
_WS_CODES_BY_STATUS = {
    400: "VALIDATION_ERROR",
    401: "SESSION_ERROR",
    403: "SESSION_ERROR",
    404: "VALIDATION_ERROR",
    409: "SESSION_ERROR",
    422: "VALIDATION_ERROR",
    429: "CAPACITY_REACHED",
}
"""OpenEnv's WSErrorCode values (anything else: EXECUTION_ERROR); our own code travels as `error`."""
_WS_OWN_CODES = ("INVALID_JSON", "UNKNOWN_TYPE", "VALIDATION_ERROR", "EXECUTION_ERROR", "CAPACITY_REACHED", "FACTORY_ERROR", "SESSION_ERROR")


@router.websocket("/ws")
async def websocket(socket: WebSocket, manager: Manager) -> None:
    try:
        caller = authorize(socket.headers, manager.config)
    except ApiError as problem:
        try:  # an HTTP 401/403 with the JSON message, where the ASGI server can send one
            await socket.send_denial_response(json_response(problem.body(), problem.status))
        except RuntimeError:
            await socket.accept()
            await ws_error(socket, problem)
            await socket.close(code=1008)
        return
    await socket.accept()
    connection = WsConnection(socket, manager, manager.config.reply_within, caller)
    try:
        await connection.serve()
    except WebSocketDisconnect:
        pass
    finally:
        # The client closed, vanished or was cut off: its container goes now, not at the idle timeout
        # (after the call still running, if any, has finished: the env is busy until then).
        await asyncio.shield(connection.finish())
    try:
        await socket.close()
    except (RuntimeError, WebSocketDisconnect):
        pass  # already closed by the client


async def ws_send(socket: WebSocket, kind: str, data: dict[str, Any]) -> None:
    await socket.send_text(json.dumps({"type": kind, "data": data}, default=str))


def ws_error_data(error: ApiError) -> dict[str, Any]:
    code = error.code if error.code in _WS_OWN_CODES else _WS_CODES_BY_ERROR.get(error.code, _WS_CODES_BY_STATUS.get(error.status, "EXECUTION_ERROR"))
    return {"code": code, "error": error.code, "status": error.status, "message": error.message}


async def ws_error(socket: WebSocket, error: ApiError) -> None:
    await ws_send(socket, "error", ws_error_data(error))


class WsConnection:
    """One WebSocket: its session, and the one env call that may still be running.

    Every message is answered within `reply_within` seconds. A reset or step that takes
    longer keeps running; the reply is an observation with `pending: true`, and the next step
    message (`{"tool": "wait"}`; any other action is not run, and a warning says so) waits up
    to `reply_within` again for it and answers with its result or another pending reply. A
    reset sent meanwhile runs after it (its result is dropped). So a stock OpenEnv client,
    which gives up on a reply after its message timeout, never gets out of step with the server.
    """

    def __init__(self, socket: WebSocket, manager: SessionManager, reply_within: float | None, caller: Caller = OPERATOR):
        self.socket, self.manager, self.reply_within = socket, manager, reply_within
        self.caller = caller
        """Who opened the connection: its session belongs to them."""
        self.session: Session | None = None
        self.running: asyncio.Future | None = None
        self.running_kind = ""
        self.running_since = 0.0

    async def serve(self) -> None:
        while True:
            received = await self.socket.receive()
            if received["type"] == "websocket.disconnect":
                return
            try:
                raw = received.get("text")
                message = json.loads(raw if raw is not None else received.get("bytes") or b"")
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
                await ws_send(
                    self.socket, "error", {"code": "INVALID_JSON", "error": "invalid_json", "status": 400, "message": f"invalid JSON: {exc}"}
                )
                continue
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "close":
                return
            try:
                if self.session is not None and self.session.id not in self.manager.sessions:
                    self.manager.get(self.session.id)  # raises, saying why the session ended (e.g. reaped)
                handler = HANDLERS.get(kind) if isinstance(kind, str) else None  # a type may be any JSON value
                if handler is None:
                    raise ApiError(400, "UNKNOWN_TYPE", f"unknown message type {kind!r}; expected {', '.join(HANDLERS)} or close")
                await handler(self, message)
            except ValidationError as exc:
                await ws_error(self.socket, ApiError(422, "invalid_request", validation_text(exc)))
            except ApiError as exc:
                await ws_error(self.socket, exc)
                if exc.code == "unknown_session":
                    return

    async def on_reset(self, message: dict[str, Any]) -> None:
        data = message.get("data") or {}
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_request", "a reset message's data must be an object")
        body = WsResetBody.model_validate(data)
        if self.session is not None and body.config:
            raise ApiError(422, "invalid_request", "config can only be given in the first reset of a connection")
        # An unknown task is refused now, before it could wait for (or touch) the running episode.
        self.manager.check_task(body.task_id, running=self.session is not None and self.session.episode_id is not None)
        if body.reply_within_s is not None:
            self.reply_within = body.reply_within_s
        warnings = ignored(body, "reset")
        before = self.running

        async def reset() -> tuple[str, dict[str, Any]]:
            if before is not None:  # a call still running: this reset comes after it
                await asyncio.wait({before})
            if self.session is None:
                self.session, observation, info = await self.manager.create("ws", body, self.caller)
            else:
                observation, info = await self.manager.reset(self.session, body)
            return "observation", openenv_result(self.session, observation, None, False, False, info, warnings)

        await self._answer(asyncio.ensure_future(reset()), "reset")

    async def on_step(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if self.running is not None:
            # A call is still running: this message waits for it; its own action is not run.
            not_run = (
                []
                if isinstance(data, dict) and _is_wait(data.get("action", data))
                else [
                    f'this action was not run: it arrived while the previous call was still running (send {{"tool": "{WAIT_TOOL}"}} to wait for it)'
                ]
            )
            await self._answer(self.running, self.running_kind, not_run)
            return
        if self.session is None:
            raise ApiError(409, "no_episode", "send a reset message before step")
        body = _ws_step_body(data)
        session = self.session
        if _is_wait(body.action):
            await ws_send(
                self.socket,
                "observation",
                openenv_result(
                    session,
                    "Nothing to wait for: no call is running.",
                    0.0,
                    False,
                    False,
                    {},
                    ["wait is only for a call still running; it is not a step of the episode"],
                ),
            )
            return

        async def step() -> tuple[str, dict[str, Any]]:
            observation, reward, terminated, truncated, info = await self.manager.step(session, body)
            return "observation", openenv_result(session, observation, reward, terminated, truncated, info)

        await self._answer(asyncio.ensure_future(step()), "step")

    async def on_state(self, message: dict[str, Any]) -> None:
        if self.session is None:
            if self.running is None:
                raise ApiError(409, "no_episode", "send a reset message first")
            state = SessionState(transport="ws", busy=True)  # the first reset is still starting the session
        else:
            state = self.manager.get(self.session.id).state()
        await ws_send(self.socket, "state", state.model_dump())

    async def on_trajectory(self, message: dict[str, Any]) -> None:
        """Our message `{"type": "trajectory"}`: the episode's record, `{"type": "trajectory", "data": {...}}`."""
        if self.session is None:
            raise ApiError(409, "no_episode", "send a reset message first")
        if self.running is not None:
            raise ApiError(
                409, "busy", f'the {self.running_kind} is still running: send {{"tool": "{WAIT_TOOL}"}} steps until its result comes, then ask again'
            )
        await ws_send(self.socket, "trajectory", await self.manager.trajectory(self.session))

    async def _answer(self, call: asyncio.Future, kind: str, warnings: list[str] | None = None) -> None:
        """Send call's result if it ends within reply_within seconds, else a pending reply (it goes on)."""
        if call is not self.running:
            call.add_done_callback(_retrieve)
            self.running, self.running_kind, self.running_since = call, kind, time.monotonic()
        done, _ = await asyncio.wait({call}, timeout=self.reply_within)
        if not done:
            waited = time.monotonic() - self.running_since
            text = (
                f"[the {kind} is still running on the server ({waited:.0f} s so far). Send the step "
                f'{{"tool": "{WAIT_TOOL}"}} to wait for its result; any other action is not run until it ends.]'
            )
            await ws_send(
                self.socket,
                "observation",
                openenv_result(self.session, text, 0.0 if kind == "step" else None, False, False, {"pending": kind}, warnings, pending=True),
            )
            return
        self.running = None
        kind_sent, data = call.result()  # an ApiError or ValidationError is sent as an error by serve()
        if warnings:
            data["observation"]["warnings"] = [*data["observation"]["warnings"], *warnings]
        await ws_send(self.socket, kind_sent, data)

    async def finish(self) -> None:
        if self.running is not None:
            await asyncio.wait({self.running})
        if self.session is not None:
            await self.manager.close(self.session.id, "its WebSocket closed")


HANDLERS: dict[str, Callable[[WsConnection, dict[str, Any]], Awaitable[None]]] = {
    "reset": WsConnection.on_reset,
    "step": WsConnection.on_step,
    "state": WsConnection.on_state,
    "trajectory": WsConnection.on_trajectory,
}
"""Message type → the method that answers it (given the whole message); `close` is answered by
`serve` itself, which ends the connection. A new message type is one method and one line here."""


def _retrieve(call: asyncio.Future) -> None:
    """Mark a call's failure as seen: the client may never collect it."""
    if not call.cancelled():
        call.exception()


def _is_wait(action: Any) -> bool:
    return isinstance(action, dict) and action.get("tool") == WAIT_TOOL and not set(action) - {"tool", "metadata"}


def _ws_step_body(data: Any) -> StepBody:
    """A step message's data: `{"action": ...}`, or (OpenEnv style) the action object itself."""
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", 'a step message needs data: {"action": ...} or an action object')
    if "action" in data:
        return StepBody.model_validate(data)
    # OpenEnv's Action models always carry a `metadata` field; it is not a tool argument.
    return StepBody(action={key: value for key, value in data.items() if key != "metadata"})
