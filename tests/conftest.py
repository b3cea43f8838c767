"""Shared fixtures (helpers are in helpers.py). Tests that touch containers use the real Docker engine, never a mock."""

from __future__ import annotations

import os

import pytest

from swe_env import SWEEnv
from swe_env.build.images import ImageBuilder
from swe_env.data.task import Task, load_tasks
from swe_env.runtime import engine

from .helpers import TASKS_DIR

# The fixture every container (and every image build) of the suite goes through, directly or through another
# fixture (`image`, `env`, the server's, ...). pytest lists a test's whole fixture closure, so one name suffices.
ENGINE_FIXTURE = "docker_client"
# Where the unit run (`-m "not docker"`) points the Docker SDK: nothing listens there, so a test that reaches the
# engine without saying so fails with the engine's one-line message instead of passing by luck on a machine that
# has one. Subprocesses (the CLI) inherit it.
NO_ENGINE = "unix:///nonexistent/swe-env-unit-run.sock"


def pytest_configure(config):
    if "not docker" in (config.getoption("markexpr", "") or ""):
        os.environ["DOCKER_HOST"] = NO_ENGINE


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark `docker` every test that uses the engine's fixture, so the marker follows the fixtures, not memory."""
    for item in items:
        if ENGINE_FIXTURE in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


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
    left = engine.client().containers.list(all=True, filters={"label": [f"{engine.MANAGED_LABEL}=1", f"swe_env.run={engine.RUN_ID}"]})
    names = [c.name for c in left if c.status != "removing"]
    assert not names, f"containers leaked by the test suite: {names}"


@pytest.fixture
def env(task, image):
    """A fresh env over the first bundled task, closed after the test."""
    environment = SWEEnv(tasks=[task])
    yield environment
    environment.close()
