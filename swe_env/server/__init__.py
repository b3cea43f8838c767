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
  message collects it); `POST /mcp` (JSON-RPC: initialize, ping, tools/list). docs/service.md says
  exactly what is and is not compatible.

Security: the server drives a Docker engine, so it binds to 127.0.0.1 unless told otherwise,
refuses to bind elsewhere without a bearer token, caps concurrent sessions, closes sessions
idle longer than `idle_timeout`, and validates every request: a bad request is a 4xx with a
one-line message (`{"error": code, "detail": message}`) and never leaves a container behind.

The package, one job a module: `config` (the settings and what they refuse), `models` (the request
and response bodies), `api_errors` (a refusal's status, code and one-line message), `sessions`
(`Session`, `SessionManager`: the only owner of envs), `dependencies` (the manager from
`app.state`, the token check), `replies` (JSON and OpenEnv's result shape), `discovery` (the
action schema, MCP), `routes` (the HTTP routes), `websocket` (`/ws`, its message types in a
dispatch table), `app` (`create_app`, `serve`).
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(f"the swe-env server needs the `server` extra ({exc.name} is missing): pip install 'swe-env[server]'") from None

from .api_errors import ApiError, as_api_error
from .app import create_app, serve
from .config import DEFAULT_REPLY_WITHIN, LOOPBACK_NAMES, ONE_CONTAINER_OPTIONS, SERVER_ONLY_OPTIONS, ServerConfig, ServerConfigError, is_loopback
from .discovery import MCP_PROTOCOL_VERSION, action_schema
from .models import CreateSessionBody, Observation, OpenEnvResetBody, OpenEnvStepBody, ResetBody, SessionState, StepBody, WsResetBody
from .routes import SESSION_COOKIE
from .sessions import ENDED_MEMORY, Session, SessionManager
from .websocket import WAIT_TOOL

__all__ = [
    "ApiError",
    "CreateSessionBody",
    "DEFAULT_REPLY_WITHIN",
    "ENDED_MEMORY",
    "LOOPBACK_NAMES",
    "MCP_PROTOCOL_VERSION",
    "ONE_CONTAINER_OPTIONS",
    "Observation",
    "OpenEnvResetBody",
    "OpenEnvStepBody",
    "ResetBody",
    "SERVER_ONLY_OPTIONS",
    "SESSION_COOKIE",
    "ServerConfig",
    "ServerConfigError",
    "Session",
    "SessionManager",
    "SessionState",
    "StepBody",
    "WAIT_TOOL",
    "WsResetBody",
    "action_schema",
    "as_api_error",
    "create_app",
    "is_loopback",
    "serve",
]
