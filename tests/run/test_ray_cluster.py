"""Rollouts, evaluations and validations on a Ray cluster of several nodes: real raylets on this machine
(`ray.cluster_utils.Cluster`), the real engine, which all the nodes share here. Placement across nodes,
results equal to the thread backend's, a node or a worker lost mid-run (its jobs run again elsewhere,
each written once), nothing leaked."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter

import pytest

from swe_env import evaluate
from swe_env.data.trajectory import read_trajectories
from swe_env.importers.swebench import Prediction
from swe_env.run.evaluate import instance_dir
from swe_env.run.ray_jobs import _Placement
from swe_env.run.rollout import RolloutProgress, rollout
from swe_env.run.validation import validate_tasks
from swe_env.runtime import engine

from ..helpers import run_containers

cluster_utils = pytest.importorskip("ray.cluster_utils", reason="ray is not installed (pip install -e '.[ray]')")
import ray  # noqa: E402 - after the skip

pytestmark = pytest.mark.docker

NODE = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024}
"""One episode at a time per node (the bundled tasks ask for one CPU), a small object store."""


class SleepyAgent:
    """Loaded by `package.module:Class` on the workers: sleeps in a few commands (so episodes are in
    flight long enough to lose a node under them), then submits."""

    def reset(self, observation, info):
        self.left = 6

    def act(self, observation):
        self.left -= 1
        return {"tool": "bash", "command": "sleep 0.5"} if self.left >= 0 else {"tool": "submit"}


@pytest.fixture(scope="module")
def cluster():
    """A head that runs no episodes (no CPUs: only the driver and Ray's own services) and two worker nodes."""
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0})
    workers = [cluster.add_node(**NODE) for _ in range(2)]
    cluster.wait_for_nodes()
    cluster.episode_nodes = {node.node_id for node in workers}
    yield cluster
    cluster.shutdown()


def outcome(trajectory):
    return (
        trajectory.task_id,
        trajectory.episode_index,
        trajectory.termination,
        trajectory.resolved,
        trajectory.reward,
        trajectory.diff,
        [step.action for step in trajectory.steps],
    )


def test_cluster_rollout_matches_threads_and_uses_every_node(cluster, tasks, docker_client, tmp_path):
    chosen = tasks[:3]
    threads = rollout(chosen, "oracle", workers=2, out=tmp_path / "threads.jsonl")
    on_ray = rollout(chosen, "oracle", workers=2, out=tmp_path / "ray.jsonl", backend="ray", ray_address=cluster.address)
    assert [outcome(t) for t in on_ray] == [outcome(t) for t in threads]
    assert all(t.resolved for t in on_ray) and {t.node for t in threads} == {None}
    # Both worker nodes found the images (content-hash tags) and got episodes; the head got none.
    assert {t.node for t in on_ray} == cluster.episode_nodes
    assert len(read_trajectories(tmp_path / "ray.jsonl")) == 3
    assert not run_containers(docker_client)


def test_placement_asks_each_node_for_its_images_and_prefers_them(cluster, tasks, image):
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        placement = _Placement(ray, ray.put(tasks), "auto")
        placement.refresh(wait=60)
    finally:
        ray.shutdown()
    assert set(placement.cpus) == cluster.episode_nodes  # the head has no CPUs: it runs no episodes
    # One engine for both nodes here, so both report the image the fixture built.
    assert all(tasks[0].id in placement.images[node] for node in cluster.episode_nodes)
    lacking, having = sorted(cluster.episode_nodes)
    placement.images = {lacking: set(), having: {"built"}}
    assert placement.choose("built", 1) == having and placement.choose("other", 1) == lacking
    placement.used[having] = 1.0
    assert placement.choose("built", 1) == lacking  # the node with the image is full: build where there is room
    placement.used[lacking] = 1.0
    assert placement.choose("built", 1) == having  # no room anywhere: queue where the image is


def test_a_node_lost_mid_run_loses_only_its_episodes(cluster, tasks, docker_client, tmp_path):
    victim = cluster.add_node(**NODE)  # a third node to lose, so the module's two stay
    cluster.wait_for_nodes()
    out = tmp_path / "lost.jsonl"
    removed = threading.Event()

    def lose_the_node_under_an_episode():
        # Placement fills every node that has room first, so three episode containers at once are one
        # on each node: the victim's is in flight.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            episodes = docker_client.containers.list(filters={"label": [f"swe_env.run={engine.RUN_ID}", "swe_env.kind=episode"]})
            if len(episodes) >= 3:
                cluster.remove_node(victim, allow_graceful=False)
                removed.set()
                return
            time.sleep(0.1)

    killer = threading.Thread(target=lose_the_node_under_an_episode, daemon=True)
    killer.start()
    progress: list[RolloutProgress] = []
    results = rollout(
        tasks[:4],
        f"{__name__}:SleepyAgent",
        workers=3,
        out=out,
        backend="ray",
        ray_address=cluster.address,
        on_progress=lambda p: progress.append(RolloutProgress(**vars(p))),
    )
    killer.join()
    assert removed.is_set(), "the episodes never ran on three nodes at once"
    written = read_trajectories(out)
    assert Counter((t.task_id, t.episode_index) for t in written) == {(task.id, 0): 1 for task in tasks[:4]}
    assert [t.termination for t in results] == ["submitted"] * 4
    assert progress[-1].retried >= 1 and progress[-1].done == 4 and progress[-1].failed == 0
    assert victim.node_id not in {t.node for t in written}  # what it ran was lost, and ran again elsewhere
    assert not run_containers(docker_client)  # the lost worker's containers too (found by their attempt label)


def slow(task, seconds: float = 4.0):
    """The task with a test command that waits first, so a grading is in flight long enough to lose it."""
    return task.model_copy(update={"tests": task.tests.model_copy(update={"command": f"sleep {seconds:g}; {task.tests.command}"})})


def kill_a_worker_under(docker_client, labels: list[str], killed: list[int], seconds: float = 180) -> None:
    """SIGKILL the Ray worker process that started the first container carrying `labels` (its owner label
    names the process), while that container runs: the worker dies mid-job."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for container in docker_client.containers.list(filters={"label": labels}):
            host, _, pid = container.labels["swe_env.owner"].rpartition(":")
            if int(pid) != os.getpid():
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.05)


def test_cluster_evaluate_matches_threads_and_writes_each_instance_once(cluster, tasks, docker_client, tmp_path):
    chosen = tasks[:3]
    predictions = [Prediction(instance_id=t.id, model_name_or_path="m", model_patch=t.gold_patch) for t in chosen]
    predictions.append(Prediction(instance_id=tasks[3].id, model_name_or_path="m", model_patch=""))
    threads = evaluate(chosen + tasks[3:4], predictions, "threads", max_workers=2, report_dir=tmp_path / "threads")
    seen = []
    on_ray = evaluate(
        chosen + tasks[3:4],
        predictions,
        "ray",
        max_workers=2,
        report_dir=tmp_path / "ray",
        backend="ray",
        ray_address=cluster.address,
        on_result=seen.append,
    )
    assert [(r.instance_id, r.outcome) for r in on_ray.results] == [(r.instance_id, r.outcome) for r in threads.results]
    assert [r.outcome for r in on_ray.results] == ["resolved"] * 3 + ["empty_patch"]
    assert sorted(r.instance_id for r in seen) == sorted(t.id for t in chosen + tasks[3:4])
    ray_report, thread_report = on_ray.reports["m"], threads.reports["m"]
    assert {k: v for k, v in ray_report.items()} == thread_report
    for task in chosen:  # the driver wrote every file of every graded instance
        folder = instance_dir(tmp_path / "ray", "ray", "m", task.id)
        assert json.loads((folder / "report.json").read_text())[task.id]["resolved"] is True
        assert (folder / "patch.diff").read_text() == task.gold_patch
        assert ">>>>> End Test Output" in (folder / "test_output.txt").read_text()
    # A re-run on the cluster grades nothing: every instance is cached from its report.json.
    again = evaluate(chosen, predictions[:3], "ray", max_workers=2, report_dir=tmp_path / "ray", backend="ray", ray_address=cluster.address)
    assert {r.status for r in again.results} == {"cached"}
    assert not run_containers(docker_client)


def test_cluster_evaluate_regrades_what_a_killed_worker_was_grading(cluster, tasks, docker_client, tmp_path):
    chosen = [slow(task) for task in tasks[:3]]
    predictions = [Prediction(instance_id=t.id, model_name_or_path="m", model_patch=t.gold_patch) for t in chosen]
    killed: list[int] = []
    killer = threading.Thread(
        target=kill_a_worker_under,
        daemon=True,
        args=(docker_client, [f"swe_env.run={engine.RUN_ID}", "swe_env.kind=grader", "swe_env.evaluation=lost"], killed),
    )
    killer.start()
    seen = []
    result = evaluate(
        chosen, predictions, "lost", max_workers=2, report_dir=tmp_path, backend="ray", ray_address=cluster.address, on_result=seen.append
    )
    killer.join()
    assert killed, "no grading was seen in flight"
    # The killed worker's instance was graded again elsewhere: every instance once, all resolved.
    assert Counter(r.instance_id for r in seen) == {t.id: 1 for t in chosen}
    assert [r.outcome for r in result.results] == ["resolved"] * 3
    assert result.reports["m"]["resolved_ids"] == sorted(t.id for t in chosen)
    assert not run_containers(docker_client)  # the lost attempt's grader too (found by its attempt label)


def test_cluster_validate_matches_threads_and_survives_a_killed_worker(cluster, tasks, docker_client):
    chosen = tasks[:2]
    threads = validate_tasks(chosen, workers=2)
    on_ray = validate_tasks(chosen, workers=2, backend="ray", ray_address=cluster.address)
    assert [(v.task_id, v.verdict, v.gold.resolved, v.empty.resolved) for v in on_ray] == [
        (v.task_id, v.verdict, v.gold.resolved, v.empty.resolved) for v in threads
    ]
    assert {v.verdict for v in on_ray} == {"valid"}

    slowed = [slow(task, 3) for task in chosen]
    killed: list[int] = []
    killer = threading.Thread(
        target=kill_a_worker_under, daemon=True, args=(docker_client, [f"swe_env.run={engine.RUN_ID}", "swe_env.kind=grader"], killed)
    )
    killer.start()
    seen = []
    lost = validate_tasks(slowed, workers=2, backend="ray", ray_address=cluster.address, on_result=seen.append)
    killer.join()
    assert killed, "no grading was seen in flight"
    assert Counter(v.task_id for v in seen) == {t.id: 1 for t in chosen}
    assert [v.verdict for v in lost] == ["valid", "valid"]
    assert not run_containers(docker_client)
