"""Rollouts on a Ray cluster of several nodes: real raylets on this machine (`ray.cluster_utils.Cluster`),
the real engine, which all the nodes share here. Placement across nodes, results equal to the thread
backend's, a node lost mid-run (its episodes run again elsewhere, each written once), nothing leaked."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from swe_env.runtime import engine
from swe_env.run.rollout import RolloutProgress, _Placement, rollout
from swe_env.data.trajectory import read_trajectories

from .helpers import run_containers

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
    return (trajectory.task_id, trajectory.episode_index, trajectory.termination, trajectory.resolved,
            trajectory.reward, trajectory.diff, [step.action for step in trajectory.steps])


def test_cluster_rollout_matches_threads_and_uses_every_node(cluster, tasks, docker_client, tmp_path):
    chosen = tasks[:3]
    threads = rollout(chosen, "oracle", workers=2, out=tmp_path / "threads.jsonl")
    on_ray = rollout(chosen, "oracle", workers=2, out=tmp_path / "ray.jsonl", backend="ray",
                     ray_address=cluster.address)
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
            episodes = docker_client.containers.list(
                filters={"label": [f"swe_env.run={engine.RUN_ID}", "swe_env.kind=episode"]})
            if len(episodes) >= 3:
                cluster.remove_node(victim, allow_graceful=False)
                removed.set()
                return
            time.sleep(0.1)

    killer = threading.Thread(target=lose_the_node_under_an_episode, daemon=True)
    killer.start()
    progress: list[RolloutProgress] = []
    results = rollout(tasks[:4], "tests.test_ray_cluster:SleepyAgent", workers=3, out=out, backend="ray",
                      ray_address=cluster.address, on_progress=lambda p: progress.append(RolloutProgress(**vars(p))))
    killer.join()
    assert removed.is_set(), "the episodes never ran on three nodes at once"
    written = read_trajectories(out)
    assert Counter((t.task_id, t.episode_index) for t in written) == {(task.id, 0): 1 for task in tasks[:4]}
    assert [t.termination for t in results] == ["submitted"] * 4
    assert progress[-1].retried >= 1 and progress[-1].done == 4 and progress[-1].failed == 0
    assert victim.node_id not in {t.node for t in written}  # what it ran was lost, and ran again elsewhere
    assert not run_containers(docker_client)  # the lost worker's containers too (found by their attempt label)
