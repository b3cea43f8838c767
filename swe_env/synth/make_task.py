"""A validated candidate written as a task folder (through `writer`, the one task writer): the buggy tree as the one
commit of a scrubbed bundle, the reverse of the bug as the gold patch, `meta` naming method, kind, function and
source commit."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..data.task import Task, TestSpec
from . import model as model_method
from . import statement
from .candidates import Candidate
from .context import Run
from .hiding import hide_patch
from .refs import is_test_path
from .writer import BUNDLE, Snapshots, WriterError, begin, staged_task, write_task


def task_id_of(name: str, candidate: Candidate) -> str:
    """The task id of a candidate of repository `name`: name, method, kind and the candidate's id, filename-safe."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{name}.{candidate.method}.{candidate.kind}.{candidate.id[:10]}")


def write(run: Run, candidate: Candidate, task_id: str, fail_to_pass: list[str], pass_to_pass: list[str], messages: dict[str, str]) -> Path:
    """Write `candidate` (validated: `fail_to_pass` broke, `pass_to_pass` held) as the task folder `task_id` under the
    run's out folder; `messages` are the failing tests' first lines, for the problem statement."""
    config = run.config
    folder = config.out / task_id
    staging = begin(folder)
    try:
        change = candidate.patch + (hide_patch(run.git_dir, run.sha, fail_to_pass) if config.hide_tests else "")
        snapshots = run.snapshots or Snapshots(run.git_dir, run.sha)
        base_commit, undo = snapshots.write(staging / BUNDLE, change)
        # The undo is one diff of the buggy commit against the clean tree: its test part is the hidden tests.
        gold, test_patch = split_undo(undo)
        meta: dict[str, str] = {
            "repo": run.name,
            "method": candidate.method,
            "kind": candidate.kind,
            "file": candidate.path,
            "function": candidate.function,
            "source_commit": run.sha,
            "description": candidate.description,
            "recipe": run.base.meta.get("recipe", ""),
        }
        if candidate.reverted_commit:
            meta["reverted_commit"] = candidate.reverted_commit
        if candidate.method == model_method.METHOD and run.model is not None:
            meta["model"] = run.model.model
        if candidate.parts:
            meta["combined"] = ",".join(task_id_of(run.name, part) for part in candidate.parts)
        written = None
        if run.model is not None:
            with run.timed("statement"):
                written = run.model.statement(run.name, fail_to_pass, messages)
        meta["statement"] = "model" if written else "template"
        problem = written or statement.write(run.name, fail_to_pass, messages, hidden=config.hide_tests)
        task = Task(
            id=task_id,
            repo=BUNDLE,
            base_commit=base_commit,
            environment=run.base.environment,
            problem_statement=problem,
            tests=TestSpec(test_patch=test_patch, fail_to_pass=fail_to_pass, pass_to_pass=pass_to_pass, command=run.base.tests.command),
            gold_patch=gold,
            meta={k: v for k, v in meta.items() if v},
        )
        return write_task(staged_task(task, folder), folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def split_undo(undo: str) -> tuple[str, str]:
    """The undo diff as (gold patch, test patch): by path, as `tasks new` splits a fix."""
    if not undo.strip():
        raise WriterError("the bug left the tree unchanged")
    chunks = file_chunks(undo)
    gold = "".join(chunk for path, chunk in chunks if not is_test_path(path))
    tests = "".join(chunk for path, chunk in chunks if is_test_path(path))
    return gold, tests


def file_chunks(diff: str) -> list[tuple[str, str]]:
    """A git diff cut into (path, the file's part) pieces."""
    chunks: list[tuple[str, str]] = []
    for piece in diff.split("\ndiff --git "):
        if not piece.strip():
            continue
        text = piece if piece.startswith("diff --git ") else "diff --git " + piece
        header = text.split("\n", 1)[0]
        path = header.split(" b/", 1)[-1] if " b/" in header else header
        chunks.append((path, text if text.endswith("\n") else text + "\n"))
    return chunks
