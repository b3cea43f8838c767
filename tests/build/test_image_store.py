"""The disk budget: which images a prune takes (pure), and `swe-env images ls/prune` on the real engine.

The engine is shared, so the engine tests build throw-away images of their own (tiny layers FROM the
bootstrapped OS image, named in swe-env's repositories, carrying a label with this run's id) and
every prune is limited to that label: nobody else's image is ever a candidate.
"""

from __future__ import annotations

import time
import uuid

import pytest
from typer.testing import CliRunner

from swe_env import EnvConfig
from swe_env.build import budget, images, store
from swe_env.build.budget import StoredImage, plan_prune
from swe_env.cli import app
from swe_env.runtime import engine

from ..helpers import tar_of as _tar

NOW = 1_000_000.0


def _image(name: str, kind: str | None, layers: list[tuple[str, int]], last: float, in_use: int = 0) -> StoredImage:
    return StoredImage(
        id=f"sha256:{name}",
        tags=[f"swe-env/{kind}:{name}"] if kind != "partial" else [],
        kind=kind,
        layers=layers,
        created=last,
        last_used=last,
        in_use=in_use,
    )


def _family() -> list[StoredImage]:
    """An OS image, a base, one env with two instances, and a second env with one."""
    os_ = [("os", 300)]
    base = os_ + [("base", 20)]
    env1, env2 = base + [("env1", 50)], base + [("env2", 70)]
    return [
        _image("debian", "os", os_, NOW - 900),
        _image("base", "base", base, NOW - 900),
        _image("env1", "env", env1, NOW - 800),
        _image("env2", "env", env2, NOW - 800),
        _image("a", "instance", env1 + [("a", 5)], NOW - 500),
        _image("b", "instance", env1 + [("b", 6)], NOW - 10),
        _image("c", "instance", env2 + [("c", 7)], NOW - 300),
    ]


def _names(plan) -> list[str]:
    return [image.id.removeprefix("sha256:") for image in plan.remove]


def test_sizes_and_ages_parse_as_written():
    assert budget.parse_size("50G") == 50 * 10**9
    assert budget.parse_size("1.5GiB") == int(1.5 * 2**30)
    assert budget.parse_size("500MB") == 500 * 10**6
    assert budget.parse_size("1024") == 1024
    assert budget.parse_age("7d") == 7 * 86400 and budget.parse_age("90") == 90.0 and budget.parse_age("2w") == 14 * 86400
    for bad in ("fifty", "-1G", "5X"):
        with pytest.raises(ValueError, match="size"):
            budget.parse_size(bad)
    with pytest.raises(ValueError, match="age"):
        budget.parse_age("soon")


def test_disk_counts_shared_layers_once_and_unique_is_what_only_one_holds():
    family = _family()
    assert budget.disk_used(family) == 300 + 20 + 50 + 70 + 5 + 6 + 7
    unique = budget.unique_sizes(family)
    assert unique["sha256:a"] == 5 and unique["sha256:env1"] == 0 and unique["sha256:c"] == 7


def test_budget_removes_least_recently_used_first_and_an_env_only_after_its_instances():
    family = _family()
    # 458 bytes; a budget of 440 takes the oldest instance (a, 5 bytes) and then c (7), then env2 (70) with c gone.
    plan = plan_prune(family, NOW, max_disk=440)
    assert _names(plan) == ["a", "c", "env2"]
    assert plan.disk_before == 458 and plan.disk_after == 458 - 5 - 7 - 70
    # env1 stays while b is kept; so do base and the OS image under everything.
    held = {image.id.removeprefix("sha256:") for image, _why in plan.held}
    assert "env1" not in _names(plan) and "base" not in _names(plan)
    assert held <= {"env1", "base", "debian", "b"}


def test_an_env_is_used_when_its_instances_are():
    last = budget.effective_last_use(_family())
    assert last["sha256:env1"] == NOW - 10 and last["sha256:env2"] == NOW - 300 and last["sha256:debian"] == NOW - 10


def test_in_use_kept_kinds_grace_and_others_images_are_never_removed():
    family = _family()
    family[4].in_use = 1  # a container runs from instance a
    family.append(_image("theirs", None, family[2].layers + [("theirs", 100)], NOW - 5000))  # FROM our env1, not ours
    plan = plan_prune(family, NOW, max_disk=0, keep=("os",), grace=60)
    removed = _names(plan)
    assert "a" not in removed and "theirs" not in removed and "debian" not in removed
    assert "b" not in removed  # used 10 s ago, within the grace
    assert "env1" not in removed  # a, b and someone else's image are built on it
    assert removed == ["c", "env2"]
    why = {image.id.removeprefix("sha256:"): reason for image, reason in plan.held}
    assert "container" in why["a"] and why["debian"] == "kind os kept" and "moments ago" in why["b"]


def test_older_than_takes_only_old_images_and_partials_only_once_no_build_can_own_them():
    family = _family()
    family.append(_image("leftover", "partial", family[2].layers + [("half", 3)], NOW - 100))
    family.append(_image("stale", "partial", family[3].layers + [("half2", 4)], NOW - 2 * budget.PARTIAL_MIN_AGE))
    plan = plan_prune(family, NOW, older_than=400)
    # a (500 s) and the old leftover; not c (300 s), not the young leftover (a build may be under way).
    assert _names(plan) == ["stale", "a"]


# ---------------------------------------------------------------- on the real engine


def build_tiny(tag: str, parent: str, kind: str, run_label: str, payload: int) -> str:
    """A throw-away layer of `payload` bytes over `parent`, labelled as one of our `kind` and with this test's label."""
    dockerfile = f"FROM {parent}\nCOPY blob /blob-{uuid.uuid4().hex[:8]}\n"
    labels = {engine.MANAGED_LABEL: "1", "swe_env.kind": f"image-{kind}", "swe_env.test": run_label}
    error, log = images.build_image(
        tag, labels, fileobj=_tar({"Dockerfile": dockerfile.encode(), "blob": uuid.uuid4().bytes * (payload // 16)}), custom_context=True
    )
    assert error is None, f"{error} ({log})"
    return tag


@pytest.fixture
def family(docker_client, tmp_path, monkeypatch):
    """An env and two instances of ours, labelled with a fresh id; the index in a temporary cache."""
    monkeypatch.setenv("SWE_ENV_CACHE", str(tmp_path / "cache"))
    label = uuid.uuid4().hex[:12]
    os_image = images.ensure_os_image("debian:bookworm")
    env = build_tiny(f"swe-env/env:storetest-{label}", os_image, "env", label, 40_000)
    old = build_tiny(f"swe-env/instance:storetest-{label}-old", env, "instance", label, 20_000)
    new = build_tiny(f"swe-env/instance:storetest-{label}-new", env, "instance", label, 30_000)
    store.record_use(env, at=time.time() - 7200)  # built with the first instance
    store.record_use(old, "old-task", "example/repo", at=time.time() - 7200)
    store.record_use(new, "new-task", "example/repo", at=time.time() - 2400)
    yield label, env, old, new
    for tag in (new, old, env):
        try:
            docker_client.images.remove(tag)
        except Exception:  # noqa: BLE001 - already pruned by the test
            pass


def _present(tag: str) -> bool:
    return images.image_exists(tag)


@pytest.mark.docker
def test_prune_keeps_what_a_container_uses_and_the_env_under_it(docker_client, family):
    label, env, old, new = family
    container = engine.run_container(new, ["sleep", "60"], engine.managed_labels("storetest"), network_mode="none")
    try:
        plan, failed = store.prune(older_than="30m", labels={"swe_env.test": label}, dry_run=True)
        assert [image.tags for image in plan.remove] == [[old]] and not failed and _present(old)
        plan, failed = store.prune(older_than="30m", labels={"swe_env.test": label})
        assert not failed and not _present(old) and _present(new) and _present(env)
        why = {image.tags[0]: reason for image, reason in plan.held}
        assert "container" in why[new] and new in why[env]
        # Even a budget of nothing leaves the image a container runs from, and the env it is built on.
        plan, failed = store.prune(max_disk=0, labels={"swe_env.test": label})
        assert not plan.remove and _present(new) and _present(env)
    finally:
        engine.remove_container(container.id)
    plan, failed = store.prune(max_disk=0, labels={"swe_env.test": label})
    assert [image.tags[0] for image in plan.remove] == [new, env] and not failed
    assert not _present(new) and not _present(env) and plan.disk_after == 0 < plan.disk_before


@pytest.mark.docker
def test_images_ls_and_prune_on_the_command_line(docker_client, family):
    label, env, old, new = family
    runner = CliRunner()
    listed = runner.invoke(app, ["images", "ls", "--label", f"swe_env.test={label}"])
    assert listed.exit_code == 0, listed.output
    assert "3 swe-env images" in listed.output and "instance" in listed.output and "env" in listed.output
    # Newest use last: the old instance's row comes before the new one's.
    assert listed.output.index("old-task") < listed.output.index("new-task")
    dry = runner.invoke(app, ["images", "prune", "--older-than", "50m", "--dry-run", "--label", f"swe_env.test={label}"])
    assert dry.exit_code == 0, dry.output
    assert f"would remove instance {old}" in dry.output and new not in dry.output and _present(old)
    kept = runner.invoke(app, ["images", "prune", "--max-disk", "0", "--keep", "env", "--label", f"swe_env.test={label}"])
    assert kept.exit_code == 0, kept.output
    assert not _present(old) and not _present(new) and _present(env) and "still over --max-disk" in kept.output
    bad = runner.invoke(app, ["images", "prune", "--max-disk", "lots"])
    assert bad.exit_code == 2 and "size 'lots'" in bad.output
    neither = runner.invoke(app, ["images", "prune"])
    assert neither.exit_code == 2 and "--max-disk SIZE and/or --older-than AGE" in neither.output


def test_env_config_reads_a_disk_budget_and_refuses_a_bad_one():
    assert EnvConfig(max_disk="2G").max_disk == 2 * 10**9
    with pytest.raises(ValueError, match="size 'big'"):
        EnvConfig(max_disk="big")


def test_the_usage_index_keeps_the_last_use_and_skips_torn_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("SWE_ENV_CACHE", str(tmp_path))
    store.record_use("swe-env/instance:x", "t", "r", at=100.0)
    store.record_use("swe-env/instance:x", "t", "r", at=50.0)
    with open(store.index_path(), "a") as index:
        index.write('{"tag": "swe-env/instance:y", "at"')  # a writer killed mid-line
    uses = store.read_uses()
    assert uses["swe-env/instance:x"].at == 100.0 and "swe-env/instance:y" not in uses


def test_registry_names_as_written_and_published_images_under_a_mirror():
    from swe_env.build import registry

    assert registry.remote_name("swe-env/env:abc", "127.0.0.1:5000/team") == "127.0.0.1:5000/team/swe-env/env:abc"
    assert (
        registry.mirrored_name("swebench/sweb.eval.x86_64.django_1776_django-11099:latest", "10.0.0.5:5000/mirror/")
        == "10.0.0.5:5000/mirror/sweb.eval.x86_64.django_1776_django-11099:latest"
    )
    assert registry.check_namespace("myorg") == "myorg" and registry.check_registry("localhost") == "localhost"
    for bad in ("https://10.0.0.5", "team", "10.0.0.5:5000/Team", ""):
        with pytest.raises(ValueError, match="HOST"):
            registry.check_registry(bad)
    with pytest.raises(ValueError, match="published namespace"):
        EnvConfig(published_namespace="http://mirror")
