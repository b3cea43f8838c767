"""docker-compose.yml as a user runs it: build (cached by a tag of the image's inputs), up,
one episode through RemoteSWEEnv, down, and nothing left behind.

Compose v2 (`docker compose`) is used when present, else Debian's docker-compose v1, which
scripts/ensure-engine.sh installs; with neither the test fails rather than skips.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid

import pytest

from swe_env.build import images
from swe_env.client import RemoteSWEEnv

from .helpers import ROOT, TASKS_DIR, containers_of, free_port, wait_healthy, wait_until

pytestmark = pytest.mark.docker

IMAGE_INPUTS = ["images/server/Dockerfile", ".dockerignore", "pyproject.toml", "README.md"]


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed (scripts/ensure-engine.sh installs it)")


def image_tag() -> str:
    """A tag that changes exactly when what the image is built from changes, so a rerun reuses it."""
    digest = hashlib.sha256()
    files = [ROOT / name for name in IMAGE_INPUTS] + sorted((ROOT / "swe_env").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return "test-" + digest.hexdigest()[:16]


def trust_host_ca() -> None:
    """Behind a TLS-intercepting proxy, pip in the build must trust the host's CA bundle."""
    bundle = images.ca_bundle()
    target = ROOT / "images" / "server" / "host-ca.crt"
    if bundle is not None and (not target.exists() or target.read_bytes() != bundle.read_bytes()):
        shutil.copyfile(bundle, target)


def test_compose_stack_serves_an_episode(docker_client, task, image):
    compose = compose_command()
    trust_host_ca()
    project = f"swe-env-test-{uuid.uuid4().hex[:8]}"
    run_id = f"compose-{uuid.uuid4().hex[:10]}"
    token = uuid.uuid4().hex
    port = free_port()
    env = {
        **os.environ,
        "SWE_ENV_TOKEN": token,
        "SWE_ENV_PORT": str(port),
        "SWE_ENV_RUN_ID": run_id,
        "SWE_ENV_SERVER_TAG": image_tag(),
        "SWE_ENV_TASKS": str(TASKS_DIR),
        "SWE_ENV_IDLE_TIMEOUT": "120",
    }

    def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([*compose, "-p", project, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)

    try:
        # `up` builds only when the tag is missing: the first run builds, later runs start at once.
        up = run("up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        url = f"http://127.0.0.1:{port}"

        def health() -> list[str]:
            found = docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
            return [c.attrs["State"].get("Health", {}).get("Status") for c in found]

        # the compose healthcheck itself must pass, not only our own probe
        assert wait_until(lambda: health() == ["healthy"], 120), (health(), run("ps").stdout, run("logs").stdout)
        wait_healthy(url, deadline=30)
        # `swe-env gc` (any process's) must not take the server for an expired task container
        [server_container] = docker_client.containers.list(filters={"label": f"com.docker.compose.project={project}"})
        assert server_container.labels.get("swe_env.managed") != "1"
        remote = RemoteSWEEnv(url, token=token, max_steps=10)
        try:
            observation, info = remote.reset(options={"task_id": task.id})
            assert task.problem_statement.strip()[:40] in observation
            # the task container runs on the host's engine, labelled with the server's run id
            assert [c.id for c in containers_of(docker_client, run_id)] == [info["container_id"]]
            assert remote.step({"tool": "bash", "command": "echo from-compose"})[0].startswith("from-compose")
            _, reward, terminated, _, step_info = remote.step({"tool": "submit"})
            assert terminated and reward == 0.0 and step_info["report"]["status"] == "graded"
        finally:
            remote.close()
        with pytest.raises(PermissionError):
            RemoteSWEEnv(url, token="not-the-token", transport="http").reset(options={"task_id": task.id})
    finally:
        down = run("down", "-v", "--remove-orphans", "-t", "60", timeout=300)
        if down.returncode != 0:  # e.g. a container removed under compose's feet: a second `down` must be clean
            down = run("down", "-v", "--remove-orphans", "-t", "60", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
    assert wait_until(lambda: not containers_of(docker_client, run_id), 30)
