"""The Docker engine restarts in the middle of a rollout: in-flight episodes are labelled
infrastructure failures, finished ones are kept, and a re-run completes the rest.

This test stops and restarts dockerd, so it runs only where the suite owns the engine:
SWE_ENV_TEST_ENGINE_RESTART=1 (`.ci/run` sets it) and a dockerd that
`scripts/ensure-engine.sh` started itself (it records the pid). A system engine is never touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ..helpers import ROOT, TASKS_DIR

PID_FILE = Path("/var/run/docker.pid")
OURS = Path("/run/swe-env-dockerd.pid")
"""Written by scripts/ensure-engine.sh when it started the running dockerd itself."""


def _engine_is_ours() -> bool:
    try:
        return OURS.read_text().strip() == PID_FILE.read_text().strip()
    except OSError:
        return False


pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(
        os.environ.get("SWE_ENV_TEST_ENGINE_RESTART") != "1" or not _engine_is_ours(),
        reason="restarts dockerd: needs SWE_ENV_TEST_ENGINE_RESTART=1 and a dockerd started by scripts/ensure-engine.sh",
    ),
]


class SlowAgent:
    """Looks around for a few seconds, then submits: long enough to be caught mid-episode."""

    name = "slow"

    def reset(self, observation, info):
        self.steps = 0

    def act(self, observation):
        self.steps += 1
        return {"tool": "bash", "command": "sleep 1.5"} if self.steps <= 3 else {"tool": "submit"}


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _restart_engine() -> None:
    pid = int(PID_FILE.read_text().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure-engine.sh")], check=True, timeout=120, env={**os.environ, "PYTHON": sys.executable})


def test_engine_restart_mid_rollout(tmp_path, docker_client, image):
    out = tmp_path / "trajectories.jsonl"
    run_id = f"engine-restart-{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable,
        "-m",
        "swe_env.cli",
        "rollout",
        "--agent",
        f"{__name__}:SlowAgent",
        "--tasks",
        str(TASKS_DIR),
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    env = {**os.environ, "SWE_ENV_RUN_ID": run_id}
    rollout = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while len(_records(out)) < 2 and rollout.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rollout.poll() is None, "the rollout ended before the engine could be restarted"
        time.sleep(1.0)  # the next episodes are now in flight
        _restart_engine()
        output, _ = rollout.communicate(timeout=600)
    finally:
        if rollout.poll() is None:
            rollout.kill()
    first = _records(out)
    finished = [r for r in first if r["termination"] == "submitted"]
    failed = [r for r in first if r["termination"] != "submitted"]
    assert finished, output[-2000:]
    assert failed, "no episode was in flight when the engine went away"
    assert {r["termination"] for r in failed} <= {"infra_error", "sandbox_died"}, [r["termination"] for r in failed]
    assert all(r["reward"] == 0.0 and not r["resolved"] for r in failed)

    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    records = _records(out)
    done = {r["task_id"] for r in records if r["termination"] == "submitted"}
    tasks = {p.parent.name for p in TASKS_DIR.glob("*/task.yaml")}
    assert done == tasks
    # Episodes finished before the restart were kept, not run again.
    assert sum(r["termination"] == "submitted" for r in records) == len(tasks)
    assert {r["episode_id"] for r in finished} <= {r["episode_id"] for r in records}
    assert not docker_client.containers.list(all=True, filters={"label": f"swe_env.run={run_id}"})
