"""Every wait on untrusted work has a host-side deadline enforced through the engine, and whose fault a
failure is follows the evidence (issue 23, principles 4 and 5), on the real engine: code that stops every
process in its container (`kill -STOP -1`, the in-container `timeout` and the time-to-live loop included)
neither stalls the host nor becomes an infrastructure failure."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from swe_env import SWEEnv
from swe_env.data.task import Limits
from swe_env.errors import classify_ending
from swe_env.grading.grader import Grader
from swe_env.runtime import engine
from swe_env.runtime.sandbox import DeadlineExceeded, Sandbox

from ..helpers import with_code as _with_code

pytestmark = pytest.mark.docker

# Run during pytest's collection in the grader's container: a shell stops every process in the
# container but itself (the kill builtin's caller), pytest, the in-container `timeout`, the wrapper and
# the container's main process (its time-to-live loop) included, then exits.
STOP_EVERYTHING = """
import os as _os, sys as _sys
if "pytest" in _sys.modules:
    _os.system("kill -STOP -1")
"""
HANG = "import time as _time\n_time.sleep(3600)\n"


def _graders_left(docker_client, probe: str) -> list[str]:
    found = docker_client.api.containers(all=True, filters={"label": f"swe_env.probe={probe}"})
    return [c["Names"][0].lstrip("/") for c in found if c.get("State") != "removing"]


def _grade_bounded(grader: Grader, task, patch: str, image: str, bound: float = 600):
    """`grader.grade` on a thread: a grading that never ends fails the test instead of hanging the suite
    (a guard against a hang, not a measure of speed)."""
    done: list = []
    worker = threading.Thread(target=lambda: done.append(grader.grade(task, patch, image=image)), daemon=True)
    worker.start()
    worker.join(bound)
    assert done, f"grading did not end within {bound:g} s"
    return done[0]


@pytest.mark.parametrize("code", ["stop_everything", "hang"])
def test_tests_that_stop_or_hang_grade_as_the_models_timeout(task, image, docker_client, code):
    """With the real fix too: the run never ends by itself (every process stopped, or a sleep), so the
    host's deadline ends it through the engine; a timeout of the code under test is the model's failure
    (-1 in signed mode, never an excluded infrastructure failure), the report says so, no container stays."""
    _alone, with_fix = _with_code(image, task, STOP_EVERYTHING if code == "stop_everything" else HANG)
    quick = task.model_copy(update={"limits": task.limits.model_copy(update={"grading_timeout": 5})})
    probe = uuid.uuid4().hex[:12]
    report = _grade_bounded(Grader(reward_mode="signed", labels={"probe": probe}), quick, with_fix, image)
    assert report.status == "timeout" and not report.infrastructure_failure, (report.status, report.error)
    assert not report.resolved and report.reward == -1.0
    assert "exceeded the grading timeout of 5 s" in report.error and "counts as a failure" in report.error
    if code == "stop_everything":
        assert "host's deadline" in report.error, report.error  # the in-container timeout was stopped too
    assert report.report_source == "none" and set(report.test_results.values()) == {"missing"}
    assert _graders_left(docker_client, probe) == []


def test_a_one_off_process_stopped_from_inside_ends_at_the_hosts_deadline(task, image):
    """The command stops the in-container `timeout` and then itself: nothing inside will ever end it. The
    host gives up at its deadline, stops every process through the engine, and the container is usable."""
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        box.run("echo kept > keep.txt")
        with pytest.raises(DeadlineExceeded, match="did not end within its deadline"):
            box.exec(["/bin/bash", "-c", "kill -STOP $PPID $$"], timeout=1)
        assert box.stopped_processes() == 0
        after = box.run("echo alive; cat keep.txt", timeout=10)
        assert after.output == "alive\nkept\n", after


@pytest.mark.parametrize("stop", ["self", "everything"])
def test_an_agent_that_stops_processes_keeps_its_episode(task, stop):
    """`kill -STOP $$` stops the agent's own shell (the step times out, every process is stopped from
    outside and a new shell answers); `kill -STOP -1` stops everything but the shell (the time-to-live
    loop too). Either way the episode goes on and is graded: the agent's doing, never `sandbox_died`."""
    env = SWEEnv(tasks=[task], reward_mode="signed")
    try:
        env.reset(options={"task_id": task.id})
        command = "kill -STOP $$" if stop == "self" else "kill -STOP -1; echo stopped"
        observation, _reward, _terminated, truncated, _info = env.step({"tool": "bash", "command": command, "timeout": 3})
        assert not truncated, (env.trajectory.termination, observation)
        observation, *_ = env.step({"tool": "bash", "command": "echo alive"})
        assert observation.startswith("alive\n"), observation
        _obs, reward, terminated, _truncated, info = env.step({"tool": "submit"})
        assert terminated and info["report"]["status"] == "graded" and reward == -1.0, info["report"]
        assert classify_ending(env.trajectory.termination) == "agent"
    finally:
        env.close()


SPRAY = "(while :; do for f in /proc/[0-9]*/fd/1 /proc/[0-9]*/fd/2; do echo sprayed > $f; done; done) >/dev/null 2>&1 &"


def test_a_process_spraying_into_the_diffs_output_is_the_agents_doing(task):
    """A background process writes into every process's output, the diff's included: whatever it breaks,
    the submission is graded or refused as the agent's (patch_failed), never an infrastructure failure."""
    env = SWEEnv(tasks=[task], reward_mode="signed")
    try:
        env.reset(options={"task_id": task.id})
        env.step({"tool": "bash", "command": SPRAY, "timeout": 5})
        _obs, reward, terminated, _truncated, info = env.step({"tool": "submit"})
        assert terminated and env.trajectory.termination == "submitted", (env.trajectory.termination, info)
        report = info["report"]
        assert report["status"] in ("graded", "patch_failed") and not report["infrastructure_failure"], report
        assert reward == -1.0
    finally:
        env.close()


def test_an_expired_frozen_container_is_removed_from_the_host(task, image, docker_client):
    """Code that stops every process freezes the time-to-live loop inside the container; the host side
    does not depend on it: past the `swe_env.expires` label, `collect_garbage` (`swe-env gc`) removes it."""
    probe = uuid.uuid4().hex[:12]
    box = Sandbox(image, Limits(), task.environment.workdir, labels={"probe": probe}, ttl_seconds=3).start()
    try:
        # From the persistent shell: the kill builtin's caller (that bash) is the one process it spares.
        assert box.run("kill -STOP -1; echo stopped", timeout=10).output == "stopped\n"
        time.sleep(5)  # past the time-to-live: the main process would have ended the container by now
        assert box.alive() and box.stopped_processes() > 0
        removed = engine.collect_garbage(labels={"probe": probe})
        assert box.name in removed
        assert _graders_left(docker_client, probe) == []
    finally:
        box.close()
