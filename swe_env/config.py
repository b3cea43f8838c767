"""The env's options and their vocabularies, importable without the engine's SDK.

`EnvConfig` is what `SWEEnv(tasks, **options)` takes; the client (`RemoteSWEEnv`) checks options
with it before any request, so this module and what it imports (tools' names, the reward policy)
stay free of docker: a trainer on a machine without an engine imports only these.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import tools
from .build import budget, registry
from .build.registry import ImagesMode
from .errors import did_you_mean
from .grading.rewards import RewardMode
from .grading.suspicion import RewardPolicy
from .tools import ActionFormat


class EnvConfig(BaseModel):
    """Options of SWEEnv (keyword arguments of `SWEEnv(tasks=..., **options)`)."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int | None = Field(default=None, gt=0)
    """Steps before truncation; None uses each task's `limits.max_steps`."""
    command_timeout: float | None = Field(default=None, gt=0)
    """Default seconds per bash command; None uses each task's limit."""
    episode_timeout: float | None = Field(default=None, gt=0)
    """Wall-clock seconds per episode; None uses each task's limit."""
    output_limit: int = Field(default=10_000, ge=200)
    """Characters of command output kept in an observation (head and tail)."""
    reward_mode: RewardMode = "binary"
    """binary (1 resolved / 0), signed (+1 / -1) or fraction (share of listed tests passing)."""
    reward_policy: RewardPolicy = "lenient"
    """lenient: a patch that looks like tampering with the test machinery is only flagged in the report
    (`report.suspicious`); strict: it scores as unresolved (0, or -1 in signed mode). For RL, strict."""
    grade_on_truncation: bool = True
    """When the step or time budget runs out, grade the work so far (else the reward is 0)."""
    tools: list[str] = Field(default_factory=lambda: list(tools.DEFAULT_TOOLS))
    """Tools the agent may call (names from `swe_env.tools.TOOLS`); `submit` is always available."""
    action_format: ActionFormat = "dict"
    """Format the first observation asks the agent to use (every format is accepted); `reset(options={"action_format": ...})` overrides it per episode."""
    trajectory_path: str | None = None
    """Append every finished episode's trajectory to this JSONL file."""
    agent_name: str = "unknown"
    """Recorded in trajectories."""
    warm_pool: int = Field(default=0, ge=0)
    """Sandboxes kept started ahead per task image, so `reset` takes a ready one (0: start at each reset)."""
    images: ImagesMode = "auto"
    """Tasks with `environment.image`: `auto` uses that image when the engine has it or can pull it, else builds;
    `published` only that image; `build` always builds from the task's other fields."""

    registry: str | None = None
    """`HOST[:PORT][/NAMESPACE]`: pull swe-env's layers from this registry before building them (`swe-env images push`
    fills it); a failed pull is a note, and the layer is built. Not with `images="build"`."""
    published_namespace: str | None = None
    """Look up tasks' published images under this namespace (`[HOST[:PORT]/]NAMESPACE`) instead of their own
    (`swebench/sweb.eval...` becomes `NAMESPACE/sweb.eval...`), e.g. a mirror of SWE-bench's images."""
    max_disk: int | None = None
    """Disk budget of swe-env's images (bytes, or a size such as "50G"): before building, the least recently
    used images no container uses are removed until the rest fit (see `swe-env images prune`). None: no budget."""

    @field_validator("max_disk", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return budget.parse_size(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else value

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        return registry.check_registry(value) if value else value

    @field_validator("published_namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return registry.check_namespace(value) if value else value

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in tools.TOOLS]
        if unknown:
            raise ValueError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(tools.TOOLS)}")
        return value


RESET_OPTIONS = ("task_id", "action_format", "episode_index", "model")
"""What `reset(options=...)` takes (SWEEnv and RemoteSWEEnv): the task, the action format the first
observation asks for, and, kept in the trajectory, the episode index and the model's name."""


def check_reset_options(options: Any) -> dict[str, Any]:
    """`options` as a dict of known reset options; ValueError in one line naming an unknown one (a typo
    such as `task-id` would otherwise start a random task)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"reset options must be a dict, not {type(options).__name__}")
    for key in options:
        if key not in RESET_OPTIONS:
            raise ValueError(f"unknown reset option {key!r}{did_you_mean(str(key), RESET_OPTIONS)}; reset options are {', '.join(RESET_OPTIONS)}")
    return options
