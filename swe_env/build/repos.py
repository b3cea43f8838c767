"""Host-side git: a cache of mirrors, and a scrubbed checkout of one commit.

The checkout that goes into an image holds the history up to `base_commit` and
nothing else: no remote, no other branch or tag, no reflog, no object from a later
commit. An agent cannot `git log --all` its way to the fix.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path

import git

from ..data.task import Task
from ..errors import InfrastructureError

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class RepoError(InfrastructureError):
    """The repository cannot be reached or does not hold the commit a task names."""


def cache_dir() -> Path:
    """swe-env's host cache: $SWE_ENV_CACHE (default ~/.cache/swe-env)."""
    return Path(os.environ.get("SWE_ENV_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "swe-env"))


def cache_root() -> Path:
    """Where mirrors live: <cache_dir>/repos."""
    return cache_dir() / "repos"


def mirror(location: str) -> git.Repo:
    """A bare mirror of `location` in the cache, cloned once and fetched when a commit is missing."""
    key = hashlib.sha256(location.encode()).hexdigest()[:16]
    path = cache_root() / f"{Path(location.rstrip('/')).stem or 'repo'}-{key}.git"
    with _lock_for(str(path)):
        if path.exists():
            return git.Repo(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".clone-", dir=path.parent))
        try:
            git.Repo.clone_from(location, staging / "m.git", mirror=True)
            (staging / "m.git").rename(path)
        except git.GitCommandError as exc:
            raise RepoError(f"cannot clone {location}: {_git_message(exc)}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return git.Repo(path)


def resolve_commit(task: Task) -> str:
    """The full sha of the task's base commit; RepoError naming the task file if it is absent, TaskSpecError
    when `repo` is a local path that does not exist (the task file's mistake, not the machinery's)."""
    task.check_repo()
    location = task.repo_location()
    repo = mirror(location)
    spec = f"{task.base_commit}^{{commit}}"
    try:
        return repo.git.rev_parse("--verify", "--quiet", spec)
    except git.GitCommandError:
        pass
    with _lock_for(repo.git_dir):
        try:  # a commit newer than the cache: fetch once and look again
            repo.git.fetch("--quiet", "origin", "+refs/*:refs/*")
            return repo.git.rev_parse("--verify", "--quiet", spec)
        except git.GitCommandError:
            where = f"{task.source}: " if task.source else ""
            raise RepoError(f"{where}task '{task.id}': field 'base_commit': commit {task.base_commit} not found in {task.repo}") from None


def read_requirements(location: str, commit: str, paths: list[str]) -> list[str]:
    """The requirement entries of the first of `paths` that exists at `commit` (`-r` files followed).

    Options, editable and local-path entries are left out: the repository itself is installed by
    the task's `install` commands, and other options would change how pip runs for everything.
    """
    repo = mirror(location)

    def show(path: str) -> str | None:
        try:
            return repo.git.show(f"{commit}:{path}")
        except git.GitCommandError:
            return None

    def entries(path: str, text: str, seen: set[str]) -> list[str]:
        found = []
        for raw in text.splitlines():
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(("-r ", "--requirement ")):
                nested = os.path.normpath(os.path.join(os.path.dirname(path), line.split(None, 1)[1].strip()))
                if nested not in seen and (nested_text := show(nested)) is not None:
                    found += entries(nested, nested_text, seen | {nested})
                continue
            if line.startswith(("-", ".", "/")) or "://" in line:
                continue
            found.append(line)
        return found

    for path in paths:
        text = show(path)
        if text is not None:
            return list(dict.fromkeys(entries(path, text, {path})))
    return []


def scrubbed_checkout(task: Task, dest: Path) -> str:
    """Check out the task's base commit into `dest` with no trace of anything newer.

    Returns the full sha. `dest` must not exist yet.
    """
    sha = resolve_commit(task)
    source = mirror(task.repo_location())
    ref = f"refs/swe-env/{sha}"
    with _lock_for(source.git_dir):
        source.git.update_ref(ref, sha)
    repo = git.Repo.init(dest, initial_branch="main")
    fetch = ["--quiet", "--no-tags", "--update-head-ok", source.git_dir, f"{ref}:refs/heads/main"]
    try:
        # Fetching one ref transfers only objects reachable from it: later commits never arrive.
        try:
            repo.git.fetch(*fetch)
        except git.GitCommandError:
            # A mirror that lacks some object of older history (a partial or size-capped copy)
            # can still give the commit itself: the checkout then holds base_commit alone.
            repo.git.fetch("--depth=1", *fetch)
        repo.git.reset("--hard", "--quiet", "main")
    except git.GitCommandError as exc:
        missing = _missing_files(source, sha)
        reason = (
            f"the mirror lacks {len(missing)} file(s) of that commit ({', '.join(missing[:3])}): an incomplete copy" if missing else _git_message(exc)
        )
        raise RepoError(f"task '{task.id}': cannot check out {sha[:12]} of {task.repo}: {reason}") from None
    with repo.config_writer() as config:
        config.set_value("user", "name", "swe-env agent")
        config.set_value("user", "email", "agent@swe-env.invalid")
        config.set_value("core", "logAllRefUpdates", "false")
    for leftover in ("FETCH_HEAD", "ORIG_HEAD", "logs"):
        target = Path(repo.git_dir) / leftover
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    repo.close()
    return sha


def _missing_files(repo: git.Repo, sha: str) -> list[str]:
    """Paths of `sha`'s tree whose blobs the repository does not have (a size-capped or partial copy)."""
    try:
        listing = repo.git.ls_tree("-r", "-z", sha)
    except git.GitCommandError:
        return []
    entries = [line.split("\t", 1) for line in listing.split("\0") if "\t" in line]
    blobs = {meta.split()[2]: path for meta, path in entries if meta.split()[1] == "blob"}
    if not blobs:
        return []
    answer = subprocess.run(
        ["git", "-C", repo.git_dir, "cat-file", "--batch-check"], input="\n".join(blobs) + "\n", capture_output=True, text=True
    ).stdout
    return sorted(blobs[line.split()[0]] for line in answer.splitlines() if line.endswith(" missing"))


def checkout_tarball(task: Task, tar_path: Path, arcname: str = "testbed") -> str:
    """Write a tar of the scrubbed checkout (with its .git) to `tar_path`; returns the sha."""
    with tempfile.TemporaryDirectory(prefix="swe-env-checkout-") as tmp:
        tree = Path(tmp) / "tree"
        sha = scrubbed_checkout(task, tree)
        with tarfile.open(tar_path, "w") as tar:
            tar.add(tree, arcname=arcname)
    return sha


def _lock_for(key: str | os.PathLike[str]) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(os.fspath(key), threading.Lock())


def _git_message(exc: git.GitCommandError) -> str:
    text = (exc.stderr or str(exc)).strip().replace("stderr:", "").strip(" '\n")
    return text.splitlines()[-1] if text else str(exc)
