"""Episode records, one JSON line each, written so a crash never leaves half a line."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

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
    image: str | None = None
    config: dict[str, Any] = {}
    problem_statement: str = ""
    steps: list[Step] = Field(default_factory=list)
    diff: str = ""
    report: dict[str, Any] | None = None
    reward: float = 0.0
    resolved: bool = False
    termination: str | None = None
    """submitted, max_steps, time_limit, sandbox_died or closed."""
    error: str | None = None
    seconds: float = 0.0


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
