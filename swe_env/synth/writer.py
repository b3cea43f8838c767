"""The one task writer: a task folder from a source repository, a tree and two patches.

Used by `swe-env tasks new` and by synthesis. A task folder holds

    task.yaml      the task; its patches named by `gold_patch_file` / `tests.test_patch_file`
    gold.patch     the reference fix
    test.patch     the hidden tests (absent when there are none)
    repo.bundle    a scrubbed one-commit repository: the base tree, committed with a fixed author
                   and date (the same tree gives the same commit), branch `main`, nothing else

The base tree is `rev`'s tree of the source repository with `change` applied (the bug of a
synthesized task; nothing for `tasks new`). Nothing of the source's history reaches the bundle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from ..build import repos
from ..data.task import Task, check_round_trip, write_task_file

BUNDLE = "repo.bundle"
GOLD = "gold.patch"
TESTS = "test.patch"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "swe-env",
    "GIT_AUTHOR_EMAIL": "swe-env@swe-env.invalid",
    "GIT_COMMITTER_NAME": "swe-env",
    "GIT_COMMITTER_EMAIL": "swe-env@swe-env.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
}


class WriterError(ValueError):
    """A task cannot be written from what was given (a rev git does not know, a patch that does not apply)."""


def git(cwd: str | Path, *args: str, input: str | None = None, check: bool = True, extra_env: dict[str, str] | None = None) -> str:
    """Run host git in `cwd` with no user or system config, a fixed identity and date; its stdout."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LANG": "C.UTF-8",
        **_IDENTITY,
        **(extra_env or {}),
    }
    result = subprocess.run(
        ["git", "-c", "core.autocrlf=false", "-c", "commit.gpgSign=false", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        input=None if input is None else input.encode(),
    )
    if check and result.returncode != 0:
        raise WriterError(f"git {args[0]} failed in {cwd}: {result.stderr.decode(errors='replace').strip()[-300:]}")
    return result.stdout.decode("utf-8", errors="surrogateescape")


def mirrored(location: str) -> str:
    """The git dir of the host's mirror of a repository (folder, bare repository or bundle), its refs brought up
    to date (a mirror made earlier misses newer commits)."""
    git_dir = str(repos.mirror(location).git_dir)
    git(git_dir, "fetch", "--quiet", "--prune", "origin", "+refs/*:refs/*", check=False)
    return git_dir


def resolve(repo: str | Path, rev: str) -> str:
    """The full sha of `rev` in `repo`; WriterError naming both when git does not know it."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except WriterError:
        raise WriterError(f"{repo}: no commit {rev!r}") from None


def snapshot(repo: str | Path, rev: str, bundle: Path, change: str = "") -> tuple[str, str]:
    """Write `rev`'s tree with `change` (a diff) applied as the one commit of a new bundle.

    Returns (the commit's sha, the diff that undoes `change` on that commit: a gold patch).
    `change` must apply with plain `git apply`.
    """
    with Snapshots(repo, rev) as snapshots:
        return snapshots.write(bundle, change)


class Snapshots:
    """Many snapshots of one rev's tree (synthesis writes one per task): the tree is brought over and packed
    once into a scratch repository, and each snapshot only applies its change to a fresh index there, so
    writing its bundle reuses the packed objects instead of hashing and compressing the whole tree again.

    Only `rev`'s tree comes over (`git archive`): no history, no other ref. Thread-safe (one snapshot at a
    time); the same tree always gives the same commit (fixed identity and date, no parent).
    """

    def __init__(self, repo: str | Path, rev: str):
        self.repo, self.rev = repo, rev
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._work = Path()
        self._clean = ""
        self._lock = threading.Lock()

    def __enter__(self) -> Snapshots:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _prepare(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="swe-env-writer-")
        work = self._work = Path(self._tmp.name) / "tree"
        work.mkdir()
        git(work, "init", "-q", "-b", "main")
        archive = subprocess.run(["git", "-C", str(self.repo), "archive", "--format=tar", resolve(self.repo, self.rev)], capture_output=True)
        if archive.returncode != 0:
            raise WriterError(f"{self.repo}: cannot archive {self.rev}: {archive.stderr.decode(errors='replace').strip()[-200:]}")
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive.stdout, check=True)
        git(work, "add", "-A", "-f")
        self._clean = git(work, "write-tree").strip()
        clean_commit = git(work, "commit-tree", self._clean, "-m", "clean", input="").strip()
        git(work, "update-ref", "refs/heads/clean", clean_commit)
        git(work, "repack", "-adq")  # packed once: every bundle reuses these objects as they are

    def write(self, bundle: Path, change: str = "") -> tuple[str, str]:
        """The clean tree with `change` applied as the one commit of `bundle`: (its sha, the diff undoing `change`)."""
        with self._lock:
            if self._tmp is None:
                self._prepare()
            work = self._work
            index = work / ".git" / "snapshot-index"
            env = {"GIT_INDEX_FILE": str(index)}
            index.unlink(missing_ok=True)
            git(work, "read-tree", self._clean, extra_env=env)
            if change.strip():
                (work / ".git" / "change.patch").write_text(change)
                try:
                    git(work, "apply", "--cached", "--whitespace=nowarn", str(work / ".git" / "change.patch"), extra_env=env)
                except WriterError as exc:
                    raise WriterError(f"the change does not apply to {self.rev}: {exc}") from None
            buggy = git(work, "write-tree", extra_env=env).strip()
            sha = git(work, "commit-tree", buggy, "-m", "Initial commit", input="").strip()
            git(work, "update-ref", "refs/heads/main", sha)
            gold = git(work, "diff", "--binary", "--full-index", "--no-renames", buggy, self._clean) if change.strip() else ""
            bundle.parent.mkdir(parents=True, exist_ok=True)
            staged = bundle.with_name(bundle.name + ".tmp")
            git(work, "bundle", "create", "-q", str(staged.resolve()), "main")
            staged.replace(bundle)
            return sha, gold


def begin(folder: str | Path) -> Path:
    """A fresh staging folder for the task folder `folder` (snapshot the bundle into it, then `write_task`)."""
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def staged_task(task: Task, folder: str | Path) -> Task:
    """`task` naming its folder's bundle (`repo: repo.bundle`), resolved against the staging folder until written,
    so images built for it meanwhile carry the tags the written task will have."""
    task = task.model_copy(update={"repo": BUNDLE})
    staging = Path(folder).with_name(Path(folder).name + ".partial")
    task._source = (staging / "task.yaml").resolve()
    return task


def write_task(task: Task, folder: str | Path) -> Path:
    """Write `task` into `folder` (task.yaml, gold.patch, test.patch; the staging folder from `begin` already holds
    repo.bundle, which the task's `repo` names): patches in files named by the task file; returns the task file.

    The folder is written under a temporary name and moved into place, so a folder that exists
    is a finished task (what a resumed run skips).
    """
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".partial")
    if not (staging / BUNDLE).is_file():
        raise WriterError(f"{staging}: no {BUNDLE} staged for task '{task.id}'")
    task = task.model_copy(update={"repo": BUNDLE})
    (staging / GOLD).write_text(task.gold_patch or "")
    tests = task.tests.model_copy(update={"test_patch_file": TESTS if task.tests.test_patch else None})
    if task.tests.test_patch:
        (staging / TESTS).write_text(task.tests.test_patch)
    written = task.model_copy(update={"gold_patch_file": GOLD, "tests": tests})
    target = write_task_file(written, staging)
    check_round_trip(target, task)
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return folder / "task.yaml"
