"""The `history` method: a past commit that changed both source and tests, its source change undone on the chosen
tree: a real regression, decided by the suite (the tests that commit added among them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .refs import is_test_path
from .writer import git

METHOD = "history"


@dataclass(frozen=True)
class Reversal:
    """A commit's source change, reversed (the candidate bug, as a diff against the chosen tree)."""

    commit: str
    subject: str
    paths: tuple[str, ...]
    patch: str


def reversals(repo: str | Path, rev: str, max_commits: int = 500) -> list[Reversal]:
    """For each non-merge commit up to `rev` (newest first, at most `max_commits`) that changed Python source and
    tests: the reverse of its source change. Whether it applies to `rev`'s tree is the worker's to find."""
    found = []
    log = git(repo, "log", "--no-merges", f"--max-count={max_commits}", "--format=%H%x00%P%x00%s", rev)
    for line in log.splitlines():
        commit, parents, subject = (line.split("\0") + ["", ""])[:3]
        if not parents.strip():
            continue  # the first commit has nothing to go back to
        parent = parents.split()[0]
        changed = [p for p in git(repo, "diff", "--name-only", "--no-renames", "-z", parent, commit).split("\0") if p]
        source = [p for p in changed if p.endswith(".py") and not is_test_path(p)]
        if not source or not any(is_test_path(p) for p in changed):
            continue
        patch = git(repo, "diff", "--full-index", "--no-renames", commit, parent, "--", *source)
        if patch.strip():
            found.append(Reversal(commit, subject, tuple(source), patch))
    return found
