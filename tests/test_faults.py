"""Faults: the host process interrupted or killed, containers killed from outside, bad images."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from .helpers import ROOT, TASKS_DIR, ctrl_c_reaches_it

pytestmark = pytest.mark.docker

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from swe_env import SWEEnv
    from swe_env.runtime.sandbox import Sandbox, handle_termination_signals
    from swe_env.build.images import ImageBuilder
    from swe_env.data.task import Limits, load_tasks

    phase, tasks_dir = sys.argv[1], sys.argv[2]
    task = load_tasks(tasks_dir)[0]
    if phase == "ttl":
        box = Sandbox(ImageBuilder().ensure(task), Limits(), task.environment.workdir, ttl_seconds=4).start()
        print("READY", box.id, flush=True)
        time.sleep(600)
    handle_termination_signals()
    env = SWEEnv(tasks=[task])
    try:
        if phase == "reset":
            print("READY", flush=True)
            while True:
                env.reset(options={"task_id": task.id})
        env.reset(options={"task_id": task.id})
        print("READY", env.sandbox.id, flush=True)
        if phase == "step":
            env.step({"tool": "bash", "command": "sleep 300"})
        elif phase == "grading":
            while True:
                env.grader.grade(task, task.gold_patch)
    finally:
        env.close()
    """
)


def _start(phase: str, run_id: str) -> subprocess.Popen:
    env = {**os.environ, "SWE_ENV_RUN_ID": run_id, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, phase, str(TASKS_DIR)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    line = proc.stdout.readline()
    assert line.startswith("READY"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def _left(docker_client, run_id: str) -> list[str]:
    # One list call: the SDK's list() inspects each container and fails on one removed meanwhile.
    found = docker_client.api.containers(all=True, filters={"label": f"swe_env.run={run_id}"})
    return [c["Names"][0].lstrip("/") for c in found]


@pytest.mark.parametrize("phase", ["reset", "step", "grading"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_host_process_leaves_no_container(docker_client, image, phase, signum):
    run_id = f"fault-{phase}-{uuid.uuid4().hex[:8]}"
    proc = _start(phase, run_id)
    time.sleep(0.8)  # let it get into the phase: reset loop, a long step, or a grading run
    proc.send_signal(signum)
    proc.wait(timeout=120)
    assert _left(docker_client, run_id) == []


def _sigkilled_in(phase: str, docker_client) -> str:
    """Start the script in `phase`, SIGKILL it (no cleanup can run), return its run id."""
    run_id = f"fault-{phase}-{uuid.uuid4().hex[:8]}"
    proc = _start(phase, run_id)
    proc.kill()
    proc.wait(timeout=30)
    assert _left(docker_client, run_id), "the container should outlive its SIGKILLed owner"
    return run_id


def test_sigkilled_host_leaves_nothing_past_the_ttl(docker_client, image):
    run_id = _sigkilled_in("ttl", docker_client)
    deadline = time.monotonic() + 60
    while _left(docker_client, run_id) and time.monotonic() < deadline:
        time.sleep(1)
    assert _left(docker_client, run_id) == []


def test_gc_removes_containers_of_dead_owners(docker_client, image):
    run_id = _sigkilled_in("step", docker_client)
    result = subprocess.run([sys.executable, "-m", "swe_env.cli", "gc"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert _left(docker_client, run_id) == []


BUILD_SCRIPT = textwrap.dedent(
    """
    import sys
    from swe_env.build.images import ImageBuilder
    from swe_env.runtime.sandbox import handle_termination_signals
    from swe_env.data.task import load_tasks

    marker, tasks_dir = sys.argv[1], sys.argv[2]
    task = load_tasks(tasks_dir)[0]
    slow = task.model_copy(update={
        "id": f"{task.id}-slow-build",
        "environment": task.environment.model_copy(update={"install": [f"sleep 30 # {marker}"]}),
    })
    slow._source = task.source
    handle_termination_signals()
    print("READY", ImageBuilder().instance_tag(slow), flush=True)
    ImageBuilder().ensure(slow)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_image_build_leaves_no_container_and_no_tag(docker_client, image, signum):
    marker = f"interrupted-build-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        [sys.executable, "-c", BUILD_SCRIPT, marker, str(TASKS_DIR)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    line = proc.stdout.readline()
    assert line.startswith("READY"), proc.stderr.read() if proc.poll() is not None else line
    tag = line.split()[1]

    def build_containers() -> list:
        # The builder's intermediate container runs the install step: its command names the marker.
        return [c for c in docker_client.api.containers(all=True) if marker in (c.get("Command") or "")]

    deadline = time.monotonic() + 60
    while not build_containers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert build_containers(), "the build never reached its slow step"
    proc.send_signal(signum)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 60  # the engine cancels the build when its client goes away
    while build_containers() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert build_containers() == []
    assert not docker_client.images.list(filters={"reference": tag})


def test_an_agent_that_stops_its_own_container_fails_its_episode(task, image):
    """Killing the container's main process from the agent's shell: the engine's record shows it came from inside,
    so the episode is the agent's failure (`sandbox_killed`, -1 in signed mode, not retried), not `sandbox_died`."""
    from swe_env import SWEEnv
    from swe_env.data.trajectory import RETRYABLE_ENDINGS

    env = SWEEnv(tasks=[task], reward_mode="signed")
    try:
        env.reset(options={"task_id": task.id})
        kill = (
            "for p in /proc/[0-9]*; do case \"$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\" in *swe-env-main*) kill -9 ${p#/proc/};; esac; done; sleep 5"
        )
        _, reward, terminated, truncated, info = env.step({"tool": "bash", "command": kill})
        assert truncated and not terminated and reward == -1.0, info
        assert env.trajectory.termination == "sandbox_killed" and "sandbox_killed" not in RETRYABLE_ENDINGS
        assert "stopped the container" in info["error"]
    finally:
        env.close()
