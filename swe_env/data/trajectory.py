"""Episode records, one JSON line each, written so a crash never leaves half a line; read back, and the keys a
resumed run skips by. Their exports for training (chat messages, CWM's format) are `swe_env.exports`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..errors import RETRYABLE_ENDINGS, Termination

SCHEMA_VERSION = 1


class Step(BaseModel):
    """One step of an episode."""

    index: int
    raw: Any = None
    """The action exactly as the agent sent it (model text, dict, ...)."""
    action: dict[str, Any] | None = None
    """The parsed action, or None when it could not be parsed."""
    observation: str
    exit_code: int | None = None
    error: bool = False
    """The action was invalid or the tool reported an error."""
    notes: list[str] = []
    env_seconds: float = 0.0
    agent_seconds: float | None = None


class Trajectory(BaseModel):
    """Everything about one episode, for mid-training data and for debugging."""

    schema_version: int = SCHEMA_VERSION
    task_id: str
    agent: str = "unknown"
    model: str | None = None
    episode_id: str
    episode_index: int | None = None
    """Which of a rollout's episodes of this task (0, 1, ...); the resume key with task, agent and model."""
    image: str | None = None
    config: dict[str, Any] = {}
    problem_statement: str = ""
    workdir: str | None = None
    """Where the repository was in the agent's container (the task's `environment.workdir`), as the
    first observation told the agent; exports say the same. None in records written before it was kept
    (exports then read `config["workdir"]`, else assume /testbed)."""
    steps: list[Step] = Field(default_factory=list)
    diff: str = ""
    report: dict[str, Any] | None = None
    reward: float = 0.0
    resolved: bool = False
    termination: Termination | None = None
    """How the episode ended (`errors.Termination`: its values are the strings files hold; what each
    means, and which are retried, in `errors.KINDS`); None while it runs."""
    error: str | None = None
    seconds: float = 0.0
    node: str | None = None
    """The Ray node (its id) that ran the episode under the Ray backend; None elsewhere."""


class TrajectoryWriter:
    """Appends trajectories to a JSONL file, one whole line per write (thread-safe)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, trajectory: Trajectory) -> None:
        line = (trajectory.model_dump_json() + "\n").encode()
        with self._lock:
            # One os.write of a whole line on an O_APPEND descriptor: a crash leaves either the
            # full line or nothing, never a fragment that breaks the file for readers.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(line)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)


def read_trajectories(path: str | Path) -> list[Trajectory]:
    """Read a JSONL file of trajectories (skips a torn last line, if any)."""
    result = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            result.append(Trajectory.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValueError):
            continue
    return result


def iter_trajectories(path: str | Path) -> Iterator[Trajectory]:
    """Like `read_trajectories`, one at a time (files of millions of episodes stay out of memory)."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                yield Trajectory.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValueError):
                continue


# ---------------------------------------------------------------- resuming


def episode_key(trajectory: Trajectory) -> tuple[str, str | None, str, int | None]:
    """(agent, model, task, episode index): what a rollout episode is known by in its output file."""
    return trajectory.agent, trajectory.model, trajectory.task_id, trajectory.episode_index


def finished_keys(path: str | Path) -> set[tuple[str, str | None, str, int | None]]:
    """Keys of the episodes in a trajectory file that ended for a reason of the agent's own."""
    if not Path(path).exists():
        return set()
    return {episode_key(t) for t in iter_trajectories(path) if t.termination not in RETRYABLE_ENDINGS}
