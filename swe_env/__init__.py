"""swe-env: a Dockerized, gym-style environment for software-engineering agents.

    import gymnasium as gym
    import swe_env

    env = gym.make("swe_env/SWE-v0", tasks="tasks")
    observation, info = env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "ls"})
"""

from gymnasium.envs.registration import register, registry

from .env import EnvConfig, SWEEnv
from .evaluate import evaluate
from .grading import Grader, GradingReport
from .rollout import rollout, run_episode
from .task import Task, load_tasks

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here

if "swe_env/SWE-v0" not in registry:
    register(id="swe_env/SWE-v0", entry_point="swe_env.env:SWEEnv")

__all__ = ["EnvConfig", "Grader", "evaluate", "GradingReport", "SWEEnv", "Task", "load_tasks", "rollout", "run_episode"]
