"""Rollouts on the real engine: parallel episodes, resume, progress, Ctrl-C, warm pool, Ray."""

from __future__ import annotations

import _thread
import json
import threading

import gymnasium as gym
import pytest

from swe_env import SWEEnv
from swe_env.agents import OracleAgent
from swe_env.data.trajectory import TrajectoryWriter, read_trajectories
from swe_env.run.rollout import play, rollout, run_episode

from ..helpers import check_openai_chat, ctrl_c_handled, run_containers

pytestmark = pytest.mark.docker


class SlowAgent:
    """Loaded by `package.module:Class`: a few slow commands, then submit."""

    def __init__(self, steps: int = 3):
        self.steps = steps

    def reset(self, observation, info):
        self.left = self.steps

    def act(self, observation):
        self.left -= 1
        return {"tool": "bash", "command": "sleep 0.3"} if self.left >= 0 else {"tool": "submit"}


def test_rollout_resumes_reports_progress_and_exports(tasks, docker_client, tmp_path):
    chosen, out = tasks[:2], tmp_path / "t.jsonl"
    seen = []
    results = rollout(
        chosen,
        "oracle",
        episodes_per_task=2,
        workers=4,
        out=out,
        warm_pool=1,
        on_progress=lambda p: seen.append((p.done, p.resolved, p.failed, p.skipped)),
    )
    assert [(t.task_id, t.episode_index, t.resolved, t.reward) for t in results] == [
        (task.id, index, True, 1.0) for task in chosen for index in (0, 1)
    ]
    assert seen[0] == (0, 0, 0, 0) and seen[-1] == (4, 4, 0, 0)
    assert len(read_trajectories(out)) == 4 and all(t.steps and t.diff for t in read_trajectories(out))

    # An infrastructure failure in the file is run again; finished episodes are skipped.
    broken = results[0].model_copy(update={"episode_index": 2, "termination": "infra_error", "resolved": False})
    TrajectoryWriter(out).write(broken)
    seen.clear()
    again = rollout(chosen, "oracle", episodes_per_task=3, workers=2, out=out, on_progress=lambda p: seen.append((p.done, p.skipped)))
    assert sorted((t.task_id, t.episode_index) for t in again) == [(task.id, 2) for task in chosen]
    assert seen[-1] == (2, 4)

    from swe_env.exports import export

    chat = tmp_path / "chat.jsonl"
    assert export([out], chat, "chat") == (6, 6)
    for line in chat.read_text().splitlines():
        check_openai_chat(json.loads(line))
    assert not run_containers(docker_client)


class CrashingOracle(OracleAgent):
    """The oracle with a model name, which crashes on its second action."""

    model = "crash-model"

    def act(self, observation):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 2:
            raise RuntimeError("the agent fell over")
        return super().act(observation)


def test_run_episode_and_play_under_gymnasium_make(task, image, docker_client, tmp_path):
    """gymnasium.make wraps the env (OrderEnforcing, PassiveEnvChecker), whose attributes the wrappers
    do not forward: the record comes through get_trajectory(), and the env's own file has the same."""
    out = tmp_path / "env.jsonl"
    env = gym.make("swe_env/SWE-v0", tasks=[task], agent_name="oracle", trajectory_path=str(out))
    try:
        assert env is not env.unwrapped and not hasattr(env, "trajectory")
        with_model = type("ModelOracle", (OracleAgent,), {"model": "oracle-model"})([task])
        trajectory = run_episode(env, with_model, task.id, episode_index=7)
        assert (trajectory.task_id, trajectory.model, trajectory.episode_index) == (task.id, "oracle-model", 7)
        assert trajectory.resolved and trajectory.termination == "submitted" and trajectory.diff
        assert all(step.agent_seconds is not None for step in trajectory.steps)
        # a copy: changing it does not change the env's record
        trajectory.steps.clear()
        assert env.unwrapped.get_trajectory().steps
        # an agent that crashes mid-episode: a labelled record keeping the steps so far
        failed = play(env, CrashingOracle([task]), "oracle", task.id, 8)
        assert failed.termination == "agent_error" and "fell over" in failed.error
        assert (failed.episode_index, failed.model, len(failed.steps)) == (8, "crash-model", 1)
    finally:
        env.close()
    written = read_trajectories(out)
    assert [(t.episode_index, t.model, t.termination) for t in written] == [(7, "oracle-model", "submitted"), (8, "crash-model", "closed")]
    assert not run_containers(docker_client)


def test_ctrl_c_leaves_no_container_and_only_finished_episodes(tasks, docker_client, tmp_path):
    out = tmp_path / "t.jsonl"
    finished = threading.Event()

    def interrupt(_trajectory):
        if not finished.is_set():
            finished.set()
            _thread.interrupt_main()  # what Ctrl-C does

    with ctrl_c_handled(), pytest.raises(KeyboardInterrupt):
        rollout(tasks[:3], f"{__name__}:SlowAgent", episodes_per_task=2, workers=2, out=out, on_episode=interrupt, agent_options={"steps": 4})
    assert not run_containers(docker_client)
    written = read_trajectories(out)
    assert 1 <= len(written) < 6 and all(t.termination == "submitted" for t in written)
    assert len(out.read_text().splitlines()) == len(written)


def test_warm_pool_hands_out_started_containers_and_close_removes_them(task, image, docker_client):
    env = SWEEnv(tasks=[task], warm_pool=1)
    try:
        env.reset(options={"task_id": task.id})
        assert env._pool.wait_until_full(120)
        first = env.sandbox.id
        _observation, info = env.reset(options={"task_id": task.id})
        assert (env._pool.hits, env._pool.misses) == (1, 1) and info["container_id"] != first
        observation, *_ = env.step({"tool": "bash", "command": "echo warm"})
        assert observation.startswith("warm\n")
        assert env._pool.wait_until_full(120) and len(run_containers(docker_client)) == 2  # the episode + one ready
    finally:
        env.close()
    assert not run_containers(docker_client)


def test_ray_backend_gives_the_same_results(tasks, docker_client, tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    out = tmp_path / "ray.jsonl"
    results = rollout(tasks[:2], "oracle", episodes_per_task=1, workers=2, out=out, backend="ray")
    assert [(t.task_id, t.episode_index, t.resolved, t.reward, t.termination) for t in results] == [
        (task.id, 0, True, 1.0, "submitted") for task in tasks[:2]
    ]
    assert [t.episode_id for t in read_trajectories(out)] and len(read_trajectories(out)) == 2
    assert not run_containers(docker_client)
