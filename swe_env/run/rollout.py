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
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym

from ..runtime import engine
from ..agents import Agent, checked_agent, make_agent
from ..config import ImagesMode
from ..env import SWEEnv
from .. import endings
from ..errors import FAILED_ENDINGS, RETRYABLE_ENDINGS, InfrastructureError
from ..build.images import ImageBuilder, image_exists
from ..data.task import Task
from ..data.trajectory import Trajectory, TrajectoryWriter, finished_keys

Backend = Literal["thread", "ray"]
RAY_RETRIES = 2
"""How many times an episode whose Ray worker or node was lost is run again (on any node) before it is
written as an `infra_error`."""


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


def run_episode(env: gym.Env, agent: Agent, task_id: str, episode_index: int | None = None,
                should_stop: Callable[[], bool] | None = None) -> Trajectory:
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
        raise TypeError(f"{type(env).__name__} has no get_trajectory(): run_episode needs a SWEEnv or RemoteSWEEnv "
                        "(or one of them under gymnasium wrappers)")
    return get_trajectory()


def _env_method(env: Any, name: str) -> Callable | None:
    """A method of the env or of the env under its wrappers (gymnasium 1.x wrappers do not forward attributes)."""
    try:
        return env.get_wrapper_attr(name) if hasattr(env, "get_wrapper_attr") else getattr(env, name)
    except AttributeError:
        return getattr(getattr(env, "unwrapped", None), name, None)


def play(env: gym.Env, agent: Agent, agent_name: str, task_id: str, episode_index: int,
         should_stop: Callable[[], bool] | None = None) -> Trajectory:
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
        return _failed(task_id, agent_name, getattr(agent, "model", None), episode_index, exc,
                       time.monotonic() - started, partial)


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
    jobs = [(task.id, index) for task in tasks for index in range(episodes_per_task)
            if (agent, model, task.id, index) not in done_before]
    progress = RolloutProgress(total=len(tasks) * episodes_per_task,
                               skipped=len(tasks) * episodes_per_task - len(jobs))
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
        run = _thread_rollout if backend == "thread" else functools.partial(
            _ray_rollout, retries=ray_retries, on_retry=retried)
        run(tasks, agent, agent_options, env_options, jobs, workers, emit, ray_address)
    order: dict[tuple[str, int | None], int] = {(task.id, index): n for n, (task, index) in enumerate((t, i) for t in tasks for i in range(episodes_per_task))}
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


def _ray_episode(tasks: list[Task], agent: str, agent_options: dict, env_options: dict, task_id: str,
                 episode_index: int, attempt: str) -> str:
    """One episode as a Ray task on whichever node runs it; the trajectory goes back as JSON.

    Every container of the episode carries `swe_env.attempt=<attempt>`, so what a lost worker left
    can be found and removed by that label alone."""
    import ray

    with engine.labelled(attempt=attempt):
        env = SWEEnv(tasks, agent_name=agent, **env_options)
        try:
            player = make_agent(agent, tasks, **agent_options)
            trajectory = play(env, player, agent, task_id, episode_index)
        finally:
            env.close()
    trajectory.node = ray.get_runtime_context().get_node_id()
    return trajectory.model_dump_json()


def _images_here(tasks: list[Task], images_mode: ImagesMode) -> list[str]:
    """The ids of the tasks whose image this node's engine already has (run pinned to each node)."""
    builder, found = ImageBuilder(images=images_mode), []
    for task in tasks:
        try:
            published = task.environment.image if images_mode != "build" else None
            if image_exists(published or builder.instance_tag(task)):
                found.append(task.id)
        except Exception:  # noqa: BLE001 - no engine or no mirror here: the node builds when it gets the task
            pass
    return found


@dataclass
class _Attempt:
    task_id: str
    index: int
    tries: int
    label: str
    node: str | None = None
    cpus: float = 1.0


class _Placement:
    """Where the driver sends an episode: a node whose engine has the task's image and has room, else a
    node with room (it builds the image), else one with the image (soft affinity: Ray places it
    elsewhere when that node is gone). What each node has is asked once per node, by a Ray task pinned
    to it; an episode that ends on a node adds its task there."""

    def __init__(self, ray, tasks_ref, images_mode: ImagesMode):
        self.ray, self.tasks_ref, self.images_mode = ray, tasks_ref, images_mode
        self.cpus: dict[str, float] = {}
        self.images: dict[str, set[str]] = {}
        self.used: dict[str, float] = {}
        self._probes: dict[Any, str] = {}
        self._refreshed = 0.0
        self._probe = ray.remote(num_cpus=0, max_retries=0)(_images_here)

    def refresh(self, wait: float = 0.0) -> None:
        """Follow nodes joining and leaving; ask new ones which images they have (waiting up to `wait`)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        alive = {node["NodeID"]: node["Resources"].get("CPU", 0.0) for node in self.ray.nodes()
                 if node.get("Alive") and node["Resources"].get("CPU", 0.0) > 0}
        for node in set(self.cpus) - set(alive):
            for table in (self.cpus, self.images, self.used):
                table.pop(node, None)
        for node, cpus in alive.items():
            if node not in self.cpus:
                self.cpus[node], self.images[node], self.used[node] = cpus, set(), 0.0
                strategy = NodeAffinitySchedulingStrategy(node, soft=False)
                self._probes[self._probe.options(scheduling_strategy=strategy).remote(self.tasks_ref, self.images_mode)] = node
        self._refreshed = time.monotonic()
        self.collect(wait)

    def collect(self, wait: float = 0.0) -> None:
        """Take the answers of the nodes' image checks that are in; every 5 s look at the nodes again."""
        if time.monotonic() - self._refreshed > 5:
            self.refresh()
            return
        ready, _ = self.ray.wait(list(self._probes), num_returns=len(self._probes), timeout=wait) if self._probes else ([], [])
        for ref in ready:
            node = self._probes.pop(ref)
            try:
                self.images.get(node, set()).update(self.ray.get(ref))
            except Exception:  # noqa: BLE001 - a node that cannot answer is taken to have nothing
                pass

    def choose(self, task_id: str, cpus: float) -> str | None:
        nodes = sorted(self.cpus, key=lambda node: (self.used[node] / self.cpus[node], node))
        has = [node for node in nodes if task_id in self.images[node]]
        room = [node for node in nodes if self.cpus[node] - self.used[node] >= cpus]
        for group in ([node for node in has if node in room], room, has):
            if group:
                return group[0]
        return None

    def take(self, attempt: _Attempt) -> dict:
        """Ray options placing `attempt` (on the chosen node, softly), counted as running there."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        attempt.node = self.choose(attempt.task_id, attempt.cpus)
        if attempt.node is None:
            return {}
        self.used[attempt.node] += attempt.cpus
        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(attempt.node, soft=True)}

    def done(self, attempt: _Attempt, ran_on: str | None = None) -> None:
        if attempt.node in self.used:
            self.used[attempt.node] -= attempt.cpus
        if ran_on in self.images:
            self.images[ran_on].add(attempt.task_id)


def _ray_rollout(tasks, agent, agent_options, env_options, jobs, workers, emit, ray_address,
                 retries: int = RAY_RETRIES, on_retry: Callable[[], None] | None = None) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray: pip install 'swe-env[ray]' (or pip install 'ray>=2.9')") from None
    started_here = not ray.is_initialized()
    if started_here:
        # Containers started by Ray workers carry this run's label, like the driver's own.
        runtime_env = {"env_vars": {"SWE_ENV_RUN_ID": engine.RUN_ID}}
        local = {"num_cpus": max(workers, os.cpu_count() or 1)} if ray_address is None else {}
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env, **local)
    by_id = {task.id: task for task in tasks}
    remote = ray.remote(max_retries=0)(_ray_episode)
    tasks_ref = ray.put(tasks)
    placement = _Placement(ray, tasks_ref, env_options.get("images", "auto"))
    queue = deque(_Attempt(task_id, index, 0, uuid.uuid4().hex[:16], cpus=by_id[task_id].limits.cpus)
                  for task_id, index in jobs)
    pending: dict[Any, _Attempt] = {}
    lost: list[_Attempt] = []
    try:
        placement.refresh(wait=60)
        while queue or pending:
            while queue and len(pending) < max(1, workers):
                attempt = queue.popleft()
                # A task reserves the CPUs its container may use on the node that runs it.
                ref = remote.options(num_cpus=attempt.cpus, **placement.take(attempt)).remote(
                    tasks_ref, agent, agent_options, env_options, attempt.task_id, attempt.index, attempt.label)
                pending[ref] = attempt
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            placement.collect()
            for ref in ready:
                attempt = pending.pop(ref)
                try:
                    trajectory = Trajectory.model_validate_json(ray.get(ref))
                except Exception as exc:  # noqa: BLE001 - the episode returned nothing: see _ray_cause
                    placement.done(attempt)
                    lost.append(attempt)
                    _remove_attempt(attempt)
                    trajectory = _failed(attempt.task_id, agent, None, attempt.index, _ray_cause(ray, exc), 0.0)
                    if trajectory.termination in RETRYABLE_ENDINGS and attempt.tries < retries:
                        # Lost with its worker or node: run again (elsewhere, once Ray drops the node).
                        queue.appendleft(_Attempt(attempt.task_id, attempt.index, attempt.tries + 1,
                                                  uuid.uuid4().hex[:16], cpus=attempt.cpus))
                        placement.refresh()
                        if on_retry is not None:
                            on_retry()
                        continue
                else:
                    placement.done(attempt, trajectory.node)
                emit(trajectory)
    except BaseException:
        # Ctrl-C: a cancelled Ray task gets KeyboardInterrupt, so its env closes its containers.
        for ref in pending:
            ray.cancel(ref)
        if pending:
            ray.wait(list(pending), num_returns=len(pending), timeout=120)
        lost += pending.values()
        raise
    finally:
        for attempt in lost:  # again: a worker killed while it started a container may have left one since
            _remove_attempt(attempt)
        if started_here:
            ray.shutdown()


def _ray_cause(ray, exc: Exception) -> Exception:
    """What a Ray task that returned no trajectory failed of: the exception our code raised (a
    `RayTaskError`'s cause, judged by `_failed` like any other), else Ray's own failure (worker or
    node lost: `NodeDiedError`, `WorkerCrashedError`, ...), which is infrastructure."""
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, Exception):
        return exc.cause
    return _RayFailure(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _remove_attempt(attempt: _Attempt) -> None:
    """Remove the containers of a lost attempt, found by its label alone (on this machine's engine: on
    another machine they end by their TTL or `swe-env gc` there)."""
    try:
        engine.collect_garbage(everything=True, labels={"run": engine.RUN_ID, "attempt": attempt.label})
    except Exception:  # noqa: BLE001 - no engine here: the TTL and gc on that node catch them
        pass


class _RayFailure(InfrastructureError):
    """A Ray task that returned no trajectory (worker or node lost)."""


# ---------------------------------------------------------------- failures


def _failed(task_id: str, agent: str, model: str | None, episode_index: int | None, exc: Exception,
            seconds: float, partial: Trajectory | None = None) -> Trajectory:
    base = partial.model_copy(deep=True) if partial is not None else Trajectory(
        task_id=task_id, agent=agent, episode_id=uuid.uuid4().hex[:16])
    return base.model_copy(update={
        "model": model if model is not None else base.model,
        "episode_index": episode_index,
        "termination": endings.judge("outside", exc).name,
        "error": f"{type(exc).__name__}: {exc}",
        "seconds": round(seconds, 3),
    })
