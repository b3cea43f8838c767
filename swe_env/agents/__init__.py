"""Agents behind one small protocol: `reset(observation, info)` then `act(observation)`.

Agents only use the env's public behaviour (observations and info). The oracle is the
one privileged agent: it is handed the tasks so that it can replay their gold patches.
Besides the names below, `make_agent` loads `package.module:Class` (your own agent).
An agent may set `action_format` (one of `tools.ACTION_FORMATS`: the env's instructions follow
it), `model` (recorded in trajectories) and `check()` (asked once before a rollout starts any
container: an endpoint that does not answer or a model it does not serve is a one-line error then,
not a failed episode per task).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from ..data.task import Task
from .null import NullAgent
from .openai import OpenAIAgent
from .oracle import OracleAgent


@runtime_checkable
class Agent(Protocol):
    """What the rollout loop needs from an agent."""

    name: str

    def reset(self, observation: str, info: dict[str, Any]) -> None:
        """Start a new episode with the env's first observation and info."""

    def act(self, observation: str) -> Any:
        """The next action (any form `SWEEnv.step` accepts) given the last observation."""


AGENTS: dict[str, Callable[..., Agent]] = {
    "oracle": lambda tasks, **options: OracleAgent(tasks, **options),
    "null": lambda tasks, **options: NullAgent(**options),
    "openai": lambda tasks, **options: OpenAIAgent(**options),
}


def make_agent(name: str, tasks: list[Task], **options: Any) -> Agent:
    """An agent by name or `package.module:Class`, built with `options`; ValueError (one line) otherwise.

    A loaded class gets `tasks=` when its constructor takes a `tasks` argument.
    """
    if name in AGENTS:
        try:
            return AGENTS[name](tasks, **options)
        except TypeError as exc:
            raise ValueError(f"agent {name!r}: {exc}") from None
    if ":" not in name:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}, or package.module:Class")
    return _load(name, tasks, options)


def checked_agent(name: str, tasks: list[Task], **options: Any) -> Agent:
    """`make_agent`, then the agent's own `check()` when it has one (the openai agent asks its endpoint)."""
    agent = make_agent(name, tasks, **options)
    check = getattr(agent, "check", None)
    if callable(check):
        check()
    return agent


def _load(spec: str, tasks: list[Task], options: dict[str, Any]) -> Agent:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"agent {spec!r}: cannot import {module_name!r} ({exc})") from None
    factory: Any = module  # the module, then each attribute down the dotted path
    for part in attribute.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ValueError(f"agent {spec!r}: {module_name!r} has no attribute {attribute!r}")
    if not callable(factory):
        raise ValueError(f"agent {spec!r}: {attribute!r} is not a class or function")
    parameters: Mapping[str, inspect.Parameter]
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        parameters = {}
    if "tasks" in parameters:
        options = {"tasks": tasks, **options}
    try:
        agent = factory(**options)
    except TypeError as exc:
        raise ValueError(f"agent {spec!r}: {exc}") from None
    missing = [method for method in ("reset", "act") if not callable(getattr(agent, method, None))]
    if missing:
        raise ValueError(f"agent {spec!r} has no {' or '.join(missing)} method; see swe_env.agents.Agent")
    if not isinstance(getattr(agent, "name", None), str):
        agent.name = spec
    return agent


__all__ = ["AGENTS", "Agent", "NullAgent", "OpenAIAgent", "OracleAgent", "checked_agent", "make_agent"]
