"""RemoteSWEEnv: a gymnasium.Env that plays SWEEnv's episodes on a `swe-env serve` server.

    env = RemoteSWEEnv("http://127.0.0.1:8000", token=None, max_steps=30)
    observation, info = env.reset(options={"task_id": "ledger-negative-rounding"})
    observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "ls"})
    env.close()

Code written against SWEEnv runs against it unchanged: the same spaces, the same tuples, the
same errors for the caller's mistakes (KeyError for an unknown task, ValueError for bad
options), and an agent's mistakes are observations. Two transports: "ws" (one WebSocket per
env, the lower latency; needs the `websockets` package) and "http" (httpx when installed,
else the standard library's http.client, both with a kept-alive connection).

Trajectories are written by the server (`swe-env serve --trajectory-path`), not the client;
`get_trajectory()` fetches the current episode's record from it, as `SWEEnv.get_trajectory()`
returns it. A server holds one container per session, so `warm_pool` is refused here.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Literal

import gymnasium as gym

from .config import EnvConfig, check_reset_options
from .data.trajectory import Trajectory
from .errors import InfrastructureError
from .spaces import CodeText, render_text

# Optional packages: each name below exists only when its flag is True.
try:
    import httpx
except ImportError:  # pragma: no cover - depends on the install
    HAVE_HTTPX = False
else:
    HAVE_HTTPX = True

try:
    from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus, WebSocketException
    from websockets.sync.client import connect as ws_connect
except ImportError:  # pragma: no cover - depends on the install
    HAVE_WEBSOCKETS = False
else:
    HAVE_WEBSOCKETS = True

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

DEFAULT_TIMEOUT = 3600.0
"""Seconds one request may take: a reset can build images and a submit runs the hidden tests."""


class RemoteEnvError(InfrastructureError):
    """The server could not do what was asked (unreachable, full, or an infrastructure failure)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.code = status, code


class SessionLost(RemoteEnvError):
    """The server no longer has this env's session (reaped when idle, the server restarted, or its
    WebSocket closed after a call outlasted the client's timeout)."""


def _raise_for(status: int, body: Any) -> None:
    """Turn an error response into the exception SWEEnv would raise for the same mistake."""
    if isinstance(body, dict):
        code, message = body.get("error"), body.get("detail") or body.get("message")
    else:
        code, message = None, None
    message = str(message or body or f"HTTP {status}")
    if code == "unknown_task":
        raise KeyError(message)
    if code == "unknown_session":
        raise SessionLost(message, status, code)
    if status == 422:
        raise ValueError(message)
    if status in (401, 403):
        raise PermissionError(f"the swe-env server refused the request: {message}")
    raise RemoteEnvError(f"the swe-env server answered {status}: {message}", status, code)


class _HttpTransport:
    """JSON over one kept-alive HTTP connection."""

    def __init__(self, base_url: str, token: str | None, timeout: float):
        self.base_url = base_url.rstrip("/")
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self._client = (
            httpx.Client(base_url=self.base_url, headers=self.headers, timeout=httpx.Timeout(timeout, connect=10.0)) if HAVE_HTTPX else None
        )
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body)
        try:
            client = self._client
            status, text = self._httpx(client, method, path, data) if client else self._stdlib(method, path, data)
        except OSError as exc:
            raise RemoteEnvError(f"cannot reach the swe-env server at {self.base_url}: {exc}") from None
        except Exception as exc:
            if HAVE_HTTPX and isinstance(exc, httpx.HTTPError):
                raise RemoteEnvError(f"cannot reach the swe-env server at {self.base_url}: {exc}") from None
            raise
        try:
            payload = json.loads(text) if text else None
        except json.JSONDecodeError:
            payload = text
        if status >= 400:
            _raise_for(status, payload)
        return payload

    def _httpx(self, client: httpx.Client, method: str, path: str, data: str | None) -> tuple[int, str]:
        response = client.request(method, path, content=data)
        return response.status_code, response.text

    def _stdlib(self, method: str, path: str, data: str | None) -> tuple[int, str]:
        for attempt in (1, 2):
            conn = self._conn
            if conn is None:
                parts = urllib.parse.urlsplit(self.base_url)
                if parts.hostname is None:
                    raise ValueError(f"the swe-env server's address names no host: {self.base_url!r}")
                kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                conn = self._conn = kind(parts.hostname, parts.port, timeout=self.timeout)
                self._prefix = parts.path.rstrip("/")
            try:
                conn.request(method, self._prefix + path, body=data, headers=self.headers)
                response = conn.getresponse()
                return response.status, response.read().decode()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed meanwhile: reconnect once.
                conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _WsTransport:
    """OpenEnv's WebSocket messages on one connection (which is one session on the server)."""

    def __init__(self, base_url: str, token: str | None, timeout: float):
        if not HAVE_WEBSOCKETS:
            raise ImportError("transport='ws' needs the websockets package: pip install 'swe-env[server]'")
        parts = urllib.parse.urlsplit(base_url.rstrip("/"))
        scheme = "wss" if parts.scheme == "https" else "ws"
        self.url = urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "/ws", "", ""))
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout
        self._socket: ClientConnection | None = None
        self._stack = ExitStack()

    @property
    def connected(self) -> bool:
        return self._socket is not None

    def connect(self) -> None:
        stack = ExitStack()
        try:
            for attempt in range(3):
                try:
                    self._socket = stack.enter_context(
                        ws_connect(self.url, additional_headers=self.headers, open_timeout=10, max_size=None, close_timeout=5)
                    )
                    break
                except InvalidMessage:
                    # The connection dropped during the handshake (seen through docker's port proxy under
                    # load); nothing exists on the server yet, so trying again is safe.
                    if attempt == 2:
                        raise
                    time.sleep(0.5 * (attempt + 1))
        except InvalidStatus as exc:
            # Refused at the handshake (a missing or wrong token): the body says why.
            try:
                body = json.loads(exc.response.body or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            _raise_for(exc.response.status_code, body)
        except (OSError, WebSocketException) as exc:
            raise RemoteEnvError(f"cannot reach the swe-env server at {self.url}: {exc}") from None
        self._stack = stack

    def send(self, kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        message = {"type": kind} if data is None else {"type": kind, "data": data}
        socket = self._socket
        if socket is None:
            raise RuntimeError("the WebSocket is not connected (connect() first; a timeout or a lost session closes it)")
        try:
            socket.send(json.dumps(message))
            reply = json.loads(socket.recv(timeout=self.timeout))
        except ConnectionClosed as exc:
            self.close()
            raise SessionLost(f"the swe-env server closed the connection ({exc}); its session is gone") from None
        except TimeoutError:
            # The server ends a WebSocket's session with its connection: closing it here loses the session too.
            self.close()
            raise SessionLost(
                f"no answer from the swe-env server within {self.timeout:g} s; the connection was "
                "closed and its session with it (reset() starts a new one)"
            ) from None
        if reply.get("type") == "error":
            error = reply.get("data") or {}
            if error.get("status") in (401, 403, 429):
                self.close()  # the server closes such connections
            _raise_for(int(error.get("status") or 500), {"error": error.get("error"), "detail": error.get("message")})
        return reply.get("data") or {}

    def call(self, kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """send, and while the server replies `pending` (it answers within its reply window and the
        call goes on there), wait for the result with `{"tool": "wait"}` steps."""
        result = self.send(kind, data)
        while isinstance(result.get("observation"), dict) and result["observation"].get("pending"):
            result = self.send("step", {"action": {"tool": "wait"}})
        return result

    def close(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            try:
                socket.send(json.dumps({"type": "close"}))
            except WebSocketException:
                pass  # already closed by the server
            self._stack.close()


class RemoteSWEEnv(gym.Env):
    """SWEEnv over a swe-env server: the same episodes, observations and rewards.

    `base_url` is the server's address (http://host:port); `token` its bearer token, if it
    has one; `transport` "ws", "http", or "auto" (ws when the websockets package is installed);
    `timeout` the seconds one call may take; `env_options` are EnvConfig fields, validated
    here and on the server (`trajectory_path` is the server's own setting).
    """

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        render_mode: str | None = None,
        transport: Literal["auto", "ws", "http"] = "auto",
        timeout: float = DEFAULT_TIMEOUT,
        **env_options: Any,
    ):
        EnvConfig(**env_options)  # the same errors as SWEEnv, before any request
        if env_options.get("warm_pool"):
            raise ValueError(
                "warm_pool is not offered by a swe-env server: each session holds one container at a "
                "time (the server's max_sessions bounds them); use SWEEnv(warm_pool=...) in-process"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, not {render_mode!r}")
        if transport == "auto":
            transport = "ws" if HAVE_WEBSOCKETS else "http"
        if transport not in ("ws", "http"):
            raise ValueError(f"transport must be auto, ws or http, not {transport!r}")
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.env_options = env_options
        self.render_mode = render_mode
        self.observation_space = CodeText()
        self.action_space = CodeText()
        self._http = _HttpTransport(self.base_url, token, timeout)
        self._ws = _WsTransport(self.base_url, token, timeout) if transport == "ws" else None
        self.session_id: str | None = None
        self.task_id: str | None = None
        self._episode = False
        self._steps = 0
        self._last_text = ""
        self._agent_seconds: float | None = None
        self._lost: SessionLost | None = None
        """Why the current episode's session was lost (its record went with it)."""

    # ------------------------------------------------------------ gym API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        body: dict[str, Any] = {"seed": seed, **check_reset_options(options)}  # refused before any request
        super().reset(seed=seed)
        try:
            observation, info = self._reset(body)
        except SessionLost:
            # The server reaped the idle session or restarted: open a new one, as SWEEnv would start a new container.
            self._forget_session()
            observation, info = self._reset(body)
        self.session_id = info.get("session_id", self.session_id)
        self.task_id = info.get("task_id")
        self._episode, self._steps, self._last_text, self._lost = True, 0, observation, None
        return observation, info

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict]:
        if not self._episode:
            raise RuntimeError("call reset() before step()")
        self._steps += 1
        agent_seconds, self._agent_seconds = self._agent_seconds, None
        body = {"action": action} if agent_seconds is None else {"action": action, "agent_seconds": agent_seconds}
        try:
            if self._ws is not None:
                result = self._ws.call("step", body)
                text, reward = result["observation"]["text"], result.get("reward") or 0.0
                terminated, truncated = result["observation"]["terminated"], result["observation"]["truncated"]
                info = result["observation"].get("info", {})
            else:
                result = self._http.request("POST", f"/sessions/{self.session_id}/step", body)
                text, reward = result["observation"], result["reward"]
                terminated, truncated, info = result["terminated"], result["truncated"], result["info"]
        except SessionLost as exc:
            # Like a container that died under SWEEnv: the episode cannot go on; the next reset opens a new session.
            self._forget_session()
            self._lost = exc
            text = f"The sandbox failed and the episode cannot continue: {exc}"
            reward, terminated, truncated, info = 0.0, False, True, {"error": str(exc), "step": self._steps}
        self._last_text = text
        if self.render_mode == "human":
            self.render()
        return text, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> str | None:
        return render_text(self.render_mode, self.task_id, self._steps, self._last_text)

    def close(self) -> None:
        """Close the session on the server (its container is removed); never raises for an unreachable server."""
        try:
            if self._ws is not None:
                self._ws.close()
            elif self.session_id is not None:
                self._http.request("DELETE", f"/sessions/{self.session_id}")
        except (RemoteEnvError, PermissionError):
            pass  # the server reaps what it cannot be told about
        finally:
            self.session_id, self._episode = None, False
            self._http.close()
        super().close()

    # ------------------------------------------------------------ beyond gym

    def state(self) -> dict[str, Any]:
        """The server's view of this session: episode id, step count, task, container, elapsed and idle seconds."""
        if self.session_id is None:
            raise RuntimeError("call reset() first")
        if self._ws is not None:
            return self._ws.send("state")
        return self._http.request("GET", f"/sessions/{self.session_id}")

    def get_trajectory(self) -> Trajectory | None:
        """The record of the current (or last) episode, from the server (as `SWEEnv.get_trajectory()`);
        None before the first reset. Raises SessionLost when the episode's session is gone (reaped,
        server restarted), RemoteEnvError while a call of this env is still running on the server."""
        if self._lost is not None:
            raise SessionLost(f"the episode's record went with its session: {self._lost}", self._lost.status, self._lost.code)
        if self.session_id is None:
            return None
        if self._ws is not None:
            record = self._ws.send("trajectory")
        else:
            record = self._http.request("GET", f"/sessions/{self.session_id}/trajectory")
        return Trajectory.model_validate(record)

    def tasks(self) -> list[dict[str, Any]]:
        """The server's tasks (id, repo, base_commit, workdir, max_steps)."""
        return self._http.request("GET", "/tasks")

    def note_agent_seconds(self, seconds: float) -> None:
        """Record how long the agent took to choose the next action (sent with that step)."""
        self._agent_seconds = round(seconds, 4)

    # ------------------------------------------------------------ helpers

    def _reset(self, body: dict[str, Any]) -> tuple[str, dict]:
        if self._ws is not None:
            if not self._ws.connected:
                self._ws.connect()
            first = self.session_id is None  # the session (and its config) comes with the first good reset
            result = self._ws.call("reset", {**body, "config": self.env_options} if first else body)
            return result["observation"]["text"], result["observation"].get("info", {})
        if self.session_id is None:
            result = self._http.request("POST", "/sessions", {**body, "config": self.env_options})
        else:
            result = self._http.request("POST", f"/sessions/{self.session_id}/reset", body)
        return result["observation"], result["info"]

    def _forget_session(self) -> None:
        self.session_id, self._episode = None, False
        if self._ws is not None:
            self._ws.close()
