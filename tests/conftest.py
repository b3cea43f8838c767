"""Shared fixtures. Tests that touch containers use the real Docker engine, never a mock."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from swe_env import SWEEnv
from swe_env.runtime import engine
from swe_env.build.images import ImageBuilder
from swe_env.data.task import Task, load_tasks

ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = ROOT / "tasks"


@pytest.fixture(scope="session")
def docker_client():
    """The real engine; the suite fails loudly (it does not skip) when none answers."""
    return engine.client()


@pytest.fixture(scope="session")
def tasks() -> list[Task]:
    return load_tasks(TASKS_DIR)


@pytest.fixture(scope="session")
def task(tasks) -> Task:
    return tasks[0]


@pytest.fixture(scope="session")
def image(docker_client, task) -> str:
    return ImageBuilder().ensure(task)


@pytest.fixture(scope="session", autouse=True)
def no_leaked_containers():
    """After the whole suite, no managed container of this run may remain."""
    yield
    if engine._client is None:  # no test reached the engine
        return
    left = engine.client().containers.list(
        all=True, filters={"label": [f"{engine.MANAGED_LABEL}=1", f"swe_env.run={engine.RUN_ID}"]}
    )
    names = [c.name for c in left if c.status != "removing"]
    assert not names, f"containers leaked by the test suite: {names}"


def write_task(folder: Path, text: str) -> Path:
    """Write a task.yaml into folder/<name>/ and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "task.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def env(task, image):
    """A fresh env over the first bundled task, closed after the test."""
    environment = SWEEnv(tasks=[task])
    yield environment
    environment.close()


def free_port() -> int:
    """A loopback port nothing listens on now (for a server a test starts, or a dead endpoint)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answers(url: str, process: subprocess.Popen, seconds: float) -> bool:
    """Poll `url` until it answers (True), or `process` exited or `seconds` passed (False)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.2)
