"""Running many episodes: on worker threads (one env each) or as Ray tasks across machines.

Every episode is known by (agent, model, task, episode index). Finished episodes are appended
to the output file as they end, so a re-run with the same file skips them (`resume`) and only
runs what is missing or ended for reasons that say nothing about the agent (infrastructure).
An agent's crash or an infrastructure failure ends that episode with a labelled trajectory
(termination `agent_error` / `infra_error`); the other episodes go on. On Ray, an episode whose
worker or node was lost is run again on another node (`ray_retries`), and written once. Ctrl-C stops starting
episodes, aborts the running ones, removes their containers, then raises KeyboardInterrupt.

Why one module of this size: the thread and Ray back ends share the episode key, the
resumable output file and the progress display, which are most of the module.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from .. import endings
from ..agents import Agent, checked_agent, make_agent
from ..data.task import Task
from ..data.trajectory import Trajectory, TrajectoryWriter, finished_keys
from ..env import SWEEnv
from ..errors import FAILED_ENDINGS
from . import ray_jobs
from .ray_jobs import RAY_RETRIES, Backend


class Interrupted(Exception):
    """The rollout is stopping; the episode in flight is dropped (it is not written)."""


@dataclass
class RolloutProgress:
    """Counts handed to the progress callback after each episode (and once at the start)."""

    total: int
    skipped: int = 0
    """Episodes found finished in the output file and not run again."""
    done: int = 0
    resolved: int = 0
    failed: int = 0
    """Episodes that ended in an error: the agent's crash, or a failure of ours or of the model's endpoint."""
    retried: int = 0
    """Ray episodes run again because their worker or node was lost (each is written once)."""


def run_episode(
    env: gym.Env, agent: Agent, task_id: str, episode_index: int | None = None, should_stop: Callable[[], bool] | None = None
) -> Trajectory:
    """Play one episode of `agent` on `task_id` to its end and return its trajectory.

    `env` is a `SWEEnv`, a `RemoteSWEEnv`, or either under gymnasium's wrappers (`gymnasium.make`):
    the record comes from the env's public `get_trajectory()`, found through the wrappers. The env
    is reset in the agent's `action_format` when it has one; the agent's `model` and the episode
    index go in as reset options, so the env's own record (and any file it or a server writes) has them.
    """
    options: dict[str, Any] = {"task_id": task_id}
    action_format, model = getattr(agent, "action_format", None), getattr(agent, "model", None)  # optional in Agent
    if action_format:
        options["action_format"] = action_format
    if episode_index is not None:
        options["episode_index"] = episode_index
    if model is not None:
        options["model"] = model
    observation, info = env.reset(options=options)
    note_agent_seconds = _env_method(env, "note_agent_seconds")
    agent.reset(observation, info)
    while True:
        if should_stop is not None and should_stop():
            raise Interrupted
        started = time.monotonic()
        action = agent.act(observation)
        if note_agent_seconds is not None:
            note_agent_seconds(time.monotonic() - started)
        observation, _reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            trajectory = trajectory_of(env)
            if trajectory is None:
                raise RuntimeError("the env has no record of the episode it just ended")
            return trajectory


def trajectory_of(env: gym.Env) -> Trajectory | None:
    """The env's record of its current (or last) episode, through any gymnasium wrappers; raises
    TypeError for an env without `get_trajectory()`."""
    get_trajectory = _env_method(env, "get_trajectory")
    if get_trajectory is None:
        raise TypeError(
            f"{type(env).__name__} has no get_trajectory(): run_episode needs a SWEEnv or RemoteSWEEnv (or one of them under gymnasium wrappers)"
        )
    return get_trajectory()


def _env_method(env: Any, name: str) -> Callable | None:
    """A method of the env or of the env under its wrappers (gymnasium 1.x wrappers do not forward attributes)."""
    try:
        return env.get_wrapper_attr(name) if hasattr(env, "get_wrapper_attr") else getattr(env, name)
    except AttributeError:
        return getattr(getattr(env, "unwrapped", None), name, None)


def play(env: gym.Env, agent: Agent, agent_name: str, task_id: str, episode_index: int, should_stop: Callable[[], bool] | None = None) -> Trajectory:
    """`run_episode`, with an exception turned into a labelled trajectory (keeping the steps so far)."""
    started = time.monotonic()
    try:
        return run_episode(env, agent, task_id, episode_index, should_stop)
    except (Interrupted, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - one failed episode must not end the run
        try:
            partial = trajectory_of(env)
        except Exception:  # noqa: BLE001 - e.g. a server that is gone: no partial record then
            partial = None
        if partial is None or partial.task_id != task_id or partial.episode_index != episode_index:
            partial = None
        return _failed(task_id, agent_name, getattr(agent, "model", None), episode_index, exc, time.monotonic() - started, partial)


def rollout(
    tasks: list[Task],
    agent: str,
    episodes_per_task: int = 1,
    workers: int = 2,
    out: str | Path | None = None,
    on_episode: Callable[[Trajectory], None] | None = None,
    *,
    resume: bool = True,
    on_progress: Callable[[RolloutProgress], None] | None = None,
    backend: Backend = "thread",
    ray_address: str | None = None,
    agent_options: dict[str, Any] | None = None,
    ray_retries: int = RAY_RETRIES,
    **env_options: Any,
) -> list[Trajectory]:
    """Run `episodes_per_task` episodes of an agent (a name or `package.module:Class`) on every task.

    `workers` episodes run at a time: threads in this process, or Ray tasks (`backend="ray"`,
    on the cluster at `ray_address`, or a local Ray started here when None). Trajectories are
    appended to `out` (JSONL) as episodes finish; with `resume`, episodes `out` already holds
    are skipped. Returns the trajectories of the episodes run now, in task order.
    On Ray, an episode goes to a node whose engine has its task's image when one has room, and an
    episode whose worker or node was lost is run again elsewhere, up to `ray_retries` times, and
    written once. `env_options` are `EnvConfig` fields; `agent_options` go to the agent's constructor.
    """
    if backend not in ("thread", "ray"):
        raise ValueError(f"backend must be thread or ray, not {backend!r}")
    agent_options = dict(agent_options or {})
    # Also checks the name, the options and the agent's endpoint, before any container starts.
    model = getattr(checked_agent(agent, tasks, **agent_options), "model", None)
    done_before = finished_keys(out) if (out and resume) else set()
    jobs = [(task.id, index) for task in tasks for index in range(episodes_per_task) if (agent, model, task.id, index) not in done_before]
    progress = RolloutProgress(total=len(tasks) * episodes_per_task, skipped=len(tasks) * episodes_per_task - len(jobs))
    writer = TrajectoryWriter(out) if out else None
    results: dict[tuple[str, int | None], Trajectory] = {}  # by (task, episode index): the record's own fields
    lock = threading.Lock()

    def emit(trajectory: Trajectory) -> None:
        with lock:
            if (trajectory.task_id, trajectory.episode_index) in results:
                return  # never written twice, whatever a backend hands back
            if writer is not None:
                writer.write(trajectory)
            results[(trajectory.task_id, trajectory.episode_index)] = trajectory
            progress.done += 1
            progress.resolved += trajectory.resolved
            progress.failed += trajectory.termination in FAILED_ENDINGS
            if on_episode is not None:
                on_episode(trajectory)
            if on_progress is not None:
                on_progress(progress)

    def retried() -> None:
        with lock:
            progress.retried += 1
            if on_progress is not None:
                on_progress(progress)

    if on_progress is not None:
        on_progress(progress)
    if jobs:
        run = _thread_rollout if backend == "thread" else functools.partial(_ray_rollout, retries=ray_retries, on_retry=retried)
        run(tasks, agent, agent_options, env_options, jobs, workers, emit, ray_address)
    order: dict[tuple[str, int | None], int] = {
        (task.id, index): n for n, (task, index) in enumerate((t, i) for t in tasks for i in range(episodes_per_task))
    }
    return [results[job] for job in sorted(results, key=order.__getitem__)]


# ---------------------------------------------------------------- threads


class _Jobs:
    """The jobs left; a worker gets another episode of its last task when there is one, which
    lets a warm pool (`warm_pool` env option) hand it a ready container."""

    def __init__(self, jobs: list[tuple[str, int]]):
        self._jobs = deque(jobs)
        self._lock = threading.Lock()

    def take(self, last_task: str | None) -> tuple[str, int] | None:
        with self._lock:
            if not self._jobs:
                return None
            for job in self._jobs:
                if job[0] == last_task:
                    self._jobs.remove(job)
                    return job
            return self._jobs.popleft()


def _thread_rollout(tasks, agent, agent_options, env_options, jobs, workers, emit, _ray_address) -> None:
    queue = _Jobs(jobs)
    stop = threading.Event()
    envs: list[SWEEnv] = []
    envs_lock = threading.Lock()

    def worker() -> None:
        env, player, last = None, None, None
        while not stop.is_set():
            job = queue.take(last)
            if job is None:
                return
            if env is None:
                env = SWEEnv(tasks, agent_name=agent, **env_options)
                with envs_lock:
                    if stop.is_set():
                        return
                    envs.append(env)
            try:
                player = player or make_agent(agent, tasks, **agent_options)
                trajectory = play(env, player, agent, job[0], job[1], stop.is_set)
            except Interrupted:
                return
            except Exception as exc:  # noqa: BLE001 - e.g. an agent that cannot be built: labelled, run goes on
                trajectory = _failed(job[0], agent, None, job[1], exc, 0.0)
            if stop.is_set():
                return  # aborted by Ctrl-C: the episode is not finished, so it is not recorded
            emit(trajectory)
            last = job[0]

    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))), thread_name_prefix="swe-env-rollout")
    futures = [pool.submit(worker) for _ in range(max(1, min(workers, len(jobs))))]
    try:
        # Short waits: between them Python runs signal handlers, so Ctrl-C is seen at once.
        while wait(futures, timeout=0.5).not_done:
            pass
        for future in futures:
            future.result()
    except BaseException:
        # Ctrl-C: stop taking jobs and end the running episodes by removing their containers;
        # `finally` then waits for the workers and closes again what they were still starting.
        stop.set()
        _close_all(envs, envs_lock)
        raise
    finally:
        pool.shutdown(wait=True)
        _close_all(envs, envs_lock)


def _close_all(envs: list[SWEEnv], lock: threading.Lock) -> None:
    with lock:
        current = list(envs)
    for env in current:
        try:
            env.close()
        except Exception:  # noqa: BLE001 - closing the others matters more
            pass


# ---------------------------------------------------------------- Ray


def _ray_episode(tasks: list[Task], agent: str, agent_options: dict, env_options: dict, task_id: str, episode_index: int) -> str:
    """One episode as a Ray job (`ray_jobs.run_jobs`) on whichever node runs it; the trajectory goes back as JSON."""
    env = SWEEnv(tasks, agent_name=agent, **env_options)
    try:
        player = make_agent(agent, tasks, **agent_options)
        trajectory = play(env, player, agent, task_id, episode_index)
    finally:
        env.close()
    return trajectory.model_dump_json()


def _ray_rollout(
    tasks, agent, agent_options, env_options, jobs, workers, emit, ray_address, retries: int = RAY_RETRIES, on_retry: Callable[[], None] | None = None
) -> None:
    by_id = {task.id: task for task in tasks}

    def done(job: ray_jobs.Job, value: str, node: str) -> None:
        trajectory = Trajectory.model_validate_json(value)
        trajectory.node = node
        emit(trajectory)

    def lost(job: ray_jobs.Job, cause: Exception) -> None:
        task_id, index = job.key
        emit(_failed(task_id, agent, None, index, cause, 0.0))

    ray_jobs.run_jobs(
        _ray_episode,
        tasks,
        [
            ray_jobs.Job((task_id, index), task_id, (agent, agent_options, env_options, task_id, index), cpus=by_id[task_id].limits.cpus)
            for task_id, index in jobs
        ],
        done,
        lost,
        workers=workers,
        ray_address=ray_address,
        images_mode=env_options.get("images", "auto"),
        retries=retries,
        on_retry=None if on_retry is None else (lambda _job: on_retry()),
    )


# ---------------------------------------------------------------- failures


def _failed(
    task_id: str, agent: str, model: str | None, episode_index: int | None, exc: Exception, seconds: float, partial: Trajectory | None = None
) -> Trajectory:
    base = partial.model_copy(deep=True) if partial is not None else Trajectory(task_id=task_id, agent=agent, episode_id=uuid.uuid4().hex[:16])
    return base.model_copy(
        update={
            "model": model if model is not None else base.model,
            "episode_index": episode_index,
            "termination": endings.judge("outside", exc).name,
            "error": f"{type(exc).__name__}: {exc}",
            "seconds": round(seconds, 3),
        }
    )
