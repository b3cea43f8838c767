"""The env as a service: episodes as sessions over HTTP and WebSocket (FastAPI + uvicorn).

Each session owns one `SWEEnv` (so at most one container at a time). Routes:

- `POST /sessions` (seed / task_id / action_format / episode_index / model, plus `config`:
  EnvConfig fields but `trajectory_path` and `warm_pool`) → the session id and the first
  observation; `POST /sessions/{id}/reset` starts a new episode in it (a reset naming an
  unknown task is refused before the running episode is touched); `POST /sessions/{id}/step`
  ({"action": ...}) → observation, reward, terminated, truncated, info; `GET /sessions/{id}`
  → state; `GET /sessions/{id}/trajectory` → the episode's record; `DELETE /sessions/{id}`
  closes it and removes its container; `GET /sessions` lists them.
- `GET /tasks`, `GET /health`, `GET /schema`, `GET /metadata`.
- OpenEnv's conventions: `POST /reset`, `POST /step`, `GET /state` with OpenEnv's request and
  response shapes (observation / reward / done; session id and info inside the observation),
  one default session per HTTP client (cookie, or client address and credentials) so that the
  session id is optional; `WS /ws` speaking OpenEnv's message protocol (reset / step / state /
  close → observation / state / error, OpenEnv's error codes; plus our `trajectory` message →
  `trajectory`), one session per connection,
  every message answered within `reply_within` seconds (longer work goes on, and the next step
  message collects it); `POST /mcp` (JSON-RPC: initialize, ping, tools/list). The README says
  exactly what is and is not compatible.

Security: the server drives a Docker engine, so it binds to 127.0.0.1 unless told otherwise,
refuses to bind elsewhere without a bearer token, caps concurrent sessions, closes sessions
idle longer than `idle_timeout`, and validates every request: a bad request is a 4xx with a
one-line message (`{"error": code, "detail": message}`) and never leaves a container behind.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

try:
    import uvicorn
    from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket, WebSocketDisconnect
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        f"the swe-env server needs the `server` extra ({exc.name} is missing): pip install 'swe-env[server]'"
    ) from None

from . import __version__, engine, tools
from .env import EnvConfig, SWEEnv, unknown_task_message
from .errors import is_infrastructure
from .task import Task, load_tasks

T = TypeVar("T")

LOOPBACK_NAMES = ("localhost",)
SERVER_ONLY_OPTIONS = ("trajectory_path",)
"""EnvConfig fields a client may not set: they name paths on the server's machine."""
ONE_CONTAINER_OPTIONS = ("warm_pool",)
"""EnvConfig fields nobody may set above 0 on a server: a session holds one container at a time (what
`max_sessions` bounds), and a per-session warm pool would keep more, one set per task it resets to."""
ENDED_MEMORY = 1000
"""How many ended sessions the server remembers, to say why an id is unknown."""
DEFAULT_REPLY_WITHIN = 45.0
"""Seconds within which /ws answers a message; OpenEnv's clients wait 60 s (`message_timeout_s`) by default."""
SESSION_COOKIE = "swe_env_session"
"""The cookie naming an HTTP client's default session on OpenEnv's `/reset`, `/step` and `/state`."""
WAIT_TOOL = "wait"
"""The action `{"tool": "wait"}`: on /ws, wait for the call still running (it is never sent to the env)."""


class ServerConfigError(ValueError):
    """The server cannot start with these settings (the message says which and why)."""


class ServerConfig(BaseModel):
    """Settings of `swe-env serve` (and of `create_app`)."""

    model_config = ConfigDict(extra="forbid")

    tasks: str = "tasks"
    """A task file, a task folder, or a folder of task folders."""
    host: str = "127.0.0.1"
    """Address to bind. Anything but a loopback address requires `token`."""
    port: int = Field(default=8000, ge=0, le=65535)
    """TCP port to listen on."""
    token: str | None = None
    """Bearer token every request must carry (`Authorization: Bearer <token>`); `/health` is open."""
    max_sessions: int = Field(default=64, ge=1)
    """Sessions (each holding at most one container) open at once; more get HTTP 429."""
    idle_timeout: float = Field(default=600.0, gt=0)
    """Seconds without a request after which a session is closed and its container removed."""
    env_options: dict[str, Any] = Field(default_factory=dict)
    """Defaults for every session's EnvConfig (clients may override all but trajectory_path)."""
    log_level: str = "info"
    """uvicorn's log level (critical, error, warning, info, debug, trace)."""
    reply_within: float | None = Field(default=DEFAULT_REPLY_WITHIN, gt=0)
    """Seconds within which `/ws` answers each message: a reset or step still running then goes on, the
    reply is a `pending` observation, and the next step message collects the result. None: no limit.
    A connection sets its own with the reset field `reply_within_s` (below its client's message timeout)."""

    def check(self) -> "ServerConfig":
        """Refuse settings that would expose the Docker engine; raises ServerConfigError."""
        if not is_loopback(self.host) and not self.token:
            raise ServerConfigError(
                f"refusing to bind to {self.host}: the server controls a Docker engine, so any address but "
                "127.0.0.1 needs a bearer token (--token, or the SWE_ENV_TOKEN environment variable)"
            )
        if self.token is not None and len(self.token) < 8:
            raise ServerConfigError("the token must be at least 8 characters long")
        try:
            EnvConfig(**self.env_options)
        except ValidationError as exc:
            raise ServerConfigError(f"invalid env options: {_validation_text(exc)}") from None
        pooled = [key for key in ONE_CONTAINER_OPTIONS if self.env_options.get(key)]
        if pooled:
            raise ServerConfigError(f"env option {pooled[0]} is not offered by the server: {_ONE_CONTAINER_WHY}")
        return self


_ONE_CONTAINER_WHY = ("each session holds one container at a time, which is what max_sessions bounds; "
                      "a warm pool would keep more per session (one per task it resets to)")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- request and response models


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResetBody(_Body):
    """Start a new episode. Every field is optional."""

    seed: int | None = Field(default=None, ge=0)
    """Seeds the env's task choice (as `env.reset(seed=...)`)."""
    task_id: str | None = None
    """The task to run; otherwise one is drawn with the env's random generator."""
    action_format: Literal["dict", "cwm", "openai"] | None = None
    """Format the first observation asks the agent to use (every format is accepted)."""
    episode_id: str | None = Field(default=None, max_length=255)
    """Accepted for OpenEnv compatibility and ignored: the env names its episodes (info["episode_id"])."""
    episode_index: int | None = Field(default=None, ge=0)
    """Recorded in the episode's trajectory (a rollout's episode index: the resume key with agent, model, task)."""
    model: str | None = Field(default=None, max_length=255)
    """Recorded in the episode's trajectory (the model the agent runs)."""

    def reset_kwargs(self) -> dict[str, Any]:
        fields = (("task_id", self.task_id), ("action_format", self.action_format),
                  ("episode_index", self.episode_index), ("model", self.model))
        return {"seed": self.seed, "options": {key: value for key, value in fields if value is not None}}


class CreateSessionBody(ResetBody):
    """`POST /sessions`: the first episode's reset fields plus the session's env options."""

    config: dict[str, Any] = Field(default_factory=dict)
    """EnvConfig fields for this session (max_steps, reward_mode, tools, ...), over the server's defaults."""


class _Lenient(BaseModel):
    """OpenEnv's request models allow extra fields (its server drops what the env does not take):
    here they are ignored too, and the reply's `observation.warnings` names them."""

    model_config = ConfigDict(extra="allow")

    def ignored_fields(self) -> list[str]:
        return sorted(self.model_extra or {})


class OpenEnvResetBody(_Lenient, CreateSessionBody):
    """`POST /reset`: OpenEnv's ResetRequest; resets the caller's session (named by `session_id`, the
    session cookie, or the caller's default session), or opens one."""

    model_config = ConfigDict(extra="allow")

    session_id: str | None = None


class WsResetBody(_Lenient, CreateSessionBody):
    """The data of a WebSocket `reset` message: OpenEnv's ResetRequest plus this connection's settings."""

    model_config = ConfigDict(extra="allow")

    reply_within_s: float | None = Field(default=None, gt=0)
    """Answer every message of this connection within this many seconds (set it below the client's
    message timeout); longer work replies `pending` and goes on. Kept for the connection."""


class StepBody(_Body):
    """`POST /sessions/{id}/step`."""

    action: Any = Field(...)
    """A tool call in any accepted format: a dict, a JSON string, an OpenAI function call, a ```bash block."""
    agent_seconds: float | None = Field(default=None, ge=0)
    """How long the agent took to choose this action (recorded in the trajectory)."""


class OpenEnvStepBody(_Lenient, StepBody):
    """`POST /step`: OpenEnv's StepRequest, optionally naming its session (else the cookie's or the caller's default)."""

    model_config = ConfigDict(extra="allow")

    session_id: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    """Accepted for OpenEnv compatibility and ignored: a bash action's own `timeout` limits it."""
    request_id: str | None = Field(default=None, max_length=255)
    """Accepted for OpenEnv compatibility and ignored."""


class Observation(BaseModel):
    """The `observation` object of OpenEnv-shaped results (`/reset`, `/step`, `/ws`).

    The result itself is `{"observation", "reward", "done"}`, the fields both OpenEnv 0.3 (whose
    response models forbid any other) and 0.10 accept; what else a client needs is in here.
    """

    text: str
    """What the agent sees: the problem statement and tools on reset, tool output after."""
    terminated: bool = False
    """The episode ended by submission (gymnasium's `terminated`)."""
    truncated: bool = False
    """The episode ended by a budget or a dead container (gymnasium's `truncated`)."""
    session_id: str | None = None
    """The session this result belongs to (pass it as `session_id` to address it explicitly)."""
    info: dict[str, Any] = Field(default_factory=dict)
    """gymnasium's `info` (episode id, task, container, and after the last step the grading report)."""
    pending: bool = False
    """Only on /ws: the call is still running on the server; send `{"tool": "wait"}` steps until a result comes."""
    warnings: list[str] = Field(default_factory=list)
    """What the server ignored in the request (unknown fields, an action sent while a call was running)."""


class SessionState(BaseModel):
    """What `GET /sessions/{id}`, `GET /state` and the WebSocket `state` message return."""

    session_id: str | None = None
    """None from `GET /state` when the caller has no session yet."""
    episode_id: str | None = None
    """The current episode (OpenEnv's State field)."""
    step_count: int = 0
    """Steps taken in the current episode (OpenEnv's State field)."""
    task_id: str | None = None
    container_id: str | None = None
    done: bool = False
    """The current episode has ended (terminated or truncated); the next call should be a reset."""
    elapsed: float = 0.0
    """Seconds since the current episode's reset."""
    idle: float = 0.0
    """Seconds since the session's last request finished."""
    transport: Literal["http", "ws"] = "http"
    busy: bool = False
    """A reset or step of this session is running now."""


# ---------------------------------------------------------------- errors


class ApiError(Exception):
    """A request the server turns down: an HTTP status, a short code and a one-line message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.message}


def as_api_error(exc: BaseException) -> ApiError:
    """The status a failure of an env call deserves: 4xx for the caller's mistakes, 503 for infrastructure."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, KeyError):
        return ApiError(404, "unknown_task", str(exc.args[0]) if exc.args else "unknown task")
    if isinstance(exc, ValidationError):
        return ApiError(422, "invalid_request", _validation_text(exc))
    if isinstance(exc, ValueError):
        return ApiError(422, "invalid_request", str(exc))
    if is_infrastructure(exc):
        return ApiError(503, "infrastructure", f"infrastructure failure ({type(exc).__name__}): {exc}")
    return ApiError(500, "internal", f"internal error ({type(exc).__name__}): {exc}")


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


# ---------------------------------------------------------------- sessions


class Session:
    """One client's env. All env calls of a session run one at a time (`_env_lock`) on worker threads."""

    def __init__(self, session_id: str, transport: Literal["http", "ws"], options: dict[str, Any]):
        self.id = session_id
        self.transport = transport
        self.options = options
        self.env: SWEEnv | None = None
        self._env_lock = threading.Lock()
        self.in_flight = 0
        self.last_used = time.monotonic()
        self.episode_id: str | None = None
        self.task_id: str | None = None
        self.container_id: str | None = None
        self.steps = 0
        self.done = False
        self.closed = False
        self.claimed = False
        """Addressed by its id or cookie on OpenEnv's HTTP routes (so not a bare client's default)."""
        self.started = time.monotonic()

    def run(self, fn: Callable[[SWEEnv], T], tasks: list[Task]) -> T:
        """Call fn with this session's env (created on first use), holding the session's lock."""
        with self._env_lock:
            if self.closed:
                raise ApiError(404, "unknown_session", f"session {self.id!r} was closed while this request waited")
            try:
                if self.env is None:
                    self.env = SWEEnv(tasks=tasks, **self.options)
                return fn(self.env)
            finally:
                self.last_used = time.monotonic()

    def close(self) -> None:
        with self._env_lock:
            self.closed = True
            env, self.env = self.env, None
            if env is not None:
                env.close()

    def state(self) -> SessionState:
        return SessionState(
            session_id=self.id, episode_id=self.episode_id, step_count=self.steps, task_id=self.task_id,
            container_id=self.container_id, done=self.done, elapsed=round(time.monotonic() - self.started, 3),
            idle=round(0.0 if self.in_flight else time.monotonic() - self.last_used, 3), transport=self.transport,
            busy=self.in_flight > 0,
        )


class SessionManager:
    """Opens, runs, reaps and closes sessions; the only owner of envs in the server."""

    def __init__(self, config: ServerConfig, tasks: list[Task]):
        self.config = config
        self.tasks = tasks
        self._task_ids = {task.id for task in tasks}
        self.sessions: dict[str, Session] = {}
        self.defaults: dict[str, str] = {}
        """HTTP caller (address and credentials) → its default session on OpenEnv's routes."""
        self._ended: OrderedDict[str, str] = OrderedDict()
        # Env calls block (docker exec, container starts, grading): each gets a worker thread.
        self._pool = ThreadPoolExecutor(max_workers=config.max_sessions + 8, thread_name_prefix="swe-env-session")
        self._reaper: asyncio.Task | None = None

    # -- lifecycle

    def options(self, config: dict[str, Any]) -> dict[str, Any]:
        """A client's `config` over the server's env options, checked; raises ApiError 422."""
        bad = [key for key in SERVER_ONLY_OPTIONS if key in config]
        if bad:
            raise ApiError(422, "invalid_request",
                           f"config.{bad[0]} is a server setting (swe-env serve --{bad[0].replace('_', '-')}), "
                           "not a client option")
        pooled = [key for key in ONE_CONTAINER_OPTIONS if config.get(key)]
        if pooled:
            raise ApiError(422, "invalid_request",
                           f"config.{pooled[0]} is not offered by the server: {_ONE_CONTAINER_WHY}")
        options = {**self.config.env_options, **config}
        try:
            EnvConfig(**options)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", f"config: {_validation_text(exc)}") from None
        return options

    def check_task(self, task_id: str | None, running: bool = False) -> None:
        """Refuse a reset naming a task the server does not have, before any env call (ApiError 404)."""
        if task_id is not None and task_id not in self._task_ids:
            note = "; the session's episode goes on" if running else ""
            raise ApiError(404, "unknown_task", unknown_task_message(task_id, self._task_ids) + note)

    def open(self, transport: Literal["http", "ws"], config: dict[str, Any]) -> Session:
        """Reserve a slot for a new session (no container yet); raises ApiError 422 / 429."""
        options = self.options(config)
        if len(self.sessions) >= self.config.max_sessions:
            raise ApiError(429, "capacity", f"the server is full: {len(self.sessions)} of {self.config.max_sessions} "
                                            "sessions are open; close one (DELETE /sessions/{id}) or try later")
        session = Session(uuid.uuid4().hex, transport, options)
        self.sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            why = self._ended.get(session_id, "never existed")
            raise ApiError(404, "unknown_session", f"unknown session {session_id!r} ({why})")
        return session

    def resolve(self, caller: str, session_id: str | None, cookie: str | None,
                for_reset: bool = False) -> Session | None:
        """The session an OpenEnv HTTP request means: named by id (404 if unknown), else by the
        cookie, else the caller's default session; None when there is none.

        A session once addressed by id or cookie is its client's own: a reset that names
        neither (a client without cookies, or a new one) then gets a new session, not that one.
        """
        if session_id is not None:
            session = self.get(session_id)
            session.claimed = True
            return session
        if cookie is not None and cookie in self.sessions:
            session = self.sessions[cookie]
            session.claimed = True
            return session
        default = self.sessions.get(self.defaults.get(caller, ""))
        if default is not None and for_reset and default.claimed:
            return None
        return default

    async def close(self, session_id: str, why: str) -> bool:
        """Forget the session and close its env (waiting for a running call); False if it was gone."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        for caller in [caller for caller, default in self.defaults.items() if default == session_id]:
            del self.defaults[caller]
        self._remember(session_id, why)
        await asyncio.get_running_loop().run_in_executor(self._pool, session.close)
        return True

    async def close_all(self, why: str) -> None:
        await asyncio.gather(*(self.close(session_id, why) for session_id in list(self.sessions)),
                             return_exceptions=True)

    def _remember(self, session_id: str, why: str) -> None:
        self._ended[session_id] = why
        while len(self._ended) > ENDED_MEMORY:
            self._ended.popitem(last=False)

    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        await self.close_all("the server shut down")
        self._pool.shutdown(wait=False)

    async def reap(self) -> list[str]:
        """Close sessions idle for longer than idle_timeout (never one with a call in flight)."""
        now = time.monotonic()
        idle = [session.id for session in self.sessions.values()
                if session.in_flight == 0 and now - session.last_used > self.config.idle_timeout]
        why = f"closed after {self.config.idle_timeout:g} s without a request"
        await asyncio.gather(*(self.close(session_id, why) for session_id in idle), return_exceptions=True)
        return idle

    async def _reap_forever(self) -> None:
        interval = min(max(self.config.idle_timeout / 4, 0.2), 30.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
            except Exception:  # noqa: BLE001 - the reaper must outlive any one failure
                pass

    # -- env calls

    async def call(self, session: Session, fn: Callable[[SWEEnv], T]) -> T:
        """Run fn(env) on a worker thread; env failures become ApiErrors."""
        session.in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, session.run, fn, self.tasks)
        except ApiError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status and a message
            raise as_api_error(exc) from None
        finally:
            session.in_flight -= 1

    async def reset(self, session: Session, body: ResetBody) -> tuple[str, dict]:
        """A new episode in the session. An unknown task is refused first (the running episode goes
        on); a reset that fails later (an image build, a container start) has ended the running
        episode, and the session's state says so (done, no container)."""
        self.check_task(body.task_id, running=session.episode_id is not None)
        kwargs = body.reset_kwargs()

        def reset(env: SWEEnv) -> tuple[str, dict]:
            try:
                return env.reset(**kwargs)
            except BaseException:
                if env.sandbox is None:  # no container any more: the previous episode is over
                    session.done, session.container_id = True, None
                raise

        observation, info = await self.call(session, reset)
        session.episode_id, session.task_id = info.get("episode_id"), info.get("task_id")
        session.container_id = info.get("container_id")
        session.steps, session.done, session.started = 0, False, time.monotonic()
        info["session_id"] = session.id
        return observation, info

    async def create(self, transport: Literal["http", "ws"], body: CreateSessionBody) -> tuple[Session, str, dict]:
        """Open a session and reset its first episode; a failed reset leaves no session and no container."""
        self.check_task(body.task_id)
        session = self.open(transport, body.config)
        try:
            observation, info = await self.reset(session, body)
        except BaseException:
            # Also on cancellation (the client went away): close waits for the reset thread to finish.
            await asyncio.shield(self.close(session.id, "its first reset failed"))
            raise
        return session, observation, info

    async def step(self, session: Session, body: StepBody) -> tuple[str, float, bool, bool, dict]:
        if session.episode_id is None:
            raise ApiError(409, "no_episode", "call reset before step")

        def step(env: SWEEnv):
            if body.agent_seconds is not None:
                env.note_agent_seconds(body.agent_seconds)
            return env.step(body.action)

        observation, reward, terminated, truncated, info = await self.call(session, step)
        if not session.done:
            session.steps += 1
        session.done = session.done or terminated or truncated
        return observation, reward, terminated, truncated, info

    async def trajectory(self, session: Session) -> dict[str, Any]:
        """The record of the session's current (or last) episode, as the env keeps it (`SWEEnv.get_trajectory`)."""
        record = await self.call(session, lambda env: env.get_trajectory())
        if record is None:
            raise ApiError(409, "no_episode", "no episode yet: reset first")
        return record.model_dump(mode="json")


# ---------------------------------------------------------------- the app


def _json(content: Any, status: int = 200) -> Response:
    return Response(json.dumps(content, default=str), status_code=status, media_type="application/json")


def _openenv_result(session: Session | None, observation: str, reward: float | None, terminated: bool,
                    truncated: bool, info: dict, warnings: list[str] | None = None,
                    pending: bool = False) -> dict[str, Any]:
    """OpenEnv's result: exactly `observation`, `reward`, `done` (OpenEnv 0.3's models forbid more)."""
    shown = Observation(text=observation, terminated=terminated, truncated=truncated,
                        session_id=session.id if session is not None else None, pending=pending,
                        warnings=warnings or []).model_dump()
    shown["info"] = info  # as it is (written out with default=str, like every reply)
    return {
        "observation": shown,
        "reward": reward,
        "done": terminated or truncated,
    }


def _ignored(body: BaseModel, what: str) -> list[str]:
    names = body.ignored_fields() if isinstance(body, _Lenient) else []
    return [f"unknown {what} field{'s' if len(names) > 1 else ''} ignored: {', '.join(names)}"] if names else []


def _caller(request: Request) -> str:
    """Who an HTTP request comes from, for its default session: the client's address and credentials."""
    host = request.client.host if request.client is not None else "-"
    credentials = hashlib.sha256((request.headers.get("authorization") or "").encode()).hexdigest()[:16]
    return f"{host}|{credentials}"


def _is_wait(action: Any) -> bool:
    return isinstance(action, dict) and action.get("tool") == WAIT_TOOL and not set(action) - {"tool", "metadata"}


def action_schema(names: list[str] | None = None) -> dict[str, Any]:
    """JSON schema of the actions: a tool-call object, or text the parser understands."""
    calls = []
    for schema in tools.schemas(names or list(tools.TOOLS)):
        function = schema["function"]
        parameters = function["parameters"]
        calls.append({
            "type": "object",
            "title": function["name"],
            "description": function["description"],
            "properties": {"tool": {"const": function["name"]}, **parameters.get("properties", {})},
            "required": ["tool", *parameters.get("required", [])],
            "additionalProperties": False,
            **({"$defs": parameters["$defs"]} if "$defs" in parameters else {}),
        })
    text = {"type": "string", "description": "A JSON tool call, a ```bash block, or CWM <tool: NAME> blocks."}
    openai_call = {"type": "object", "description": "An OpenAI function call or an assistant message with tool_calls."}
    return {"title": "Action", "anyOf": [*calls, text, openai_call]}


MCP_PROTOCOL_VERSION = "2025-06-18"


def _mcp_reply(raw: bytes) -> dict[str, Any]:
    """`POST /mcp`: JSON-RPC 2.0 as MCP speaks it, for discovery (initialize, ping, tools/list).

    tools/call is refused with a JSON-RPC error: a tool call belongs to an episode, which lives
    in a session (`/ws`, `/reset` + `/step`, `/sessions`).
    """
    def error(request_id: Any, code: int, message: str) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}

    try:
        request = json.loads(raw or b"")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return error(None, -32700, f"Parse error: {exc}")
    request_id = request.get("id") if isinstance(request, dict) else None
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        return error(request_id, -32600, 'Invalid Request: expected {"jsonrpc": "2.0", "method": ..., "id": ...}')
    method = request["method"]
    if method == "initialize":
        result: dict[str, Any] = {"protocolVersion": MCP_PROTOCOL_VERSION, "capabilities": {"tools": {"listChanged": False}},
                                  "serverInfo": {"name": "swe_env", "version": __version__}}
    elif method == "ping" or method.startswith("notifications/"):
        result = {}
    elif method == "tools/list":
        result = {"tools": [{"name": schema["function"]["name"], "description": schema["function"]["description"],
                             "inputSchema": schema["function"]["parameters"]} for schema in tools.schemas()]}
    elif method == "tools/call":
        return error(request_id, -32000, "tools/call is not offered over /mcp: a tool call belongs to an episode; "
                                         "open one with the WebSocket /ws, POST /reset + /step, or POST /sessions")
    else:
        return error(request_id, -32601, f"Method not found: {method}")
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _bearer_error(request_headers: Any, token: str | None) -> ApiError | None:
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


def create_app(config: ServerConfig) -> FastAPI:
    """The FastAPI app for `config` (tasks are loaded now, so a bad task folder fails here)."""
    config.check()
    tasks = load_tasks(config.tasks)
    manager = SessionManager(config, tasks)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        manager.start()
        try:
            yield
        finally:
            await manager.stop()

    app = FastAPI(title="swe-env", version=__version__, lifespan=lifespan,
                  description="A Dockerized gym environment for software-engineering agents, as a service.")
    app.state.manager = manager

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = _json(exc.body(), exc.status)
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
            message = error.get("msg", "invalid")
            if error.get("type") == "json_invalid":
                where = "body"
            if where == "body" and error.get("type") in ("model_attributes_type", "dict_type", "json_invalid"):
                message += " (send a JSON object with Content-Type: application/json)"
            parts.append(f"{where}: {message}")
        return _json({"error": "invalid_request", "detail": "; ".join(parts) or "invalid request"}, 422)

    async def authenticate(request: Request) -> None:
        problem = _bearer_error(request.headers, config.token)
        if problem is not None:
            raise problem

    # Everything but /health (and /ws, which checks the token itself) is behind the token.
    api = APIRouter(dependencies=[Depends(authenticate)])

    @app.get("/health")
    async def health() -> dict:
        return {"status": "healthy"}

    # -- information

    @api.get("/metadata")
    async def metadata() -> dict:
        return {"name": "swe_env", "version": __version__,
                "description": "Fix a repository at a commit so that hidden tests pass (bash/edit/view/create/submit).",
                "documentation_url": None, "readme_content": None, "author": None}

    @api.get("/tasks")
    async def list_tasks() -> list[dict]:
        return [{"id": task.id, "repo": task.repo, "base_commit": task.base_commit,
                 "workdir": task.environment.workdir, "max_steps": task.limits.max_steps} for task in tasks]

    @api.get("/schema")
    async def schema() -> dict:
        return {"action": action_schema(), "observation": Observation.model_json_schema(),
                "state": SessionState.model_json_schema()}

    # -- sessions (the gym-shaped API)

    @api.post("/sessions", status_code=201)
    async def create_session(body: CreateSessionBody) -> Response:
        session, observation, info = await manager.create("http", body)
        return _json({"session_id": session.id, "observation": observation, "info": info}, 201)

    @api.get("/sessions")
    async def list_sessions() -> dict:
        return {"max_sessions": config.max_sessions, "idle_timeout": config.idle_timeout,
                "sessions": [session.state().model_dump() for session in manager.sessions.values()]}

    @api.get("/sessions/{session_id}")
    async def session_state(session_id: str) -> dict:
        return manager.get(session_id).state().model_dump()

    @api.post("/sessions/{session_id}/reset")
    async def reset_session(session_id: str, body: ResetBody) -> Response:
        session = manager.get(session_id)
        observation, info = await manager.reset(session, body)
        return _json({"session_id": session.id, "observation": observation, "info": info})

    @api.post("/sessions/{session_id}/step")
    async def step_session(session_id: str, body: StepBody) -> Response:
        observation, reward, terminated, truncated, info = await manager.step(manager.get(session_id), body)
        return _json({"observation": observation, "reward": reward, "terminated": terminated,
                      "truncated": truncated, "info": info})

    @api.get("/sessions/{session_id}/trajectory")
    async def session_trajectory(session_id: str) -> Response:
        return _json(await manager.trajectory(manager.get(session_id)))

    @api.delete("/sessions/{session_id}")
    async def delete_session(session_id: str) -> dict:
        manager.get(session_id)
        await manager.close(session_id, "closed by its client")
        return {"session_id": session_id, "closed": True}

    # -- OpenEnv's HTTP routes

    @api.post("/reset")
    async def openenv_reset(request: Request, body: OpenEnvResetBody | None = None) -> Response:
        body = body or OpenEnvResetBody()
        warnings = _ignored(body, "reset")
        caller = _caller(request)
        session = manager.resolve(caller, body.session_id, request.cookies.get(SESSION_COOKIE), for_reset=True)
        # Refused requests leave the caller's session as it was: checked before it is reset or replaced.
        manager.check_task(body.task_id, running=session is not None and session.episode_id is not None)
        if session is not None and body.config:
            if body.session_id is not None:
                raise ApiError(422, "invalid_request", "config can only be given when a session is opened")
            manager.options(body.config)
            # The caller's default session with other options: it is replaced by a new one.
            await manager.close(session.id, "replaced by a reset with a new config")
            session = None
        if session is not None:
            observation, info = await manager.reset(session, body)
        else:
            session, observation, info = await manager.create("http", body)
            manager.defaults[caller] = session.id
        response = _json(_openenv_result(session, observation, None, False, False, info, warnings))
        response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="strict")
        return response

    @api.post("/step")
    async def openenv_step(request: Request, body: OpenEnvStepBody) -> Response:
        session = manager.resolve(_caller(request), body.session_id, request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise ApiError(409, "no_episode", "no session for this client: POST /reset first (or pass session_id)")
        observation, reward, terminated, truncated, info = await manager.step(session, body)
        return _json(_openenv_result(session, observation, reward, terminated, truncated, info,
                                     _ignored(body, "step")))

    @api.get("/state")
    async def openenv_state(request: Request, session_id: str | None = None) -> dict:
        session = manager.resolve(_caller(request), session_id, request.cookies.get(SESSION_COOKIE))
        # No session yet: OpenEnv's answer for a fresh env (no episode, no steps).
        return (session.state() if session is not None else SessionState()).model_dump()

    @api.post("/mcp")
    async def mcp(request: Request) -> dict:
        return _mcp_reply(await request.body())

    app.include_router(api)

    # -- the WebSocket (OpenEnv's message protocol), one session per connection

    @app.websocket("/ws")
    async def websocket(socket: WebSocket) -> None:
        problem = _bearer_error(socket.headers, config.token)
        if problem is not None:
            try:  # an HTTP 401/403 with the JSON message, where the ASGI server can send one
                await socket.send_denial_response(_json(problem.body(), problem.status))
            except RuntimeError:
                await socket.accept()
                await _ws_error(socket, problem)
                await socket.close(code=1008)
            return
        await socket.accept()
        connection = _WsConnection(socket, manager, config.reply_within)
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

    return app


_WS_CODES_BY_ERROR = {"unknown_session": "SESSION_ERROR", "no_episode": "SESSION_ERROR",
                      "capacity": "CAPACITY_REACHED", "unknown_task": "VALIDATION_ERROR"}
_WS_CODES_BY_STATUS = {400: "VALIDATION_ERROR", 401: "SESSION_ERROR", 403: "SESSION_ERROR", 404: "VALIDATION_ERROR",
                       409: "SESSION_ERROR", 422: "VALIDATION_ERROR", 429: "CAPACITY_REACHED"}
"""OpenEnv's WSErrorCode values (anything else: EXECUTION_ERROR); our own code travels as `error`."""
_WS_OWN_CODES = ("INVALID_JSON", "UNKNOWN_TYPE", "VALIDATION_ERROR", "EXECUTION_ERROR", "CAPACITY_REACHED",
                 "FACTORY_ERROR", "SESSION_ERROR")


async def _ws_send(socket: WebSocket, kind: str, data: dict[str, Any]) -> None:
    await socket.send_text(json.dumps({"type": kind, "data": data}, default=str))


def _ws_error_data(error: ApiError) -> dict[str, Any]:
    code = error.code if error.code in _WS_OWN_CODES else _WS_CODES_BY_ERROR.get(
        error.code, _WS_CODES_BY_STATUS.get(error.status, "EXECUTION_ERROR"))
    return {"code": code, "error": error.code, "status": error.status, "message": error.message}


async def _ws_error(socket: WebSocket, error: ApiError) -> None:
    await _ws_send(socket, "error", _ws_error_data(error))


class _WsConnection:
    """One WebSocket: its session, and the one env call that may still be running.

    Every message is answered within `reply_within` seconds. A reset or step that takes
    longer keeps running; the reply is an observation with `pending: true`, and the next step
    message (`{"tool": "wait"}`; any other action is not run, and a warning says so) waits up
    to `reply_within` again for it and answers with its result or another pending reply. A
    reset sent meanwhile runs after it (its result is dropped). So a stock OpenEnv client,
    which gives up on a reply after its message timeout, never gets out of step with the server.
    """

    def __init__(self, socket: WebSocket, manager: SessionManager, reply_within: float | None):
        self.socket, self.manager, self.reply_within = socket, manager, reply_within
        self.session: Session | None = None
        self.running: asyncio.Task | None = None
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
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                await _ws_send(self.socket, "error", {"code": "INVALID_JSON", "error": "invalid_json", "status": 400,
                                                      "message": f"invalid JSON: {exc}"})
                continue
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "close":
                return
            try:
                if self.session is not None and self.session.id not in self.manager.sessions:
                    self.manager.get(self.session.id)  # raises, saying why the session ended (e.g. reaped)
                if kind == "reset":
                    await self._reset(message.get("data") or {})
                elif kind == "step":
                    await self._step(message.get("data"))
                elif kind == "state":
                    await self._state()
                elif kind == "trajectory":
                    await self._trajectory()
                else:
                    raise ApiError(400, "UNKNOWN_TYPE",
                                   f"unknown message type {kind!r}; expected reset, step, state, trajectory or close")
            except ValidationError as exc:
                await _ws_error(self.socket, ApiError(422, "invalid_request", _validation_text(exc)))
            except ApiError as exc:
                await _ws_error(self.socket, exc)
                if exc.code == "unknown_session":
                    return

    async def _reset(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_request", "a reset message's data must be an object")
        body = WsResetBody.model_validate(data)
        if self.session is not None and body.config:
            raise ApiError(422, "invalid_request", "config can only be given in the first reset of a connection")
        # An unknown task is refused now, before it could wait for (or touch) the running episode.
        self.manager.check_task(body.task_id, running=self.session is not None and self.session.episode_id is not None)
        if body.reply_within_s is not None:
            self.reply_within = body.reply_within_s
        warnings = _ignored(body, "reset")
        before = self.running

        async def reset() -> tuple[str, dict[str, Any]]:
            if before is not None:  # a call still running: this reset comes after it
                await asyncio.wait({before})
            if self.session is None:
                self.session, observation, info = await self.manager.create("ws", body)
            else:
                observation, info = await self.manager.reset(self.session, body)
            return "observation", _openenv_result(self.session, observation, None, False, False, info, warnings)

        await self._answer(asyncio.ensure_future(reset()), "reset")

    async def _step(self, data: Any) -> None:
        if self.running is not None:
            # A call is still running: this message waits for it; its own action is not run.
            ignored = [] if isinstance(data, dict) and _is_wait(data.get("action", data)) else [
                "this action was not run: it arrived while the previous call was still running "
                f"(send {{\"tool\": \"{WAIT_TOOL}\"}} to wait for it)"]
            await self._answer(self.running, self.running_kind, ignored)
            return
        if self.session is None:
            raise ApiError(409, "no_episode", "send a reset message before step")
        body = _ws_step_body(data)
        session = self.session
        if _is_wait(body.action):
            await _ws_send(self.socket, "observation", _openenv_result(
                session, "Nothing to wait for: no call is running.", 0.0, False, False, {},
                ["wait is only for a call still running; it is not a step of the episode"]))
            return

        async def step() -> tuple[str, dict[str, Any]]:
            observation, reward, terminated, truncated, info = await self.manager.step(session, body)
            return "observation", _openenv_result(session, observation, reward, terminated, truncated, info)

        await self._answer(asyncio.ensure_future(step()), "step")

    async def _state(self) -> None:
        if self.session is None:
            if self.running is None:
                raise ApiError(409, "no_episode", "send a reset message first")
            state = SessionState(transport="ws", busy=True)  # the first reset is still starting the session
        else:
            state = self.manager.get(self.session.id).state()
        await _ws_send(self.socket, "state", state.model_dump())

    async def _trajectory(self) -> None:
        """Our message `{"type": "trajectory"}`: the episode's record, `{"type": "trajectory", "data": {...}}`."""
        if self.session is None:
            raise ApiError(409, "no_episode", "send a reset message first")
        if self.running is not None:
            raise ApiError(409, "busy", f"the {self.running_kind} is still running: send {{\"tool\": \"{WAIT_TOOL}\"}} "
                                        "steps until its result comes, then ask again")
        await _ws_send(self.socket, "trajectory", await self.manager.trajectory(self.session))

    async def _answer(self, call: asyncio.Future, kind: str, warnings: list[str] | None = None) -> None:
        """Send call's result if it ends within reply_within seconds, else a pending reply (it goes on)."""
        if call is not self.running:
            call.add_done_callback(_retrieve)
            self.running, self.running_kind, self.running_since = call, kind, time.monotonic()
        done, _ = await asyncio.wait({call}, timeout=self.reply_within)
        if not done:
            waited = time.monotonic() - self.running_since
            text = (f"[the {kind} is still running on the server ({waited:.0f} s so far). Send the step "
                    f"{{\"tool\": \"{WAIT_TOOL}\"}} to wait for its result; any other action is not run until it ends.]")
            await _ws_send(self.socket, "observation", _openenv_result(
                self.session, text, 0.0 if kind == "step" else None, False, False, {"pending": kind},
                warnings, pending=True))
            return
        self.running = None
        kind_sent, data = call.result()  # an ApiError or ValidationError is sent as an error by serve()
        if warnings:
            data["observation"]["warnings"] = [*data["observation"]["warnings"], *warnings]
        await _ws_send(self.socket, kind_sent, data)

    async def finish(self) -> None:
        if self.running is not None:
            await asyncio.wait({self.running})
        if self.session is not None:
            await self.manager.close(self.session.id, "its WebSocket closed")


def _retrieve(call: asyncio.Future) -> None:
    """Mark a call's failure as seen: the client may never collect it."""
    if not call.cancelled():
        call.exception()


def _ws_step_body(data: Any) -> StepBody:
    """A step message's data: `{"action": ...}`, or (OpenEnv style) the action object itself."""
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "a step message needs data: {\"action\": ...} or an action object")
    if "action" in data:
        return StepBody.model_validate(data)
    # OpenEnv's Action models always carry a `metadata` field; it is not a tool argument.
    return StepBody(action={key: value for key, value in data.items() if key != "metadata"})


def serve(config: ServerConfig) -> None:
    """Run the server until SIGINT/SIGTERM; on the way out every session's container is removed."""
    config.check()
    engine.client()  # fail now, with the engine's message, rather than on the first reset
    app = create_app(config)
    where = f"http://{config.host}:{config.port}"
    print(f"swe-env server on {where} ({len(app.state.manager.tasks)} tasks, max {config.max_sessions} sessions, "
          f"idle timeout {config.idle_timeout:g} s, token {'required' if config.token else 'not required'})",
          flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level,
                ws_max_size=64 * 1024 * 1024, timeout_graceful_shutdown=60)

