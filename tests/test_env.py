"""SWEEnv end to end on the real engine: the gym contract, tools, budgets, trajectories."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import swe_env
from swe_env import SWEEnv
from swe_env.agents import OracleAgent
from swe_env.run.rollout import run_episode

pytestmark = pytest.mark.docker


def _containers(docker_client, container_id):
    return docker_client.containers.list(all=True, filters={"id": container_id})


def test_check_env_passes(task, image):
    environment = SWEEnv(tasks=[task], max_steps=5)
    try:
        check_env(environment, skip_render_check=True)
    finally:
        environment.close()


def test_gym_make_registration(task, image, docker_client):
    environment = gym.make("swe_env/SWE-v0", tasks=[task])
    try:
        observation, info = environment.reset(seed=1)
        assert task.problem_statement.strip()[:40] in observation
        assert info["task_id"] == task.id and _containers(docker_client, info["container_id"])
    finally:
        environment.close()
    assert not _containers(docker_client, info["container_id"])


def test_reset_observation_info_and_no_hidden_tests(env, task, docker_client):
    observation, info = env.reset(options={"task_id": task.id})
    assert "submit" in observation and "/testbed" in observation
    assert set(info) >= {"task_id", "image", "container_id", "episode_id", "max_steps", "tools"}
    hidden = [t.split("::")[-1] for t in task.tests.fail_to_pass]
    for name in hidden:
        where = ["/testbed", "/tmp", "/root", "/opt", "/run"]
        found = env.sandbox.exec(["grep", "-rl", "--", name, *where], idempotent=True)
        assert found.stdout.strip() == "", f"hidden test {name} visible in the agent's container: {found.stdout}"


def test_seeded_reset_is_reproducible(tasks, image):
    environment = SWEEnv(tasks=tasks)
    try:
        picks = [environment.reset(seed=s)[1]["task_id"] for s in (7, 7, 8, 7)]
        assert picks[0] == picks[1] == picks[3]
    finally:
        environment.close()


def test_tools_bad_actions_and_submit(env, task):
    env.reset(options={"task_id": task.id})
    observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "cd /tmp && export A=1"})
    assert reward == 0.0 and not terminated and not truncated
    observation, *_ = env.step({"tool": "bash", "command": "pwd; echo $A"})
    assert "/tmp\n1" in observation and "[exit code 0]" in observation
    observation, *_ = env.step('{"tool": "create", "path": "scratch/notes.txt", "content": "one\\ntwo\\n"}')
    assert "created" in observation
    observation, *_ = env.step({"tool": "edit", "path": "scratch/notes.txt", "old": "two", "new": "three"})
    assert "three" in observation
    observation, *_ = env.step({"tool": "view", "path": "scratch/notes.txt"})
    assert "1\tone" in observation and "2\tthree" in observation
    observation, *_ = env.step({"tool": "create", "path": "scratch/notes.txt", "content": "again"})
    assert observation.startswith("Error:") and "already exists" in observation
    observation, *_ = env.step({"tool": "edit", "path": "scratch/notes.txt", "old": "missing", "new": "x"})
    assert "not found" in observation
    observation, *_ = env.step({"tool": "view", "path": "../../etc/passwd"})
    assert "outside the repository" in observation
    observation, *_ = env.step({"tool": "teleport"})
    assert "unknown tool 'teleport'" in observation
    observation, *_ = env.step({"tool": "edit", "path": "x.py"})
    assert "missing argument" in observation
    observation, *_ = env.step({"tool": "undo_edit", "path": "scratch/notes.txt"})
    assert "restored" in observation
    observation, reward, terminated, truncated, info = env.step({"tool": "submit"})
    assert terminated and not truncated and reward == 0.0
    assert info["report"]["task_id"] == task.id and info["report"]["resolved"] is False
    assert "+++ b/scratch/notes.txt" in env.trajectory.diff
    observation, reward, terminated, *_ = env.step({"tool": "bash", "command": "ls"})
    assert terminated and "episode is over" in observation


def test_edit_reports_ambiguous_matches_with_lines(env, task):
    env.reset(options={"task_id": task.id})
    env.step({"tool": "create", "path": "dup.txt", "content": "x = 1\ny = 2\nx = 1\n"})
    observation, *_ = env.step({"tool": "edit", "path": "dup.txt", "old": "x = 1", "new": "x = 3"})
    assert "occurs 2 times (lines 1, 3)" in observation


def test_max_steps_truncates_and_grades(task, image):
    environment = SWEEnv(tasks=[task], max_steps=2)
    try:
        environment.reset(options={"task_id": task.id})
        *_, truncated, _info = environment.step({"tool": "bash", "command": "true"})
        assert not truncated
        _obs, reward, terminated, truncated, info = environment.step({"tool": "bash", "command": "true"})
        assert truncated and not terminated and reward == 0.0
        assert info["report"]["status"] == "graded"
        assert environment.trajectory.termination == "max_steps"
    finally:
        environment.close()


def test_killed_container_truncates_with_error(env, task, docker_client):
    _obs, info = env.reset(options={"task_id": task.id})
    docker_client.containers.get(info["container_id"]).remove(force=True)
    observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "ls"})
    assert truncated and not terminated and reward == 0.0
    assert "sandbox" in observation.lower() and info["error"]
    observation, info = env.reset(options={"task_id": task.id})
    assert env.step({"tool": "bash", "command": "echo back"})[0].startswith("back")


def test_oracle_episode_is_resolved_and_recorded(tmp_path, task, image):
    path = tmp_path / "t.jsonl"
    environment = SWEEnv(tasks=[task], trajectory_path=str(path), agent_name="oracle")
    try:
        trajectory = run_episode(environment, OracleAgent([task]), task.id)
    finally:
        environment.close()
    assert trajectory.resolved and trajectory.reward == 1.0 and trajectory.termination == "submitted"
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["task_id"] == task.id and record["agent"] == "oracle" and record["resolved"] is True
    assert record["steps"][-1]["action"] == {"tool": "submit"}
    assert all({"action", "observation", "exit_code", "env_seconds"} <= set(step) for step in record["steps"])
    assert record["report"]["resolved"] is True and record["diff"]


def test_public_surface():
    assert {"SWEEnv", "Task", "load_tasks", "Grader", "rollout"} <= set(swe_env.__all__)


@pytest.mark.parametrize("action_format", ["dict", "cwm", "openai"])
def test_action_format_sets_the_instructions(env, task, action_format):
    observation, info = env.reset(options={"task_id": task.id, "action_format": action_format})
    assert info["action_format"] == action_format
    if action_format == "cwm":
        assert "<tool: bash>" in observation and ">>>>>>> REPLACE" in observation
    elif action_format == "dict":
        assert '{"tool": "bash"' in observation
    else:
        assert "function calling" in observation
        assert [s["function"]["name"] for s in info["tool_schemas"]] == info["tools"]
    # every format is accepted whatever was asked for
    assert env.step("<tool: bash>\necho cwm\n</tool>")[0].startswith("cwm")
    call = {"type": "function", "function": {"name": "bash", "arguments": '{"command": "echo fn"}'}}
    assert env.step({"role": "assistant", "tool_calls": [call]})[0].startswith("fn")


def test_edit_preserves_mode_and_crlf_and_undo_restores(env, task):
    env.reset(options={"task_id": task.id})
    env.step({"tool": "bash", "command": "printf 'a = 1\\r\\nb = 2\\r\\n' > crlf.py && chmod 755 crlf.py"})
    observation, *_ = env.step({"tool": "edit", "path": "/testbed/crlf.py", "old": "a = 1\nb = 2", "new": "a = 3\nb = 4"})
    assert "edited" in observation
    observation, *_ = env.step({"tool": "bash", "command": "od -c crlf.py | head -2; stat -c %a crlf.py"})
    assert "3  \\r  \\n" in observation and "755" in observation
    env.step({"tool": "undo_edit", "path": "crlf.py"})
    assert "a = 1" in env.step({"tool": "bash", "command": "cat crlf.py"})[0]


def test_view_directory_and_range_and_binary(env, task):
    env.reset(options={"task_id": task.id})
    listing, *_ = env.step({"tool": "view", "path": "."})
    assert "/testbed/tests" in listing and "/.git/" not in listing
    env.step({"tool": "bash", "command": "seq 1 50 > nums.txt; printf 'ok\\xff\\n' > bin.txt"})
    observation, *_ = env.step({"tool": "view", "path": "nums.txt", "range": [10, 12]})
    assert observation.splitlines() == ["    10\t10", "    11\t11", "    12\t12"]
    observation, *_ = env.step({"tool": "view", "path": "nums.txt", "range": [60, 70]})
    assert "invalid range" in observation
    observation, *_ = env.step({"tool": "view", "path": "bin.txt"})
    assert "ok\ufffd" in observation
    env.step({"tool": "bash", "command": "ln -s loop_b loop_a && ln -s loop_a loop_b"})
    observation, _reward, terminated, truncated, _info = env.step({"tool": "view", "path": "loop_a"})
    assert observation.startswith("Error:") and not terminated and not truncated
    observation, *_ = env.step({"tool": "edit", "path": "loop_a", "old": "a", "new": "b"})
    assert observation.startswith("Error:")
