"""Host-side checkouts and layered images: no future history, cached layers, labels."""

from __future__ import annotations

import git
import pytest

from swe_env.build import repos
from swe_env.build.images import ImageBuilder
from swe_env.data.task import Limits, TaskSpecError
from swe_env.runtime.sandbox import Sandbox

pytestmark = pytest.mark.docker


def _later_commits(task) -> list[str]:
    """Commits of the task's bundle that come after base_commit (the fix lives there)."""
    mirror = repos.mirror(task.repo_location())
    out = mirror.git.rev_list("--all", f"^{task.base_commit}")
    return [line for line in out.splitlines() if line]


def test_bundles_really_hold_future_commits(tasks):
    # Otherwise the scrubbing tests below would prove nothing.
    assert any(_later_commits(task) for task in tasks)


def test_scrubbed_checkout_has_no_future(tmp_path, tasks):
    task = next(t for t in tasks if _later_commits(t))
    sha = repos.scrubbed_checkout(task, tmp_path / "tree")
    repo = git.Repo(tmp_path / "tree")
    assert repo.head.commit.hexsha == sha
    assert not repo.remotes
    assert [ref.name for ref in repo.refs] == ["main"]
    assert not repo.git.rev_list("--all", f"^{sha}")
    for later in _later_commits(task):
        with pytest.raises((ValueError, git.BadName)):  # GitPython: a full sha it cannot resolve, or a name
            repo.commit(later)
    assert not (tmp_path / "tree" / ".git" / "logs").exists()


def test_unknown_commit_is_a_clear_error(task):
    broken = task.model_copy(update={"base_commit": "0" * 40})
    broken._source = task.source
    with pytest.raises(repos.RepoError, match=r"task.yaml: task '.*': field 'base_commit': commit 0{40} not found"):
        repos.resolve_commit(broken)


def test_unreachable_repo_is_a_clear_error(task, tmp_path):
    (tmp_path / "not-a.bundle").write_text("not a repository")
    broken = task.model_copy(update={"repo": str(tmp_path / "not-a.bundle")})
    with pytest.raises(repos.RepoError, match="cannot clone"):
        repos.resolve_commit(broken)
    # A path that does not exist is the task file's mistake, not the machinery's (issue 26).
    missing = task.model_copy(update={"repo": str(tmp_path / "missing.bundle")})
    with pytest.raises(TaskSpecError, match=r"field 'repo': no such file or directory: .*missing\.bundle$"):
        repos.resolve_commit(missing)


def test_inside_the_image_git_sees_nothing_newer(tasks):
    task = next(t for t in tasks if _later_commits(t))
    image = ImageBuilder().ensure(task)
    later = _later_commits(task)
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        log = box.exec("git log --all --format=%H", idempotent=True).stdout.split()
        assert log and log[0].startswith(task.base_commit)
        assert not set(log) & set(later)
        assert box.exec("git reflog", idempotent=True).stdout.strip() == ""
        assert box.exec("git fsck --lost-found 2>&1; ls .git/lost-found 2>/dev/null | wc -l", idempotent=True).stdout.strip().endswith("0")
        assert box.exec("git remote", idempotent=True).stdout.strip() == ""
        assert box.exec("git status --porcelain", idempotent=True).stdout.strip() == ""
        for sha in later:
            assert box.exec(["git", "cat-file", "-e", sha]).exit_code != 0


def test_second_build_is_a_cache_hit_with_the_same_image(tasks, docker_client):
    builder = ImageBuilder()
    first = builder.ensure(tasks[0])
    image_id = docker_client.images.get(first).id
    assert builder.ensure(tasks[0]) == first
    assert docker_client.images.get(first).id == image_id


def test_tasks_of_one_repo_share_base_and_env_layers(tasks):
    builder = ImageBuilder()
    by_env: dict[str, list[str]] = {}
    for task in tasks:
        by_env.setdefault(builder.env_tag(task.environment), []).append(task.id)
    assert any(len(ids) > 1 for ids in by_env.values())
    assert len({builder.instance_tag(t) for t in tasks}) == len(tasks)


def test_images_carry_labels(tasks, docker_client):
    tag = ImageBuilder().ensure(tasks[0])
    labels = docker_client.images.get(tag).labels
    assert labels["swe_env.managed"] == "1"
    assert labels["swe_env.kind"] == "image-instance"
    assert labels["swe_env.commit"].startswith(tasks[0].base_commit)  # by content: no task id (it may serve several)


def test_failed_build_names_task_and_log_and_leaves_no_tag(task, docker_client):
    from swe_env.build.images import ImageBuildError

    broken = task.model_copy(update={"environment": task.environment.model_copy(update={"install": ["exit 3"]})})
    builder = ImageBuilder()
    with pytest.raises(ImageBuildError) as info:
        builder.ensure(broken)
    message = str(info.value)
    assert f"task '{task.id}'" in message and "instance layer" in message and "log: " in message
    log_path = message.rsplit("log: ", 1)[1]
    assert "exit 3" in open(log_path).read()
    assert not docker_client.images.list(filters={"reference": builder.instance_tag(broken)})
