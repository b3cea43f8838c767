"""Hostile code in the agent's container, against the real engine: contained, noted, survived."""

from __future__ import annotations

import pytest

from swe_env import SWEEnv
from swe_env.build.images import ImageBuilder
from swe_env.data.task import Limits
from swe_env.runtime.sandbox import Sandbox

from ..helpers import fork_bomb_until_stopped, shells_of_ours

pytestmark = pytest.mark.docker


def test_fork_bomb_is_contained_and_the_session_recovers(image, task):
    with Sandbox(image, Limits(pids=64, command_timeout=5), task.environment.workdir) as box:
        container_id = box.container.id
        fork_bomb_until_stopped(box)
        # The same container, not a restarted or new one, and its main process waits out the TTL.
        assert box.container.id == container_id and box.alive()
        assert box.exec("grep -lx sleep /proc/[0-9]*/comm | wc -l").stdout.strip() == "1"
        assert shells_of_ours(box) == {str(box.shell.pid): "0"}  # one shell of ours: the session's new one


def test_memory_hog_is_killed_and_said_so(image, task):
    with Sandbox(image, Limits(memory="256m"), task.environment.workdir) as box:
        result = box.run("python3 -c 'b = bytearray(1024 * 1024 * 1024)'; echo rc=$?", timeout=60)
        assert "rc=137" in result.output
        assert any("memory limit (256m)" in note for note in result.notes)
        assert box.run("echo still here").output == "still here\n"


def test_disk_filler_ends_the_episode_with_a_clear_reason(task, image):
    tight = task.model_copy(update={"limits": task.limits.model_copy(update={"disk": "50m", "max_steps": 40})})
    env = SWEEnv(tasks=[tight])
    try:
        env.reset(options={"task_id": task.id})
        # The check runs after a command that took over a second (on a loaded machine, the fill itself)
        # or every few steps: the episode ends at whichever step that is.
        commands = ["head -c 80000000 /dev/zero > /tmp/fill", *["true"] * 12]
        for command in commands:
            observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": command})
            if truncated:
                break
        assert truncated and not terminated and reward == 0.0
        assert "disk limit of 50m" in observation and "disk limit" in info["error"]
        assert env.trajectory.termination == "disk_limit"
    finally:
        env.close()


def test_no_network_no_dns_no_privileges_no_host_mounts(image, task, docker_client):
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        probe = (
            "python3 - <<'PY'\n"
            "import socket, urllib.request\n"
            "for what, call in [('dns', lambda: socket.getaddrinfo('pypi.org', 443)),\n"
            "                   ('tcp', lambda: socket.create_connection(('151.101.0.223', 443), timeout=3)),\n"
            "                   ('http', lambda: urllib.request.urlopen('http://deb.debian.org', timeout=3))]:\n"
            "    try:\n"
            "        call(); print(what, 'REACHED')\n"
            "    except Exception as exc:\n"
            "        print(what, 'blocked', type(exc).__name__)\n"
            "PY"
        )
        output = box.run(probe, timeout=30).output
        assert output.count("blocked") == 3 and "REACHED" not in output
        assert box.run("ls /var/run/docker.sock /run/docker.sock 2>&1 | grep -c 'No such'").output.strip() == "2"
        attrs = docker_client.api.inspect_container(box.id)
        host = attrs["HostConfig"]
        assert host["NetworkMode"] == "none" and not host["Privileged"]
        assert not host.get("CapAdd") and "NET_RAW" in host["CapDrop"]
        assert not attrs["Mounts"] and not host.get("Binds")


def test_agent_runs_as_non_root_when_the_task_says_so(task, docker_client):
    as_agent = task.model_copy(update={"id": f"{task.id}-as-agent", "environment": task.environment.model_copy(update={"user": "agent"})})
    as_agent._source = task.source
    env = SWEEnv(tasks=[as_agent])
    try:
        env.reset(options={"task_id": as_agent.id})
        assert env.step({"tool": "bash", "command": "id -un"})[0].startswith("agent\n")
        env.step({"tool": "create", "path": "made_by_tool.txt", "content": "x"})
        env.step({"tool": "create", "path": "big_by_tool.txt", "content": "y" * 100_000})  # the large-payload path
        owners = env.step({"tool": "bash", "command": "stat -c %U made_by_tool.txt big_by_tool.txt; echo more >> big_by_tool.txt"})[0]
        assert owners.startswith("agent\nagent\n") and "[exit code 0]" in owners
        assert "Permission denied" in env.step({"tool": "bash", "command": "touch /etc/owned"})[0]
        _obs, reward, terminated, _trunc, info = env.step({"tool": "submit"})
        assert terminated and info["report"]["status"] == "graded"
        assert "+++ b/made_by_tool.txt" in env.trajectory.diff
    finally:
        env.close()
    assert ImageBuilder().instance_tag(as_agent) != ImageBuilder().instance_tag(task)


def test_hidden_tests_never_reach_the_agent_container(task, image):
    env = SWEEnv(tasks=[task])
    try:
        env.reset(options={"task_id": task.id})
        names = [t.split("::")[-1] for t in task.tests.fail_to_pass]
        hidden_line = next(
            line[1:] for line in task.tests.test_patch.splitlines() if line.startswith("+") and not line.startswith("+++") and "def test_" in line
        )
        for needle in [*names, hidden_line.strip()]:
            places = "/testbed /tmp /root /home /opt /run /srv /var /etc /usr/local"
            found, *_ = env.step({"tool": "bash", "command": f"grep -rlsF -- {needle!r} {places} | head -3"})
            assert found.strip() == "[exit code 0]", f"{needle!r} found in the agent's container: {found}"
        observation, *_ = env.step({"tool": "bash", "command": "ls /run/swe-env-grader 2>&1"})
        assert "No such file" in observation
    finally:
        env.close()
