"""A task from two refs of a repository (`swe-env tasks new`): the fix's non-test diff is the gold patch, its
test diff the test patch, and FAIL_TO_PASS / PASS_TO_PASS come from running both sides in the container.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path, PurePosixPath

from ..build.images import ImageBuilder
from ..data.task import DEFAULT_TEST_COMMAND, Environment, Task, TestSpec
from ..grading import rule
from .suite import Worker
from .writer import BUNDLE, WriterError, begin, git, mirrored, resolve, snapshot, staged_task, write_task

_TEST_FILE = re.compile(r"(^test_.*\.py$)|(.*_test\.py$)|(^conftest\.py$)")


def is_test_path(path: str, tests: list[str] | None = None) -> bool:
    """Whether a changed path belongs to the tests: under one of `tests` (path prefixes) when given, else a
    `test`/`tests` folder, `test_*.py`, `*_test.py` or `conftest.py`."""
    if tests:
        return any(path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/") for prefix in tests)
    parts = PurePosixPath(path).parts
    return any(part in ("test", "tests", "testing") for part in parts[:-1]) or bool(_TEST_FILE.match(parts[-1]))


def split_diff(repo: str | Path, old: str, new: str, tests: list[str] | None = None) -> tuple[str, str]:
    """The diff from `old` to `new` as (its non-test part, its test part), binary-safe, full index lines."""
    changed = [p for p in git(repo, "diff", "--name-only", "--no-renames", "-z", old, new).split("\0") if p]
    test_paths = [p for p in changed if is_test_path(p, tests)]
    source_paths = [p for p in changed if p not in test_paths]

    def part(paths: list[str]) -> str:
        return git(repo, "diff", "--binary", "--full-index", "--no-renames", old, new, "--", *paths) if paths else ""

    return part(source_paths), part(test_paths)


def default_environment(repo: str | Path, rev: str) -> Environment:
    """pytest, and `pip install -e .` when the tree is a package (pyproject.toml, setup.py or setup.cfg at its root)."""
    files = set(git(repo, "ls-tree", "--name-only", rev).split())
    package = bool(files & {"pyproject.toml", "setup.py", "setup.cfg"})
    return Environment(pip_packages=["pytest"], install=["pip install -e ."] if package else [])


def task_from_refs(
    repo: str | Path,
    base: str,
    fix: str,
    out: str | Path,
    *,
    task_id: str | None = None,
    tests: list[str] | None = None,
    environment: Environment | None = None,
    problem_statement: str | None = None,
    builder: ImageBuilder | None = None,
    command: str | None = None,
) -> Path:
    """Write a task folder under `out` from `base` (the tree the agent gets) and `fix`; returns its task file.

    Both sides run twice in one container (the test patch applied, then the gold patch too):
    `rule.derive` makes the lists and `rule.check` must accept them."""
    source = Path(repo).expanduser().resolve()
    if not source.exists():
        raise WriterError(f"--repo: {repo}: no such repository")
    # A folder, a bare repository or a bundle alike: git reads the refs from the host's mirror of it.
    repo = Path(mirrored(str(source)))
    base_sha, fix_sha = resolve(repo, base), resolve(repo, fix)
    gold, test_patch = split_diff(repo, base_sha, fix_sha, tests)
    if not gold.strip():
        raise WriterError(f"{source}: {base}..{fix} changes only test files: there is no fix to write as the gold patch")
    environment = environment or default_environment(repo, base_sha)
    name = task_id or f"{source.name.removesuffix('.git').removesuffix('.bundle')}-{fix_sha[:8]}"
    statement = problem_statement or git(repo, "log", "-1", "--format=%B", fix_sha).strip() or f"Apply {fix}."
    folder = Path(out) / name
    staging = begin(folder)
    try:
        sha, _ = snapshot(repo, base_sha, staging / BUNDLE)
        spec = TestSpec(test_patch=test_patch, fail_to_pass=["(to be found)"], command=command or DEFAULT_TEST_COMMAND)
        task = staged_task(
            Task(
                id=name,
                repo=BUNDLE,
                base_commit=sha,
                problem_statement=statement,
                environment=environment,
                tests=spec,
                gold_patch=gold,
                meta={"method": "refs", "source_commit": fix_sha, "base_ref": base_sha},
            ),
            folder,
        )
        builder = builder or ImageBuilder()
        image = builder.ensure(task)
        without: list[dict[str, str]] = []
        with_fix: list[dict[str, str]] = []
        with Worker(task, image) as worker:
            for patches, runs in (([test_patch], without), ([test_patch, gold], with_fix)):
                for patch in patches:
                    problem = worker.apply(patch) if patch.strip() else None
                    if problem:
                        which = "gold" if patch is gold else "test"
                        raise WriterError(f"{source}: the {which} patch of {base}..{fix} does not apply to {base}: {problem}")
                runs += [worker.run_tests().statuses for _ in range(2)]
                worker.reset()
        fail_to_pass, pass_to_pass, flaky = rule.derive(without, with_fix)
        if not fail_to_pass:
            raise WriterError(
                f"{source}: no test fails at {base} and passes at {fix} (with the test changes on both "
                f"sides){'; flaky: ' + ', '.join(flaky[:5]) if flaky else ''}"
            )
        judged = rule.check(fail_to_pass, pass_to_pass, without, with_fix)
        if not judged.valid:
            raise WriterError(f"{source}: the task breaks the validation rule: {judged.violations[0]}")
        task = task.model_copy(update={"tests": spec.model_copy(update={"fail_to_pass": fail_to_pass, "pass_to_pass": pass_to_pass})})
        return write_task(task, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
