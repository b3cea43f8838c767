"""What goes over the wire: the request bodies (pydantic, `extra="forbid"` but where OpenEnv's own
models allow extra fields), OpenEnv's `observation` object and a session's state."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..tools import ActionFormat


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResetBody(_Body):
    """Start a new episode. Every field is optional."""

    seed: int | None = Field(default=None, ge=0)
    """Seeds the env's task choice (as `env.reset(seed=...)`)."""
    task_id: str | None = None
    """The task to run; otherwise one is drawn with the env's random generator."""
    action_format: ActionFormat | None = None
    """Format the first observation asks the agent to use (every format is accepted)."""
    episode_id: str | None = Field(default=None, max_length=255)
    """Accepted for OpenEnv compatibility and ignored: the env names its episodes (info["episode_id"])."""
    episode_index: int | None = Field(default=None, ge=0)
    """Recorded in the episode's trajectory (a rollout's episode index: the resume key with agent, model, task)."""
    model: str | None = Field(default=None, max_length=255)
    """Recorded in the episode's trajectory (the model the agent runs)."""

    def reset_kwargs(self) -> dict[str, Any]:
        fields = (("task_id", self.task_id), ("action_format", self.action_format), ("episode_index", self.episode_index), ("model", self.model))
        return {"seed": self.seed, "options": {key: value for key, value in fields if value is not None}}


class CreateSessionBody(ResetBody):
    """`POST /sessions`: the first episode's reset fields plus the session's env options."""

    config: dict[str, Any] = Field(default_factory=dict)
    """EnvConfig fields for this session (max_steps, reward_mode, tools, ...), over the server's defaults."""


class Lenient(BaseModel):
    """OpenEnv's request models allow extra fields (its server drops what the env does not take):
    here they are ignored too, and the reply's `observation.warnings` names them."""

    model_config = ConfigDict(extra="allow")

    def ignored_fields(self) -> list[str]:
        return sorted(self.model_extra or {})


class OpenEnvResetBody(Lenient, CreateSessionBody):
    """`POST /reset`: OpenEnv's ResetRequest; resets the caller's session (named by `session_id`, the
    session cookie, or the caller's default session), or opens one."""

    model_config = ConfigDict(extra="allow")

    session_id: str | None = None


class WsResetBody(Lenient, CreateSessionBody):
    """The data of a WebSocket `reset` message: OpenEnv's ResetRequest plus this connection's settings."""

    model_config = ConfigDict(extra="allow")

    reply_within_s: float | None = Field(default=None, gt=0)
    """Answer every message of this connection within this many seconds (set it below the client's
    message timeout); longer work replies `pending` and goes on. Kept for the connection."""


class StepBody(_Body):
    """`POST /sessions/{id}/step`."""

    action: Any = Field(...)
    """A tool call in any form the env reads (`tools.actions.parse`, `GET /schema`): a dict, a JSON string, an OpenAI
    function call, a CWM `<tool: NAME>` block, a ```bash block."""
    agent_seconds: float | None = Field(default=None, ge=0)
    """How long the agent took to choose this action (recorded in the trajectory)."""


class OpenEnvStepBody(Lenient, StepBody):
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
