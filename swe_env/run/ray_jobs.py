"""Many jobs (episodes, gradings, validations) as Ray tasks across a cluster, each handed back once.

The one Ray backend of `rollout`, `evaluate` and `validate_tasks`. The driver keeps `workers` jobs in
flight, places each on a node whose engine already has its task's image when one has room
(`_Placement`), and hands every job's value to its caller's callback on the driver, which is the only
writer of results (so a result file is written once, whichever node ran the job). A job whose worker
or node was lost (`NodeDiedError`, `WorkerCrashedError`, ...) runs again on another node, up to
`retries` times; the containers of the lost attempt are found by their `swe_env.attempt` label and
removed. Ctrl-C cancels what is in flight (a cancelled task's own `finally` closes its containers),
removes the attempts' containers, and re-raises.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import endings
from ..build.images import ImageBuilder, image_exists
from ..build.registry import ImagesMode
from ..data.task import Task
from ..errors import RETRYABLE_ENDINGS, InfrastructureError
from ..grading.grader import Grader, GradingReport
from ..runtime import engine

Backend = Literal["thread", "ray"]
"""Where many jobs run: threads of this process, or Ray tasks on a cluster."""
RAY_RETRIES = 2
"""How many times a job whose Ray worker or node was lost is run again (on any node) before its caller
records it as an infrastructure failure."""


@dataclass
class Job:
    """One unit of work: `function(tasks, *args)` run on a node, for the task `task_id`."""

    key: Any
    """The caller's name for the job (handed back with its value)."""
    task_id: str
    args: tuple = ()
    cpus: float = 1.0
    """CPUs the job reserves on its node (its container's limit)."""


@dataclass
class _Attempt:
    job: Job
    tries: int = 0
    label: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    node: str | None = None


def ray_module():
    """Ray, or a one-line ValueError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray: pip install 'swe-env[ray]' (or pip install 'ray>=2.9')") from None
    return ray


def _in_attempt(function: Callable, tasks: list[Task], args: tuple, attempt: str) -> tuple[Any, str]:
    """Run one job on a Ray worker: every container it starts carries `swe_env.attempt=<attempt>`, so what a
    lost worker left can be found and removed by that label alone. Returns the value and the node's id."""
    import ray

    with engine.labelled(attempt=attempt):
        value = function(tasks, *args)
    return value, ray.get_runtime_context().get_node_id()


def run_jobs(
    function: Callable[..., Any],
    tasks: list[Task],
    jobs: list[Job],
    on_done: Callable[[Job, Any, str], None],
    on_lost: Callable[[Job, Exception], None],
    *,
    workers: int,
    ray_address: str | None = None,
    images_mode: ImagesMode = "auto",
    retries: int = RAY_RETRIES,
    on_retry: Callable[[Job], None] | None = None,
) -> None:
    """Run every job as a Ray task, `workers` at a time, on the cluster at `ray_address` (a local Ray started
    here when None and none is running).

    `function(tasks, *job.args)` must be importable by the workers (a module-level function) and return a
    picklable value; `on_done(job, value, node_id)` gets it on the driver. A job that returned nothing
    gets `on_lost(job, cause)` once, after its retries: `cause` is our code's exception when that is what
    ended it, else a `RayJobLost` (infrastructure). Callbacks run on the calling thread."""
    ray = ray_module()
    started_here = not ray.is_initialized()
    if started_here:
        # Containers started by Ray workers carry this run's label, like the driver's own.
        runtime_env = {"env_vars": {"SWE_ENV_RUN_ID": engine.RUN_ID}}
        local = {"num_cpus": max(workers, os.cpu_count() or 1)} if ray_address is None else {}
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env, **local)
    remote = ray.remote(max_retries=0)(_in_attempt)
    tasks_ref = ray.put(tasks)
    placement = _Placement(ray, tasks_ref, images_mode)
    queue = deque(_Attempt(job) for job in jobs)
    pending: dict[Any, _Attempt] = {}
    lost: list[_Attempt] = []
    try:
        placement.refresh(wait=60)
        while queue or pending:
            while queue and len(pending) < max(1, workers):
                attempt = queue.popleft()
                # A job reserves the CPUs its container may use on the node that runs it.
                ref = remote.options(num_cpus=attempt.job.cpus, **placement.take(attempt)).remote(
                    function, tasks_ref, attempt.job.args, attempt.label
                )
                pending[ref] = attempt
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            placement.collect()
            for ref in ready:
                attempt = pending.pop(ref)
                try:
                    value, node = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the job returned nothing: see _cause
                    placement.done(attempt)
                    lost.append(attempt)
                    _remove_attempt(attempt)
                    cause = _cause(ray, exc)
                    if endings.judge("outside", cause).name in RETRYABLE_ENDINGS and attempt.tries < retries:
                        # Lost with its worker or node: run again (elsewhere, once Ray drops the node).
                        queue.appendleft(_Attempt(attempt.job, attempt.tries + 1))
                        placement.refresh()
                        if on_retry is not None:
                            on_retry(attempt.job)
                        continue
                    on_lost(attempt.job, cause)
                else:
                    placement.done(attempt, node)
                    on_done(attempt.job, value, node)
    except BaseException:
        # Ctrl-C: a cancelled Ray task gets KeyboardInterrupt, so its env or grader closes its containers.
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


class RayJobLost(InfrastructureError):
    """A Ray task that returned nothing because its worker or node was lost."""


def _cause(ray, exc: Exception) -> Exception:
    """What a Ray task that returned nothing failed of: the exception our code raised (a `RayTaskError`'s
    cause, judged like any other), else Ray's own failure (worker or node lost), which is infrastructure."""
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, Exception):
        return exc.cause
    return RayJobLost(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _remove_attempt(attempt: _Attempt) -> None:
    """Remove the containers of a lost attempt, found by its label alone (on this machine's engine: on
    another machine they end by their TTL or `swe-env gc` there)."""
    try:
        engine.collect_garbage(everything=True, labels={"run": engine.RUN_ID, "attempt": attempt.label})
    except Exception:  # noqa: BLE001 - no engine here: the TTL and gc on that node catch them
        pass


# ---------------------------------------------------------------- gradings on a node


def portable_grader(grader: Grader, builder: ImageBuilder | None = None) -> dict[str, Any]:
    """What a node needs to make a grader like `grader`, building with `builder`'s settings (default: the
    grader's own builder); a grader holds locks and caches, which do not travel."""
    builder = builder or grader.builder
    return {
        "reward_mode": grader.reward_mode,
        "reward_policy": grader.reward_policy,
        "labels": dict(grader.labels),
        "images": builder.images,
        "registry": builder.registry,
        "published_namespace": builder.published_namespace,
    }


def grader_from(portable: dict[str, Any]) -> Grader:
    """The grader `portable_grader` described, made on this node."""
    builder = ImageBuilder(images=portable["images"], registry=portable["registry"], published_namespace=portable["published_namespace"])
    return Grader(reward_mode=portable["reward_mode"], builder=builder, labels=portable["labels"], reward_policy=portable["reward_policy"])


def grade_on_node(tasks: list[Task], grader: dict[str, Any], task_id: str, patch: str | None) -> GradingReport:
    """One grading as a Ray job (`evaluate`'s): builds or finds the image on this node, never raises."""
    return grader_from(grader).grade(next(task for task in tasks if task.id == task_id), patch)


# ---------------------------------------------------------------- placement


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


class _Placement:
    """Where the driver sends a job: a node whose engine has the task's image and has room, else a
    node with room (it builds the image), else one with the image (soft affinity: Ray places it
    elsewhere when that node is gone). What each node has is asked once per node, by a Ray task pinned
    to it; a job that ends on a node adds its task there."""

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

        alive = {
            node["NodeID"]: node["Resources"].get("CPU", 0.0)
            for node in self.ray.nodes()
            if node.get("Alive") and node["Resources"].get("CPU", 0.0) > 0
        }
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

        attempt.node = self.choose(attempt.job.task_id, attempt.job.cpus)
        if attempt.node is None:
            return {}
        self.used[attempt.node] += attempt.job.cpus
        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(attempt.node, soft=True)}

    def done(self, attempt: _Attempt, ran_on: str | None = None) -> None:
        if attempt.node in self.used:
            self.used[attempt.node] -= attempt.job.cpus
        if ran_on in self.images:
            self.images[ran_on].add(attempt.job.task_id)
