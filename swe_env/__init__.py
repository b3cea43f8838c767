"""swe-env: a Dockerized, gym-style environment for software-engineering agents.

    import gymnasium as gym
    import swe_env

    env = gym.make("swe_env/SWE-v0", tasks="tasks")
    observation, info = env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "ls"})
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here

if "swe_env/SWE-v0" not in registry:
    register(id="swe_env/SWE-v0", entry_point="swe_env.env:SWEEnv")

# The public names load on first use (PEP 562), so `import swe_env.client` on a trainer's machine
# loads the client and the env's options, not the engine's SDK, the grader or the image builder.
_PUBLIC = {
    "EnvConfig": "config", "SWEEnv": "env", "evaluate": "evaluate", "Grader": "grading", "GradingReport": "grading",
    "rollout": "rollout", "run_episode": "rollout", "Task": "task", "load_tasks": "task", "RemoteSWEEnv": "client",
}
__all__ = ["EnvConfig", "Grader", "GradingReport", "RemoteSWEEnv", "SWEEnv", "Task", "evaluate", "load_tasks", "rollout",
           "run_episode"]

if TYPE_CHECKING:
    from .client import RemoteSWEEnv
    from .config import EnvConfig
    from .env import SWEEnv
    from .evaluate import evaluate
    from .grading import Grader, GradingReport
    from .rollout import rollout, run_episode
    from .task import Task, load_tasks


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'swe_env' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # `swe_env.rollout` and `swe_env.evaluate` are functions, as they were when this file imported them
        # eagerly; loading the submodule of the same name must not replace them (the submodule stays in
        # sys.modules: `importlib.import_module("swe_env.rollout")`).
        if isinstance(value, types.ModuleType) and _PUBLIC.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
