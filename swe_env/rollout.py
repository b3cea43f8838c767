"""Running many episodes: one env per worker thread, one trajectory per episode.

An agent's crash or an infrastructure failure ends that episode with a labelled
trajectory (termination `agent_error` / `infra_error`); the other episodes go on.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .agents import Agent, make_agent
from .engine import EngineUnavailable
from .env import SWEEnv
from .images import ImageBuildError
from .repos import RepoError
from .sandbox import SandboxError
from .task import Task
from .trajectory import Trajectory, TrajectoryWriter


def run_episode(env: SWEEnv, agent: Agent, task_id: str) -> Trajectory:
    """Play one episode of `agent` on `task_id` to its end and return its trajectory."""
    observation, info = env.reset(options={"task_id": task_id})
    agent.reset(observation, info)
    while True:
        started = time.monotonic()
        action = agent.act(observation)
        env.note_agent_seconds(time.monotonic() - started)
        observation, _reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return env.trajectory


def rollout(
    tasks: list[Task],
    agent: str,
    episodes_per_task: int = 1,
    workers: int = 2,
    out: str | Path | None = None,
    on_episode: Callable[[Trajectory], None] | None = None,
    **env_options: Any,
) -> list[Trajectory]:
    """Run `episodes_per_task` episodes of the named agent on every task, `workers` at a time.

    Trajectories are appended to `out` (JSONL) as episodes finish and returned in task order.
    """
    writer = TrajectoryWriter(out) if out else None
    jobs = [task.id for task in tasks for _ in range(episodes_per_task)]
    local = threading.local()
    envs: list[SWEEnv] = []
    envs_lock = threading.Lock()

    def worker_env() -> tuple[SWEEnv, Agent]:
        if not hasattr(local, "env"):
            local.env = SWEEnv(tasks, agent_name=agent, **env_options)
            local.agent = make_agent(agent, tasks)
            with envs_lock:
                envs.append(local.env)
        return local.env, local.agent

    def one(task_id: str) -> Trajectory:
        started = time.monotonic()
        try:
            env, player = worker_env()
            trajectory = run_episode(env, player, task_id)
        except Exception as exc:  # noqa: BLE001 - one failed episode must not end the run
            trajectory = _failed(task_id, agent, exc, time.monotonic() - started)
        if writer is not None:
            writer.write(trajectory)
        if on_episode is not None:
            on_episode(trajectory)
        return trajectory

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="swe-env-rollout") as pool:
            return list(pool.map(one, jobs))
    finally:
        for env in envs:
            env.close()


def _failed(task_id: str, agent: str, exc: Exception, seconds: float) -> Trajectory:
    infrastructure = isinstance(exc, (EngineUnavailable, ImageBuildError, RepoError, SandboxError, OSError))
    return Trajectory(
        task_id=task_id,
        agent=agent,
        episode_id=uuid.uuid4().hex[:16],
        termination="infra_error" if infrastructure else "agent_error",
        error=f"{type(exc).__name__}: {exc}",
        seconds=round(seconds, 3),
    )
