"""gymnasium.vector.AsyncVectorEnv over SWEEnv: each env in its own process, real containers."""

from __future__ import annotations

import pytest
from gymnasium.vector import AsyncVectorEnv

from swe_env import SWEEnv, engine

pytestmark = pytest.mark.docker


def test_async_vector_env_steps_two_envs(task, image, docker_client, monkeypatch):
    # Spawned workers import swe_env afresh: the run id makes their containers this run's.
    monkeypatch.setenv("SWE_ENV_RUN_ID", engine.RUN_ID)
    # The observation space is free text, which has no shared-memory layout: shared_memory=False.
    vector = AsyncVectorEnv([lambda: SWEEnv(tasks=[task]) for _ in range(2)], shared_memory=False, context="spawn")
    try:
        observations, info = vector.reset(seed=[0, 1])
        assert len(observations) == 2 and all(task.problem_statement.strip()[:30] in o for o in observations)
        containers = list(info["container_id"])
        assert len(set(containers)) == 2
        observations, rewards, terminated, truncated, _ = vector.step(
            ({"tool": "bash", "command": "echo one"}, '{"tool": "bash", "command": "echo two"}'))
        assert observations[0].startswith("one\n") and observations[1].startswith("two\n")
        assert list(rewards) == [0.0, 0.0] and not terminated.any() and not truncated.any()
        _, rewards, terminated, _, info = vector.step(({"tool": "submit"}, {"tool": "submit"}))
        assert terminated.all() and list(rewards) == [0.0, 0.0]
        assert list(info["report"]["resolved"]) == [False, False]  # vector infos are batched per key
    finally:
        vector.close()
    assert not [c for c in containers if docker_client.containers.list(all=True, filters={"id": c})]
