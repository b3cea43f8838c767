"""Gymnasium vector envs over SWEEnv: sync and async, Gymnasium's defaults, real containers.

`AsyncVectorEnv` uses shared memory by default; `CodeText` has its own layout there
(`swe_env.spaces`), so observations are the env's own text, any Unicode, step after step.
"""

from __future__ import annotations

import copy
import multiprocessing

import gymnasium
import pytest
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory

from swe_env import SWEEnv
from swe_env.runtime import engine
from swe_env.spaces import CodeText, SharedTextBatch

pytestmark = pytest.mark.docker

# Two-, three- and four-byte UTF-8, a combining accent and an emoji: printed by bash in the container.
UNICODE = ["café ☕ naïve", "日本語 — ñ 𝄞 😀 e\u0301"]


def test_shared_memory_layout_round_trips_any_string():
    space = CodeText(max_length=8)
    memory = create_shared_memory(space, n=3, ctx=multiprocessing.get_context("spawn"))
    view = read_from_shared_memory(space, memory, n=3)
    assert isinstance(view, SharedTextBatch) and tuple(view) == ("", "", "")
    texts = ["😀" * 8, "a\udcffb\x00", ""]  # 4-byte characters at max_length; a lone surrogate and NUL
    for index, text in enumerate(texts):
        write_to_shared_memory(space, index, text, memory)
    assert copy.deepcopy(view) == tuple(texts) and view[-1] == "" and view[0:2] == tuple(texts[:2])
    write_to_shared_memory(space, 0, "short", memory)  # a shorter text leaves nothing of the longer one
    assert view[0] == "short"
    with pytest.raises(ValueError, match="max_length"):
        write_to_shared_memory(space, 1, "x" * 9, memory)
    with pytest.raises(TypeError):
        write_to_shared_memory(space, 1, b"bytes", memory)


def _printf(text: str) -> dict:
    return {"tool": "bash", "command": "printf '%s\\n' " + "'" + text.replace("'", "'\\''") + "'"}


def _no_containers_left(docker_client, containers):
    assert not [c for c in containers if docker_client.containers.list(all=True, filters={"id": c})]


def _drive(vector, task):
    """Reset, two Unicode steps, submit, then Gymnasium's next-step autoreset and a step after it."""
    containers = set()
    observations, info = vector.reset(seed=[0, 1])
    assert isinstance(observations, tuple) and len(observations) == 2
    assert all(isinstance(o, str) and task.problem_statement.strip()[:30] in o for o in observations)
    containers.update(info["container_id"])
    assert len(containers) == 2

    observations, rewards, terminated, truncated, _ = vector.step(tuple(_printf(t) for t in UNICODE))
    assert [o.split("\n")[0] for o in observations] == UNICODE
    assert list(rewards) == [0.0, 0.0] and not terminated.any() and not truncated.any()

    # A second step gives new text (not the first one's, nor the reset's), of other lengths.
    second = ["ü", "x" * 3000 + "é"]
    observations, *_ = vector.step(tuple(_printf(t) for t in second))
    assert [o.split("\n")[0] for o in observations] == second

    # Env 0 submits; env 1 keeps working.
    observations, rewards, terminated, truncated, info = vector.step(({"tool": "submit"}, _printf("still here ✓")))
    assert list(terminated) == [True, False] and not truncated.any()
    assert observations[0].startswith("Submitted. The task is not resolved") and not info["report"]["resolved"][0]
    assert observations[1].split("\n")[0] == "still here ✓"

    # Next-step autoreset (Gymnasium's default): env 0's action is ignored, it starts a new episode.
    observations, rewards, terminated, truncated, info = vector.step((_printf("ignored"), _printf("après")))
    assert task.problem_statement.strip()[:30] in observations[0]
    assert observations[1].split("\n")[0] == "après"
    assert list(rewards) == [0.0, 0.0] and not terminated.any()
    containers.update(c for c in info["container_id"] if c)

    observations, *_ = vector.step((_printf("nouveau départ"), {"tool": "submit"}))
    assert observations[0].split("\n")[0] == "nouveau départ"
    return containers


def test_make_vec_async_with_gymnasium_defaults(task, image, docker_client, monkeypatch):
    monkeypatch.setenv("SWE_ENV_RUN_ID", engine.RUN_ID)
    vector = gymnasium.make_vec("swe_env/SWE-v0", num_envs=2, vectorization_mode="async", tasks=[task])
    containers = set()
    try:
        assert isinstance(vector, AsyncVectorEnv) and vector.shared_memory  # Gymnasium's default
        containers = _drive(vector, task)
    finally:
        vector.close()
    _no_containers_left(docker_client, containers)


def test_async_vector_env_defaults_spawn_same_step_autoreset(task, image, docker_client, monkeypatch):
    # Spawned workers import swe_env afresh: the run id makes their containers this run's.
    monkeypatch.setenv("SWE_ENV_RUN_ID", engine.RUN_ID)
    vector = AsyncVectorEnv(
        [lambda: SWEEnv(tasks=[task]) for _ in range(2)], context="spawn", autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP
    )
    containers = []
    try:
        observations, info = vector.reset(seed=[0, 1])
        containers += list(info["container_id"])
        observations, *_ = vector.step(tuple(_printf(t) for t in UNICODE))
        assert [o.split("\n")[0] for o in observations] == UNICODE
        # Same-step autoreset: the final observation rides in info, the new episode's is returned.
        observations, rewards, terminated, _, info = vector.step(({"tool": "submit"}, _printf("ça va")))
        assert list(terminated) == [True, False]
        assert task.problem_statement.strip()[:30] in observations[0]
        assert observations[1].split("\n")[0] == "ça va"
        assert info["final_obs"][0].startswith("Submitted. The task is not resolved")
        assert not info["final_info"]["report"]["resolved"][0]
        containers += [c for c in info["container_id"] if c]
        observations, *_ = vector.step((_printf("encore ∞"), {"tool": "submit"}))
        assert observations[0].split("\n")[0] == "encore ∞"
    finally:
        vector.close()
    _no_containers_left(docker_client, containers)


def test_async_copy_false_is_a_live_view(task, image, docker_client, monkeypatch):
    monkeypatch.setenv("SWE_ENV_RUN_ID", engine.RUN_ID)
    vector = AsyncVectorEnv([lambda: SWEEnv(tasks=[task]) for _ in range(2)], copy=False, context="spawn")
    containers = []
    try:
        _, info = vector.reset(seed=[0, 1])
        containers += list(info["container_id"])
        first, *_ = vector.step((_printf("α"), _printf("β")))
        assert isinstance(first, SharedTextBatch) and [o.split("\n")[0] for o in first] == ["α", "β"]
        kept = copy.deepcopy(first)
        second, *_ = vector.step((_printf("γγ"), _printf("δ")))
        assert second is first  # copy=False hands out the shared buffer itself, like a Box's array
        assert [o.split("\n")[0] for o in first] == ["γγ", "δ"]
        assert isinstance(kept, tuple) and [o.split("\n")[0] for o in kept] == ["α", "β"]
    finally:
        vector.close()
    _no_containers_left(docker_client, containers)


def test_make_vec_sync(task, image, docker_client):
    vector = gymnasium.make_vec("swe_env/SWE-v0", num_envs=2, vectorization_mode="sync", tasks=[task])
    containers = set()
    try:
        assert isinstance(vector, SyncVectorEnv)
        containers = _drive(vector, task)
    finally:
        vector.close()
    _no_containers_left(docker_client, containers)


def test_async_without_shared_memory_still_works(task, image, docker_client, monkeypatch):
    monkeypatch.setenv("SWE_ENV_RUN_ID", engine.RUN_ID)
    vector = AsyncVectorEnv([lambda: SWEEnv(tasks=[task]) for _ in range(2)], shared_memory=False, context="spawn")
    containers = []
    try:
        observations, info = vector.reset(seed=[0, 1])
        containers += list(info["container_id"])
        observations, rewards, terminated, truncated, _ = vector.step(tuple(_printf(t) for t in UNICODE))
        assert [o.split("\n")[0] for o in observations] == UNICODE
        _, rewards, terminated, _, info = vector.step(({"tool": "submit"}, {"tool": "submit"}))
        assert terminated.all() and list(rewards) == [0.0, 0.0]
        assert list(info["report"]["resolved"]) == [False, False]  # vector infos are batched per key
    finally:
        vector.close()
    _no_containers_left(docker_client, containers)
