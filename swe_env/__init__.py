"""swe-env: a Dockerized, gym-style environment for software-engineering agents.

    import gymnasium as gym
    import swe_env

    env = gym.make("swe_env/SWE-v0", tasks="tasks")
    observation, info = env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "ls"})

The README shows the rest; docs/architecture.md maps the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here

if "swe_env/SWE-v0" not in registry:
    register(id="swe_env/SWE-v0", entry_point="swe_env.env:SWEEnv")

# The public names load on first use (PEP 562), so `import swe_env.client` on a trainer's machine
# loads the client and the env's options, not the engine's SDK, the grader or the image builder.
_PUBLIC = {
    "EnvConfig": "config",
    "SWEEnv": "env",
    "evaluate": "run.evaluate",
    "Grader": "grading.grader",
    "GradingReport": "grading.grader",
    "rollout": "run.rollout",
    "run_episode": "run.rollout",
    "Task": "data.task",
    "load_tasks": "data.task",
    "RemoteSWEEnv": "client",
}
__all__ = ["EnvConfig", "Grader", "GradingReport", "RemoteSWEEnv", "SWEEnv", "Task", "evaluate", "load_tasks", "rollout", "run_episode"]

if TYPE_CHECKING:
    from .client import RemoteSWEEnv
    from .config import EnvConfig
    from .data.task import Task, load_tasks
    from .env import SWEEnv
    from .grading.grader import Grader, GradingReport
    from .run.evaluate import evaluate
    from .run.rollout import rollout, run_episode


_SUBMODULES = ("tools", "agents", "spaces", "errors", "config")
"""Subpackages reachable as attributes after a bare `import swe_env` (`swe_env.tools.schemas()`, as the README writes)."""


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name not in _PUBLIC:
        raise AttributeError(f"module 'swe_env' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
