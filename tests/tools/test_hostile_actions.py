"""Bad and hostile actions are observations: the episode goes on and nothing outside /testbed is written."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swe_env import SWEEnv

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def env(task, image):
    environment = SWEEnv(tasks=[task], max_steps=10_000, grade_on_truncation=False)
    environment.reset(options={"task_id": task.id})
    yield environment
    environment.close()


def _ok(result) -> str:
    observation, reward, terminated, truncated, info = result
    assert isinstance(observation, str) and isinstance(info, dict)
    assert reward == 0.0 and not terminated and not truncated
    return observation


def test_paths_outside_the_repo_are_refused(env):
    for path in ("../../etc/passwd", "/etc/passwd", "/testbed/../etc/hosts", "a\0b", ""):
        observation = _ok(env.step({"tool": "view", "path": path}))
        assert observation.startswith("Error:"), (path, observation)
    _ok(env.step({"tool": "bash", "command": "ln -sf /etc/passwd out_link && ln -sfn /etc out_dir"}))
    for action in (
        {"tool": "edit", "path": "out_link", "old": "root", "new": "owned"},
        {"tool": "create", "path": "out_dir/evil.conf", "content": "x"},
        {"tool": "view", "path": "out_link"},
        {"tool": "view", "path": "out_dir"},
        {"tool": "undo_edit", "path": "out_link"},
    ):
        observation = _ok(env.step(action))
        assert observation.startswith("Error:") and ("outside the repository" in observation or "no edit" in observation)
    check = _ok(env.step({"tool": "bash", "command": "grep -c owned /etc/passwd; ls /etc/evil.conf 2>&1"}))
    assert check.startswith("0\n") and "No such file" in check
    _ok(env.step({"tool": "bash", "command": "rm -f out_link out_dir"}))


def test_huge_nul_and_invalid_utf8_arguments(env):
    # Over the action space's 1,000,000 characters an argument is refused up front, with the limit;
    # just under it, it is written whole.
    too_big = "x = 1\n" * (10 * 1024 * 1024 // 6)  # a 10 MB edit
    assert "created" in _ok(env.step({"tool": "create", "path": "big.py", "content": "start\nend\n"}))
    refused = _ok(env.step({"tool": "edit", "path": "big.py", "old": "start\n", "new": too_big}))
    assert "over the action space's limit of 1,000,000" in refused and "nothing was run" in refused
    big = "x = 1\n" * (990_000 // 6)
    assert "edited" in _ok(env.step({"tool": "edit", "path": "big.py", "old": "start\n", "new": big}))
    size = _ok(env.step({"tool": "bash", "command": "stat -c %s big.py"}))
    assert size.startswith(str(len(big) + 4))
    assert "\nab\n" in "\n" + _ok(env.step({"tool": "bash", "command": "echo a\0b"}))
    assert "Error" in _ok(env.step({"tool": "create", "path": "nul\0name", "content": "x"}))
    assert _ok(env.step({"tool": "create", "path": "nul_content.txt", "content": "a\0b"})).startswith("created")
    observation = _ok(env.step(b'{"tool": "bash", "command": "echo \xff\xfe ok"}'))
    assert "ok" in observation
    assert _ok(env.step(b"\xff\xfe\x00 not json")).startswith("Error:")
    _ok(env.step({"tool": "bash", "command": "rm -f big.py nul_content.txt"}))


def test_lone_surrogates_are_an_error_observation(env):
    for action in (
        {"tool": "bash", "command": "echo \ud800"},
        {"tool": "create", "path": "s.txt", "content": "\udfff"},
        {"tool": "edit", "path": "s.txt", "old": "x", "new": "\ud800"},
    ):
        observation = _ok(env.step(action))
        assert observation.startswith("Error:") and "invalid Unicode" in observation


def test_a_broken_git_is_the_agents_doing_not_an_infrastructure_failure(task, image):
    for ending in ("submit", "budget"):
        environment = SWEEnv(tasks=[task], max_steps=2)
        try:
            environment.reset(options={"task_id": task.id})
            environment.step({"tool": "bash", "command": "rm -rf .git"})
            action = {"tool": "submit"} if ending == "submit" else {"tool": "bash", "command": "true"}
            _obs, reward, terminated, truncated, info = environment.step(action)
            assert (terminated or truncated) and reward == 0.0
            assert info["report"]["status"] == "patch_failed" and not info["report"]["infrastructure_failure"]
            assert "the agent's work could not be read" in info["report"]["error"]
            assert environment.trajectory.termination in ("submitted", "max_steps")
        finally:
            environment.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
payloads = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    json_values,
    st.fixed_dictionaries(
        {"tool": st.sampled_from(["bash", "edit", "view", "create", "undo_edit", "nope", ""])},
        optional={
            "path": st.text(max_size=30),
            "old": st.text(max_size=20),
            "new": st.text(max_size=20),
            "content": st.text(max_size=30),
            "range": json_values,
            "timeout": json_values,
            "command": st.sampled_from(["true", "echo hi", "exit 3", "cat", "printf '\\x1b[31m'"]),
        },
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=payloads)
def test_step_never_raises_on_random_payloads(env, payload):
    result = env.step(payload)
    assert isinstance(result, tuple) and len(result) == 5
    observation, reward, terminated, truncated, info = result
    assert isinstance(observation, str) and isinstance(reward, float)
    assert isinstance(terminated, bool) and isinstance(truncated, bool) and isinstance(info, dict)
    assert not terminated and not truncated
