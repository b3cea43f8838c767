"""The env as a service: episodes as sessions over HTTP and WebSocket (FastAPI + uvicorn).

Each session owns one `SWEEnv` (so at most one container at a time). Routes:

- `POST /sessions` (seed / task_id / action_format, plus `config`: EnvConfig fields) → the
  session id and the first observation; `POST /sessions/{id}/reset` starts a new episode in
  it; `POST /sessions/{id}/step` ({"action": ...}) → observation, reward, terminated,
  truncated, info; `GET /sessions/{id}` → state; `DELETE /sessions/{id}` closes it and
  removes its container; `GET /sessions` lists them.
- `GET /tasks`, `GET /health`, `GET /schema`, `GET /metadata`.
- OpenEnv's conventions: `POST /reset`, `POST /step`, `GET /state` with OpenEnv's request and
  response shapes (observation / reward / done / metadata), and `WS /ws` speaking OpenEnv's
  message protocol (reset / step / state / close → observation / state / error), one session
  per connection. The README says exactly what is and is not compatible.

Security: the server drives a Docker engine, so it binds to 127.0.0.1 unless told otherwise,
refuses to bind elsewhere without a bearer token, caps concurrent sessions, closes sessions
idle longer than `idle_timeout`, and validates every request: a bad request is a 4xx with a
one-line message (`{"error": code, "detail": message}`) and never leaves a container behind.
"""

from __future__ import annotations

import asyncio
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

import docker.errors
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
from .env import EnvConfig, SWEEnv
from .images import ImageBuildError
from .repos import RepoError
from .sandbox import SandboxError
from .shell import ShellError
from .task import Task, load_tasks

T = TypeVar("T")

LOOPBACK_NAMES = ("localhost",)
SERVER_ONLY_OPTIONS = ("trajectory_path",)
"""EnvConfig fields a client may not set: they name paths on the server's machine."""
ENDED_MEMORY = 1000
"""How many ended sessions the server remembers, to say why an id is unknown."""


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
        return self


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

    def reset_kwargs(self) -> dict[str, Any]:
        options = {key: value for key, value in (("task_id", self.task_id), ("action_format", self.action_format))
                   if value is not None}
        return {"seed": self.seed, "options": options}


class CreateSessionBody(ResetBody):
    """`POST /sessions`: the first episode's reset fields plus the session's env options."""

    config: dict[str, Any] = Field(default_factory=dict)
    """EnvConfig fields for this session (max_steps, reward_mode, tools, ...), over the server's defaults."""


class OpenEnvResetBody(CreateSessionBody):
    """`POST /reset`: OpenEnv's ResetRequest; with `session_id`, resets that session instead of opening one."""

    session_id: str | None = None


class StepBody(_Body):
    """`POST /sessions/{id}/step`."""

    action: Any = Field(...)
    """A tool call in any accepted format: a dict, a JSON string, an OpenAI function call, a ```bash block."""
    agent_seconds: float | None = Field(default=None, ge=0)
    """How long the agent took to choose this action (recorded in the trajectory)."""


class OpenEnvStepBody(StepBody):
    """`POST /step`: OpenEnv's StepRequest plus the session it belongs to."""

    session_id: str
    timeout_s: float | None = Field(default=None, gt=0)
    """Accepted for OpenEnv compatibility and ignored: a bash action's own `timeout` limits it."""
    request_id: str | None = Field(default=None, max_length=255)
    """Accepted for OpenEnv compatibility and ignored."""


class Observation(BaseModel):
    """The `observation` object of OpenEnv-shaped results (`/reset`, `/step`, `/ws`)."""

    text: str
    """What the agent sees: the problem statement and tools on reset, tool output after."""
    terminated: bool = False
    """The episode ended by submission (gymnasium's `terminated`)."""
    truncated: bool = False
    """The episode ended by a budget or a dead container (gymnasium's `truncated`)."""


class SessionState(BaseModel):
    """What `GET /sessions/{id}`, `GET /state` and the WebSocket `state` message return."""

    session_id: str
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


# ---------------------------------------------------------------- errors


class ApiError(Exception):
    """A request the server turns down: an HTTP status, a short code and a one-line message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.message}


_INFRASTRUCTURE = (engine.EngineUnavailable, ImageBuildError, RepoError, SandboxError, ShellError,
                   docker.errors.DockerException, OSError)


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
    if isinstance(exc, _INFRASTRUCTURE):
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
        )


class SessionManager:
    """Opens, runs, reaps and closes sessions; the only owner of envs in the server."""

    def __init__(self, config: ServerConfig, tasks: list[Task]):
        self.config = config
        self.tasks = tasks
        self.sessions: dict[str, Session] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()
        # Env calls block (docker exec, container starts, grading): each gets a worker thread.
        self._pool = ThreadPoolExecutor(max_workers=config.max_sessions + 8, thread_name_prefix="swe-env-session")
        self._reaper: asyncio.Task | None = None

    # -- lifecycle

    def open(self, transport: Literal["http", "ws"], config: dict[str, Any]) -> Session:
        """Reserve a slot for a new session (no container yet); raises ApiError 422 / 429."""
        bad = [key for key in SERVER_ONLY_OPTIONS if key in config]
        if bad:
            raise ApiError(422, "invalid_request",
                           f"config.{bad[0]} is a server setting (swe-env serve --{bad[0].replace('_', '-')}), "
                           "not a client option")
        options = {**self.config.env_options, **config}
        try:
            EnvConfig(**options)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", f"config: {_validation_text(exc)}") from None
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

    async def close(self, session_id: str, why: str) -> bool:
        """Forget the session and close its env (waiting for a running call); False if it was gone."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
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
        kwargs = body.reset_kwargs()
        observation, info = await self.call(session, lambda env: env.reset(**kwargs))
        session.episode_id, session.task_id = info.get("episode_id"), info.get("task_id")
        session.container_id = info.get("container_id")
        session.steps, session.done, session.started = 0, False, time.monotonic()
        info["session_id"] = session.id
        return observation, info

    async def create(self, transport: Literal["http", "ws"], body: CreateSessionBody) -> tuple[Session, str, dict]:
        """Open a session and reset its first episode; a failed reset leaves no session and no container."""
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


# ---------------------------------------------------------------- the app


def _json(content: Any, status: int = 200) -> Response:
    return Response(json.dumps(content, default=str), status_code=status, media_type="application/json")


def _openenv_result(session: Session, observation: str, reward: float | None, terminated: bool, truncated: bool,
                    info: dict) -> dict[str, Any]:
    return {
        "observation": Observation(text=observation, terminated=terminated, truncated=truncated).model_dump(),
        "reward": reward,
        "done": terminated or truncated,
        "metadata": {"session_id": session.id, "info": info},
    }


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


def _bearer_error(request_headers: Any, token: str | None) -> ApiError | None:
    if not token:
        return None
    header = request_headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return ApiError(401, "unauthorized", "missing bearer token: send the header 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(value.strip().encode(), token.encode()):
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

    @api.delete("/sessions/{session_id}")
    async def delete_session(session_id: str) -> dict:
        manager.get(session_id)
        await manager.close(session_id, "closed by its client")
        return {"session_id": session_id, "closed": True}

    # -- OpenEnv's HTTP routes

    @api.post("/reset")
    async def openenv_reset(body: OpenEnvResetBody | None = None) -> Response:
        body = body or OpenEnvResetBody()
        if body.session_id is not None:
            if body.config:
                raise ApiError(422, "invalid_request", "config can only be given when a session is opened")
            session = manager.get(body.session_id)
            observation, info = await manager.reset(session, body)
        else:
            session, observation, info = await manager.create("http", body)
        return _json(_openenv_result(session, observation, None, False, False, info))

    @api.post("/step")
    async def openenv_step(body: OpenEnvStepBody) -> Response:
        session = manager.get(body.session_id)
        observation, reward, terminated, truncated, info = await manager.step(session, body)
        return _json(_openenv_result(session, observation, reward, terminated, truncated, info))

    @api.get("/state")
    async def openenv_state(session_id: str) -> dict:
        return manager.get(session_id).state().model_dump()

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
        session: Session | None = None
        try:
            while True:
                received = await socket.receive()
                if received["type"] == "websocket.disconnect":
                    break
                try:
                    raw = received.get("text")
                    message = json.loads(raw if raw is not None else received.get("bytes") or b"")
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    await _ws_send(socket, "error", {"code": "INVALID_JSON", "status": 400,
                                                     "message": f"invalid JSON: {exc}"})
                    continue
                kind = message.get("type") if isinstance(message, dict) else None
                if kind == "close":
                    break
                try:
                    if session is not None and session.id not in manager.sessions:
                        manager.get(session.id)  # raises, saying why the session ended (e.g. reaped)
                    if kind == "reset":
                        body = CreateSessionBody.model_validate(message.get("data") or {})
                        if session is None:
                            session, observation, info = await manager.create("ws", body)
                        elif body.config:
                            raise ApiError(422, "invalid_request",
                                           "config can only be given in the first reset of a connection")
                        else:
                            observation, info = await manager.reset(session, body)
                        await _ws_send(socket, "observation",
                                       _openenv_result(session, observation, None, False, False, info))
                    elif kind == "step":
                        if session is None:
                            raise ApiError(409, "no_episode", "send a reset message before step")
                        body = _ws_step_body(message.get("data"))
                        observation, reward, terminated, truncated, info = await manager.step(session, body)
                        await _ws_send(socket, "observation",
                                       _openenv_result(session, observation, reward, terminated, truncated, info))
                    elif kind == "state":
                        if session is None:
                            raise ApiError(409, "no_episode", "send a reset message first")
                        await _ws_send(socket, "state", manager.get(session.id).state().model_dump())
                    else:
                        raise ApiError(400, "UNKNOWN_TYPE",
                                       f"unknown message type {kind!r}; expected reset, step, state or close")
                except ValidationError as exc:
                    await _ws_error(socket, ApiError(422, "invalid_request", _validation_text(exc)))
                except ApiError as exc:
                    await _ws_error(socket, exc)
                    if exc.code == "unknown_session":
                        break
        except WebSocketDisconnect:
            pass
        finally:
            # The client closed, vanished or was cut off: its container goes now, not at the idle timeout.
            if session is not None:
                await asyncio.shield(manager.close(session.id, "its WebSocket closed"))
        try:
            await socket.close()
        except (RuntimeError, WebSocketDisconnect):
            pass  # already closed by the client

    return app


_WS_CODES = {400: "INVALID_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
             409: "SESSION_ERROR", 422: "VALIDATION_ERROR", 429: "CAPACITY_REACHED", 503: "EXECUTION_ERROR",
             500: "EXECUTION_ERROR"}


async def _ws_send(socket: WebSocket, kind: str, data: dict[str, Any]) -> None:
    await socket.send_text(json.dumps({"type": kind, "data": data}, default=str))


async def _ws_error(socket: WebSocket, error: ApiError) -> None:
    code = error.code if error.code.isupper() else _WS_CODES.get(error.status, "EXECUTION_ERROR")
    await _ws_send(socket, "error", {"code": code, "error": error.code, "status": error.status,
                                     "message": error.message})


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

