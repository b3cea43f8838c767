"""The server's settings (`ServerConfig`), the checks that refuse unsafe ones, and the env options
no client may set."""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..env import EnvConfig
from ..runtime.engine import DEFAULT_TTL_SECONDS
from ..spaces import OBSERVATION_MAX_LENGTH
from .api_errors import validation_text
from .request_bounds import MAX_REQUEST_BYTES

LOOPBACK_NAMES = ("localhost",)
SERVER_ONLY_OPTIONS = ("trajectory_path", "registry", "published_namespace", "max_disk")
"""EnvConfig fields a client may not set: they name paths on the server's machine, hosts its engine pulls
from, or how much of its images it removes."""
ONE_CONTAINER_OPTIONS = ("warm_pool",)
"""EnvConfig fields nobody may set above 0 on a server: a session holds one container at a time (what
`max_sessions` bounds), and a per-session warm pool would keep more, one set per task it resets to."""
ONE_CONTAINER_WHY = (
    "each session holds one container at a time, which is what max_sessions bounds; "
    "a warm pool would keep more per session (one per task it resets to)"
)
CLIENT_BOUNDS = (
    ("output_limit", "max_output_limit"),
    ("command_timeout", "max_command_timeout"),
    ("episode_timeout", "max_episode_timeout"),
    ("max_steps", "max_episode_steps"),
)
"""EnvConfig fields a client may set that size the server's memory or its waits, each with the `ServerConfig` field
that is its most: a client asking more gets HTTP 422, and `env_options` setting more stops the start."""
DEFAULT_REPLY_WITHIN = 45.0
"""Seconds within which /ws answers a message; OpenEnv's clients wait 60 s (`message_timeout_s`) by default."""


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
    """Bearer token every request must carry (`Authorization: Bearer <token>`); `/health` is open. A client holding
    it reaches only the sessions it opened (by their unguessable ids, its cookie or its default session), never
    another client's, and `GET /sessions` lists only those."""
    client_tokens: list[str] = Field(default_factory=list)
    """Bearer tokens of individual clients, each a client of its own (its sessions reachable only with that
    token). Clients sharing one token are one client to the server: those on one address (one machine, or
    behind one proxy) share the default session of cookie-less OpenEnv calls and can list its id. Give each
    client its own token here when they must not see each other's work. Accepted wherever `token` is."""
    operator_token: str | None = None
    """Bearer token of the operator: lists every session (`GET /sessions`) and may address any of them. Also accepted
    wherever `token` is; never give it to clients."""
    max_sessions: int = Field(default=64, ge=1)
    """Sessions (each holding at most one container) open at once; more get HTTP 429."""
    max_sessions_per_client: int | None = Field(default=None, ge=1)
    """Sessions one client (one token) may hold at once, so a client cannot take every slot from the others
    (HTTP 429 past it); None: up to `max_sessions`. Meaningful with `client_tokens`: clients sharing a token
    share its quota. The operator has none."""
    idle_timeout: float = Field(default=600.0, gt=0)
    """Seconds without a request after which a session is closed and its container removed."""
    env_options: dict[str, Any] = Field(default_factory=dict)
    """Defaults for every session's EnvConfig (clients may override all but trajectory_path)."""
    max_output_limit: int = Field(default=OBSERVATION_MAX_LENGTH, ge=200)
    """Largest `output_limit` (characters of command output a session keeps per observation, in the server's
    memory and the session's trajectory) a client may ask for, or `env_options` may set; a client asking more gets
    HTTP 422. Each session's steps keep up to this much each until the session closes, so it bounds what one
    client's command output costs the server. By default: as much as a reply carries (`OBSERVATION_MAX_LENGTH`)."""
    max_command_timeout: float = Field(default=3600.0, gt=0)
    """Largest `command_timeout` (seconds one bash or trace command may run, a worker thread of the server waiting on
    it) a client may ask for, or `env_options` may set; more gets HTTP 422. By default an hour, the most a `bash`
    call's own `timeout` may ask. Unset, a session takes its task's `limits.command_timeout` (the operator's)."""
    max_episode_timeout: float = Field(default=float(DEFAULT_TTL_SECONDS), gt=0)
    """Largest `episode_timeout` (seconds an episode may run, which bounds every wait of its steps) a client may ask
    for, or `env_options` may set; more gets HTTP 422. By default the containers' time-to-live (4 hours), past which
    the container is gone anyway."""
    max_episode_steps: int = Field(default=1000, ge=1)
    """Largest `max_steps` (steps before an episode is truncated, each kept in the server's memory with up to
    `output_limit` characters until the session closes) a client may ask for, or `env_options` may set; more gets
    HTTP 422."""
    max_request_bytes: int = Field(default=MAX_REQUEST_BYTES, ge=64 * 1024)
    """Largest request body (HTTP) and message (WebSocket) the server reads; a larger one gets HTTP 413 (or the
    WebSocket is closed with code 1009) before it is parsed, so one client cannot exhaust the server's memory."""
    log_level: str = "info"
    """uvicorn's log level (critical, error, warning, info, debug, trace)."""
    reply_within: float | None = Field(default=DEFAULT_REPLY_WITHIN, gt=0)
    """Seconds within which `/ws` answers each message: a reset or step still running then goes on, the
    reply is a `pending` observation, and the next step message collects the result. None: no limit.
    A connection sets its own with the reset field `reply_within_s` (below its client's message timeout)."""

    def check(self) -> ServerConfig:
        """Refuse settings that would expose the Docker engine; raises ServerConfigError."""
        if self.client_tokens and not self.token:
            raise ServerConfigError("client tokens need the server's token too (--token): without one every request is let in")
        if any(len(token) < 8 for token in self.client_tokens):
            raise ServerConfigError("every client token must be at least 8 characters long")
        distinct = set(self.client_tokens)
        if len(distinct) < len(self.client_tokens) or self.token in distinct or self.operator_token in distinct:
            raise ServerConfigError("client tokens must differ from each other, from the token and from the operator token")
        if not is_loopback(self.host) and not self.token:
            raise ServerConfigError(
                f"refusing to bind to {self.host}: the server controls a Docker engine, so any address but "
                "127.0.0.1 needs a bearer token (--token, or the SWE_ENV_TOKEN environment variable)"
            )
        if self.token is not None and len(self.token) < 8:
            raise ServerConfigError("the token must be at least 8 characters long")
        if self.operator_token is not None and (len(self.operator_token) < 8 or self.operator_token == self.token):
            raise ServerConfigError("the operator token must be at least 8 characters long and differ from the token")
        if self.operator_token is not None and not self.token:
            raise ServerConfigError(
                "an operator token needs a client token too (--token): without one every request is let in and the operator's is not needed"
            )
        try:
            options = EnvConfig(**self.env_options)
        except ValidationError as exc:
            raise ServerConfigError(f"invalid env options: {validation_text(exc)}") from None
        over = self.over_bound(options)
        if over is not None:
            option, value, bound = over
            raise ServerConfigError(f"env option {option} {_number(value)} is over {bound} {_number(getattr(self, bound))} ({_flag(bound)})")
        pooled = [key for key in ONE_CONTAINER_OPTIONS if self.env_options.get(key)]
        if pooled:
            raise ServerConfigError(f"env option {pooled[0]} is not offered by the server: {ONE_CONTAINER_WHY}")
        return self

    def over_bound(self, options: EnvConfig) -> tuple[str, float, str] | None:
        """The first option of `options` over its most (`CLIENT_BOUNDS`): (the option, its value, the bound's field)."""
        for option, bound in CLIENT_BOUNDS:
            value = getattr(options, option)
            if value is not None and value > getattr(self, bound):
                return option, value, bound
        return None

    def refusal(self, options: EnvConfig) -> str | None:
        """A client's options over one of this server's maxima, in one line naming the field and the flag, or None."""
        over = self.over_bound(options)
        if over is None:
            return None
        option, value, bound = over
        return f"config.{option} {_number(value)} is over this server's most, {_number(getattr(self, bound))} (swe-env serve {_flag(bound)})"


def _number(value: float) -> str:
    """1000000 for 1e6 and 1000000.0 alike; 2.5 as it is."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
