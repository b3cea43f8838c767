"""Sessions: each owns one `SWEEnv` (so at most one container at a time), and `SessionManager`
opens, runs, reaps and closes them.

An env call blocks (docker exec, container starts, grading), so each runs on a worker thread,
one at a time per session under the session's lock: a DELETE, the idle reaper or a dropped
WebSocket waits for a running step and then closes the container.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from ..data.task import Task
from ..env import EnvConfig, SWEEnv, unknown_task_message
from .api_errors import ApiError, as_api_error, validation_text
from .config import ONE_CONTAINER_OPTIONS, ONE_CONTAINER_WHY, SERVER_ONLY_OPTIONS, ServerConfig
from .models import CreateSessionBody, ResetBody, SessionState, StepBody

T = TypeVar("T")

ENDED_MEMORY = 1000
"""How many ended sessions the server remembers, to say why an id is unknown."""


@dataclass(frozen=True)
class Caller:
    """Who a request comes from, as its credentials say (`dependencies.authorize`)."""

    owner: str
    """A fingerprint of the token presented ("anonymous" on a server without one): a session belongs to it."""
    operator: bool = False
    """The operator's token: every session is listed and reachable."""

    def may_use(self, session: Session) -> bool:
        return self.operator or session.owner == self.owner


OPERATOR = Caller(owner="operator", operator=True)
"""The server itself (its reaper and shutdown), and callers of the manager that check nothing."""


def new_session_id() -> str:
    """256 random bits: a session's id is the key to it, so it must not be guessable (nor is it ever listed
    to anyone but its owner and the operator)."""
    return secrets.token_urlsafe(32)


class Session:
    """One client's env. All env calls of a session run one at a time (`_env_lock`) on worker threads."""

    def __init__(self, session_id: str, transport: Literal["http", "ws"], options: dict[str, Any], owner: str = ""):
        self.id = session_id
        self.owner = owner
        """The `Caller.owner` that opened the session: only it (and the operator) may reach the session."""
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
            session_id=self.id,
            episode_id=self.episode_id,
            step_count=self.steps,
            task_id=self.task_id,
            container_id=self.container_id,
            done=self.done,
            elapsed=round(time.monotonic() - self.started, 3),
            idle=round(0.0 if self.in_flight else time.monotonic() - self.last_used, 3),
            transport=self.transport,
            busy=self.in_flight > 0,
        )


def _shown_id(session_id: str) -> str:
    return repr(session_id if len(session_id) <= 80 else session_id[:80] + "...")


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
            flag = f" (swe-env serve --{bad[0].replace('_', '-')})" if bad[0] == "trajectory_path" else ""
            raise ApiError(422, "invalid_request", f"config.{bad[0]} is a server setting{flag}, not a client option")
        pooled = [key for key in ONE_CONTAINER_OPTIONS if config.get(key)]
        if pooled:
            raise ApiError(422, "invalid_request", f"config.{pooled[0]} is not offered by the server: {ONE_CONTAINER_WHY}")
        options = {**self.config.env_options, **config}
        try:
            checked = EnvConfig(**options)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", f"config: {validation_text(exc)}") from None
        over = self.config.refusal(checked)  # the server's memory and its waits (`CLIENT_BOUNDS`)
        if over is not None:
            raise ApiError(422, "invalid_request", over)
        return options

    def check_task(self, task_id: str | None, running: bool = False) -> None:
        """Refuse a reset naming a task the server does not have, before any env call (ApiError 404)."""
        if task_id is not None and task_id not in self._task_ids:
            note = "; the session's episode goes on" if running else ""
            raise ApiError(404, "unknown_task", unknown_task_message(task_id, self._task_ids) + note)

    def open(self, transport: Literal["http", "ws"], config: dict[str, Any], caller: Caller = OPERATOR) -> Session:
        """Reserve a slot for a new session of `caller` (no container yet); raises ApiError 422 / 429."""
        options = self.options(config)
        if len(self.sessions) >= self.config.max_sessions:
            raise ApiError(
                429,
                "capacity",
                f"the server is full: {len(self.sessions)} of {self.config.max_sessions} "
                "sessions are open; close one (DELETE /sessions/{id}) or try later",
            )
        quota = self.config.max_sessions_per_client
        if quota is not None and not caller.operator:
            held = sum(1 for open_session in self.sessions.values() if open_session.owner == caller.owner)
            if held >= quota:
                raise ApiError(429, "client_quota", f"this client holds {held} sessions, its most (max_sessions_per_client {quota}); close one first")
        session = Session(new_session_id(), transport, options, owner=caller.owner)
        self.sessions[session.id] = session
        return session

    def get(self, session_id: str, caller: Caller = OPERATOR) -> Session:
        """The session with this id, if `caller` may use it; else the same 404 as for an id that never existed
        (another client's session is not even confirmed to exist)."""
        session = self.sessions.get(session_id)
        if session is None or not caller.may_use(session):
            why = self._ended.get(session_id, "never existed") if session is None else "never existed"
            raise ApiError(404, "unknown_session", f"unknown session {_shown_id(session_id)} ({why})")
        return session

    def visible(self, caller: Caller, default_of: str, cookie: str | None) -> list[Session]:
        """The sessions `GET /sessions` lists to `caller`: every one to the operator; to a client only the
        ones it can reach without naming an id (its cookie's and its default session), so no client
        learns another's id from the listing."""
        if caller.operator:
            return list(self.sessions.values())
        reachable = [self.sessions.get(cookie or ""), self._default(default_of, caller)]
        return [s for s in dict.fromkeys(reachable) if s is not None and caller.may_use(s)]

    def _default(self, default_of: str, caller: Caller) -> Session | None:
        """The default session of `default_of`, unless a client has claimed it (addressed it by id or cookie)."""
        default = self.sessions.get(self.defaults.get(default_of, ""))
        return default if default is not None and not default.claimed and caller.may_use(default) else None

    def resolve(
        self, default_of: str, session_id: str | None, cookie: str | None, for_reset: bool = False, caller: Caller = OPERATOR
    ) -> Session | None:
        """The session an OpenEnv HTTP request means: named by id (404 if unknown or not the
        caller's), else by the cookie (when it names one of the caller's sessions), else the
        default session of `default_of` (the caller's address and credentials); None when there is none.

        A session once addressed by id or cookie is its client's own: a request that names
        neither (a client without cookies, or another one with the same address and token) then
        never reaches it; a reset gets a new default session instead.
        """
        if session_id is not None:
            session = self.get(session_id, caller)
            session.claimed = True
            return session
        by_cookie = self.sessions.get(cookie or "")
        if by_cookie is not None and caller.may_use(by_cookie):
            by_cookie.claimed = True
            return by_cookie
        return self._default(default_of, caller)

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
        await asyncio.gather(*(self.close(session_id, why) for session_id in list(self.sessions)), return_exceptions=True)

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
        idle = [session.id for session in self.sessions.values() if session.in_flight == 0 and now - session.last_used > self.config.idle_timeout]
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

    async def create(self, transport: Literal["http", "ws"], body: CreateSessionBody, caller: Caller = OPERATOR) -> tuple[Session, str, dict]:
        """Open a session of `caller` and reset its first episode; a failed reset leaves no session and no container."""
        self.check_task(body.task_id)
        session = self.open(transport, body.config, caller)
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
