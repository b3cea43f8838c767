"""Agents behind one small protocol: `reset(observation, info)` then `act(observation)`.

Agents only use the env's public behaviour (observations and info). The oracle is the
one privileged agent: it is handed the tasks so that it can replay their gold patches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ..task import Task
from .null import NullAgent
from .oracle import OracleAgent


@runtime_checkable
class Agent(Protocol):
    """What the rollout loop needs from an agent."""

    name: str

    def reset(self, observation: str, info: dict[str, Any]) -> None:
        """Start a new episode with the env's first observation and info."""

    def act(self, observation: str) -> Any:
        """The next action (any form `SWEEnv.step` accepts) given the last observation."""


AGENTS: dict[str, Callable[[list[Task]], Agent]] = {
    "oracle": OracleAgent,
    "null": lambda tasks: NullAgent(),
}


def make_agent(name: str, tasks: list[Task]) -> Agent:
    """An agent by name; ValueError naming the known agents otherwise."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}")
    return AGENTS[name](tasks)


__all__ = ["AGENTS", "Agent", "NullAgent", "OracleAgent", "make_agent"]
