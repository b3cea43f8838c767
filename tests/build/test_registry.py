"""Sharing images through a real registry on loopback (Debian's `docker-registry`, started here).

Docker talks plain http to registries on 127.0.0.0/8 without any engine setting. The images are
throw-away ones of this test (a few bytes FROM scratch, named in swe-env's repositories, labelled
with this run's id), removed at the end along with the registry's storage.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swe_env.build import images, registry
from swe_env.build.images import ImageBuilder
from swe_env.cli import app
from swe_env.runtime import engine

from ..helpers import free_port, wait_until_answers
from ..helpers import tar_of as _tar

pytestmark = pytest.mark.docker

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


@pytest.fixture(scope="module")
def live_registry(tmp_path_factory):
    """(HOST:PORT, storage folder) of a registry started for this module and stopped by its pid."""
    if not os.path.exists(REGISTRY):
        pytest.skip("Debian's docker-registry is not installed and scripts/ensure-engine.sh could not install it")
    folder = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = folder / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    log = open(folder / "registry.log", "w")
    process = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_until_answers(f"http://127.0.0.1:{port}/v2/", process, 30):
            pytest.fail(f"docker-registry did not start: {(folder / 'registry.log').read_text()[-500:]}")
        yield f"127.0.0.1:{port}", folder / "data"
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def tiny(docker_client):
    """A factory of throw-away images: (tag, kind, labelled as ours) → tag; all removed after the test."""
    made: list[str] = []
    run = uuid.uuid4().hex[:12]

    def make(name: str, kind: str = "instance", ours: bool = True) -> str:
        tag = f"swe-env/{kind}:regtest-{run}-{name}"
        labels = {"swe_env.test": run}
        if ours:
            labels.update({engine.MANAGED_LABEL: "1", "swe_env.kind": f"image-{kind}"})
        dockerfile = "FROM scratch\nCOPY blob /blob\n"
        error, log = images.build_image(
            tag, labels, fileobj=_tar({"Dockerfile": dockerfile.encode(), "blob": f"{run}-{name}".encode() * 64}), custom_context=True
        )
        assert error is None, f"{error} ({log})"
        made.append(tag)
        return tag

    yield make
    for tag in made:
        try:
            docker_client.images.remove(tag)
        except Exception:  # noqa: BLE001 - pulled and removed by the test already, or never pulled back
            pass


def _forget(docker_client, tag: str) -> None:
    docker_client.images.remove(tag)
    assert not images.image_exists(tag)


def test_push_then_pull_brings_the_image_back_under_its_own_name(docker_client, live_registry, tiny):
    host, _data = live_registry
    tag = tiny("roundtrip")
    image_id = docker_client.images.get(tag).id
    remote = registry.push(tag, f"{host}/team")
    assert remote == f"{host}/team/{tag}"
    _forget(docker_client, tag)
    assert registry.pull(tag, f"{host}/team", "instance") is None
    assert docker_client.images.get(tag).id == image_id
    # Only our own name is left: the registry-qualified one is dropped after the pull.
    assert not any(name.startswith(host) for name in docker_client.images.get(tag).tags)


def test_a_missing_image_a_foreign_image_and_a_registry_that_is_down_are_reasons_not_errors(docker_client, live_registry, tiny):
    host, _data = live_registry
    assert "not found" in (registry.pull(f"swe-env/instance:regtest-absent-{uuid.uuid4().hex[:8]}", host, "instance") or "")
    foreign = tiny("foreign", ours=False)
    registry.push(foreign, host)
    _forget(docker_client, foreign)
    why = registry.pull(foreign, host, "instance")
    assert why is not None and "not a swe-env instance layer" in why and not images.image_exists(foreign)
    down = f"127.0.0.1:{free_port()}"
    why = registry.pull(foreign, down, "instance")
    assert why is not None and not images.image_exists(foreign)


def _blobs(data: Path) -> list[Path]:
    return [path for path in (data / "docker/registry/v2/blobs").rglob("data") if path.is_file()]


def test_a_corrupt_or_partial_image_is_refused_and_leaves_nothing(docker_client, live_registry, tiny):
    host, data = live_registry
    corrupt, partial = tiny("corrupt"), tiny("partial")
    before = set(_blobs(data))
    registry.push(corrupt, f"{host}/c")
    layer = max(set(_blobs(data)) - before, key=lambda path: path.stat().st_size)  # its layer (the config is smaller)
    layer.write_bytes(b"\0" * layer.stat().st_size)  # same size, other bytes: the digest no longer matches
    _forget(docker_client, corrupt)
    why = registry.pull(corrupt, f"{host}/c", "instance")
    assert why is not None and not images.image_exists(corrupt)
    before = set(_blobs(data))
    registry.push(partial, f"{host}/p")
    for blob in set(_blobs(data)) - before:
        blob.unlink()  # the manifest names blobs the registry no longer has
    _forget(docker_client, partial)
    why = registry.pull(partial, f"{host}/p", "instance")
    assert why is not None and not images.image_exists(partial)


def test_the_builder_pulls_an_instance_before_building_and_builds_when_the_registry_is_down(docker_client, live_registry, tasks):
    host, _data = live_registry
    # A task of its own (a distinct install line), so its instance tag is nobody else's.
    install = [*tasks[0].environment.install, f"echo regtest-{uuid.uuid4().hex[:8]}"]
    task = tasks[0].model_copy(update={"environment": tasks[0].environment.model_copy(update={"install": install})})
    notes: list[str] = []
    tag = ImageBuilder().instance_tag(task)
    try:
        # What the registry holds under the task's tag is what ensure returns, with no build: a stand-in of a
        # few bytes here (pushing a real instance would push the 380 MB OS layer under it).
        run = uuid.uuid4().hex[:12]
        error, log = images.build_image(
            tag,
            {engine.MANAGED_LABEL: "1", "swe_env.kind": "image-instance", "swe_env.test": run},
            fileobj=_tar({"Dockerfile": b"FROM scratch\nCOPY blob /blob\n", "blob": run.encode()}),
            custom_context=True,
        )
        assert error is None, f"{error} ({log})"
        image_id = docker_client.images.get(tag).id
        registry.push(tag, host)
        _forget(docker_client, tag)
        assert ImageBuilder(progress=notes.append, registry=host).ensure(task) == tag
        assert docker_client.images.get(tag).id == image_id and not any("building" in note for note in notes), notes
        # `--images build` never asks the registry, and a registry that is down is one note, then the build.
        _forget(docker_client, tag)
        notes.clear()
        down = ImageBuilder(progress=notes.append, registry=f"127.0.0.1:{free_port()}")
        assert down.ensure(task) == tag and docker_client.images.get(tag).id != image_id
        assert any(note.startswith(f"{tag}: not pulled from") and note.endswith("building it") for note in notes), notes
        assert any("building instance layer" in note for note in notes)
    finally:
        if images.image_exists(tag):
            docker_client.images.remove(tag)


def test_images_push_on_the_command_line_and_bad_registry_names(docker_client, live_registry, tiny):
    host, _data = live_registry
    first, second = tiny("cli-a"), tiny("cli-b", kind="env")
    run = docker_client.images.get(first).labels["swe_env.test"]
    result = CliRunner().invoke(app, ["images", "push", "--registry", f"{host}/cli", "--label", f"swe_env.test={run}"])
    assert result.exit_code == 0, result.output
    assert "pushed 2 image(s)" in result.output and f"{host}/cli/{second}" in result.output
    for bad in ("http://127.0.0.1:5000", "team", "127.0.0.1:5000/Team"):
        result = CliRunner().invoke(app, ["images", "push", "--registry", bad])
        assert result.exit_code == 2 and "HOST[:PORT][/NAMESPACE]" in result.output
