"""`synthesize`: tasks from a repository at a commit, each one a validated bug.

1. The repository's image is built (the given environment, or pytest plus `pip install -e .`
   for a package) and the suite is learned once in a worker's container: two runs (one
   untraced, one under our tracer, `traces.corpus.suite_reach`) give which tests pass in both
   (a test that differs is flaky and never decides anything) and which repository functions
   each passing test enters. Only those functions are mutated.
2. Candidates come from the methods (`procedural`: AST mutations of reached functions;
   `history`: past source changes undone), interleaved by method and kind, seeded.
3. Workers each keep ONE container and reset its tree with git between candidates. A
   candidate is applied, the tests that reach its function (the whole suite for history)
   run twice; `grading.rule.derive` makes FAIL_TO_PASS (pass -> fail) and PASS_TO_PASS from
   those runs and the learning runs, and `grading.rule.check` must accept them: the same rule
   `swe-env validate` applies. Flaky candidates and duplicates (same failing set and same
   normalised diff) are dropped.
4. Kept candidates are written by `writer` (the buggy tree as the one commit of a scrubbed
   bundle, the reverse of the bug as the gold patch), with `meta` naming method, kind,
   function and source commit.

Resumable: `<out>/synth-state.jsonl` has a line per candidate decided; a re-run skips them
and counts the tasks already written towards `max_tasks`.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..build.images import ImageBuilder
from ..data.task import DEFAULT_TEST_COMMAND, Environment, Task, TestSpec
from ..grading import rule
from ..runtime.sandbox import SandboxError
from . import history, procedural, statement
from .hiding import hide_patch
from .refs import default_environment, is_test_path
from .suite import Worker
from .writer import BUNDLE, WriterError, begin, git, mirrored, resolve, snapshot, staged_task, write_task

METHODS = {procedural.METHOD: "AST mutations of functions the passing tests reach",
           history.METHOD: "past commits' source changes undone on the chosen tree"}
STATE_FILE = "synth-state.jsonl"
LEARN_RUNS = 2


class SynthesisError(ValueError):
    """Synthesis cannot start or go on (a repository whose suite has no passing test, an unknown method); one line."""


class SynthConfig(BaseModel):
    """What `swe-env synthesize` makes (its options)."""

    model_config = ConfigDict(extra="forbid")

    repo: str
    """A git repository (a working folder, a bare repository or a bundle)."""
    commit: str = "HEAD"
    """The tree the bugs go into."""
    name: str | None = None
    """The repository's short name in task ids and statements (default: the folder's or the bundle's name)."""
    environment: Environment | None = None
    """How the image is built; default pytest plus `pip install -e .` when the tree is a package."""
    test_command: str = DEFAULT_TEST_COMMAND
    """The command that runs the suite (pytest; node ids are appended to run some of it)."""
    out: Path
    """Folder the task folders (and the state of the run) go to."""
    max_tasks: int = Field(default=100, gt=0)
    """Tasks in `out` at which the run stops (those of earlier runs count)."""
    max_candidates: int | None = Field(default=None, gt=0)
    """Candidates tried at most in this run; default five per task still wanted."""
    methods: list[str] = Field(default_factory=lambda: list(METHODS))
    """Methods used (`METHODS`)."""
    kinds: list[str] | None = None
    """Procedural kinds used (`procedural.KINDS`); default all."""
    workers: int = Field(default=1, gt=0)
    """Containers (and threads) validating candidates at once."""
    hide_tests: bool = False
    """Take the failing tests out of the task's tree (they come back through the test patch); default they stay visible."""
    max_fail_to_pass: int = Field(default=20, gt=0)
    """A candidate breaking more tests than this is dropped (it breaks everything, not one behaviour)."""
    seed: int = 0
    """Seed of the candidates' order."""


@dataclass
class Candidate:
    id: str
    method: str
    kind: str
    path: str
    function: str
    description: str
    patch: str
    tests: list[str] | None
    """The tests that reach the change (None: the whole suite)."""
    reverted_commit: str | None = None


@dataclass
class Summary:
    """What a run did: candidates, validated, rejected by reason, per method."""

    candidates: int = 0
    validated: int = 0
    skipped: int = 0
    """Candidates decided by an earlier run."""
    rejected: Counter = field(default_factory=Counter)
    per_method: dict[str, Counter] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    """Task ids written by this run."""
    total_tasks: int = 0
    """Tasks in the out folder at the end."""
    planned: int = 0
    not_needed: int = 0
    """Candidates that passed every check after enough tasks were written (not recorded: a later run may use them)."""
    flaky_tests: list[str] = field(default_factory=list)
    """Tests whose outcome differed between the learning runs: never a task's FAIL_TO_PASS or PASS_TO_PASS."""
    passing_tests: int = 0
    """Tests that passed in every learning run (the ones a candidate can break)."""
    seconds: float = 0.0
    last: str = ""

    def count(self, method: str, outcome: str) -> None:
        self.per_method.setdefault(method, Counter())[outcome] += 1


@dataclass
class _Suite:
    """What learning found: stable passing tests, flaky ones, and the tests reaching each function."""

    runs: list[dict[str, str]]
    output_tail: str
    passing: list[str]
    flaky: list[str]
    reaching: dict[tuple[str, str], set[str]]


def normalised_diff(patch: str) -> str:
    """A diff's changed lines without whitespace or headers: two candidates with the same one are the same bug."""
    return "\n".join("".join(line.split()) for line in patch.splitlines()
                     if line[:1] in "+-" and not line.startswith(("+++", "---")))


def learn(worker: Worker) -> _Suite:
    reach = worker.learn(runs=LEARN_RUNS)
    runs = reach.runs
    tests = sorted({test for run in runs for test in run})
    flaky = rule.flaky_tests(runs, tests)
    passing = [t for t in tests if t not in flaky and all(rule.status_in(run, t) == rule.PASSED for run in runs)]
    reaching: dict[tuple[str, str], set[str]] = {}
    stable = set(passing)
    for test, places in reach.reached.items():
        if test not in stable:
            continue
        for file, _line, function in places:
            if file.startswith("/") or not file.endswith(".py") or is_test_path(file):
                continue
            reaching.setdefault((file, function), set()).add(test)
    return _Suite(runs, reach.output_tail, passing, flaky, reaching)


def plan(config: SynthConfig, git_dir: str, sha: str, suite: _Suite) -> list[Candidate]:
    """Every candidate of the chosen methods, interleaved by method and (procedural) kind, in a seeded order."""
    rng = random.Random(config.seed)
    streams: list[list[Candidate]] = []
    if procedural.METHOD in config.methods:
        by_file: dict[str, set[str]] = {}
        for file, function in suite.reaching:
            by_file.setdefault(file, set()).add(function)
        by_kind: dict[str, list[Candidate]] = {}
        for file in sorted(by_file):
            try:
                source = git(git_dir, "show", f"{sha}:{file}")
            except WriterError:
                continue
            for mutation in procedural.mutations(file, source, by_file[file], config.kinds):
                tests = sorted(suite.reaching[(file, mutation.function)])
                by_kind.setdefault(mutation.kind, []).append(Candidate(
                    _candidate_id(procedural.METHOD, mutation.patch), procedural.METHOD, mutation.kind, file,
                    mutation.function, mutation.description, mutation.patch, tests))
        for kind in sorted(by_kind):
            rng.shuffle(by_kind[kind])
        streams.append(_interleave([by_kind[k] for k in sorted(by_kind)]))
    if history.METHOD in config.methods:
        found = [Candidate(_candidate_id(history.METHOD, r.patch), history.METHOD, "revert_commit", ",".join(r.paths),
                           "", f"undoes {r.commit[:12]}: {r.subject}", r.patch, None, reverted_commit=r.commit)
                 for r in history.reversals(git_dir, sha)]
        streams.append(found)
    return _interleave(streams)


def _interleave(streams: list[list[Candidate]]) -> list[Candidate]:
    merged: list[Candidate] = []
    for index in range(max((len(s) for s in streams), default=0)):
        merged += [stream[index] for stream in streams if index < len(stream)]
    return merged


def _candidate_id(method: str, patch: str) -> str:
    return hashlib.sha256(f"{method}\0{patch}".encode()).hexdigest()[:16]


class _State:
    """The run's record in `<out>/synth-state.jsonl`: one line per candidate decided, appended under a lock."""

    def __init__(self, out: Path):
        self.path = out / STATE_FILE
        self.lock = threading.Lock()
        self.decided: set[str] = set()
        self.keys: set[str] = set()
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue  # a line cut by an interrupted run
                self.decided.add(item.get("id", ""))
                if item.get("key") and item.get("task") and (out / item["task"] / "task.yaml").exists():
                    self.keys.add(item["key"])

    def record(self, item: dict) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(item) + "\n")


def base_task(config: SynthConfig) -> tuple[Task, str, str]:
    """The task whose image every worker's container comes from (the clean tree at `config.commit`), the git dir
    of the host's mirror of the repository, and the repository's short name."""
    location = str(Path(config.repo).expanduser().resolve()) if Path(config.repo).expanduser().exists() else config.repo
    git_dir = mirrored(location)
    sha = resolve(git_dir, config.commit)
    name = config.name or Path(location.rstrip("/")).name.removesuffix(".git").removesuffix(".bundle") or "repo"
    environment = config.environment or default_environment(git_dir, sha)
    base = Task(id=f"{name}-synth-{sha[:10]}", repo=location, base_commit=sha, problem_statement="(synthesis base)",
                environment=environment, tests=TestSpec(fail_to_pass=["(synthesis)"], command=config.test_command))
    return base, git_dir, name


def synthesize(config: SynthConfig, builder: ImageBuilder | None = None,
               on_progress: Callable[[Summary], None] | None = None) -> Summary:
    """Synthesize tasks into `config.out` (see the module's docstring); the summary of this run."""
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown:
        raise SynthesisError(f"--methods: unknown method {unknown[0]!r}; known: {', '.join(METHODS)}")
    unknown = [k for k in config.kinds or [] if k not in procedural.KINDS]
    if unknown:
        raise SynthesisError(f"--kinds: unknown kind {unknown[0]!r}; known: {', '.join(procedural.KINDS)}")
    started = time.monotonic()
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    base, git_dir, name = base_task(config)
    sha, environment = base.base_commit, base.environment
    state = _State(out)
    summary = Summary(total_tasks=_tasks_in(out), skipped=len(state.decided))
    if summary.total_tasks >= config.max_tasks:  # a finished run again: nothing to build or learn
        summary.seconds = round(time.monotonic() - started, 1)
        return summary
    builder = builder or ImageBuilder()
    image = builder.ensure(base)
    lock = threading.Lock()
    workers = [Worker(base, image) for _ in range(config.workers)]
    try:
        workers[0].__enter__()
        suite = learn(workers[0])
        if not suite.passing:
            last = [line.strip() for line in suite.output_tail.splitlines() if line.strip()]
            why = next((line for line in reversed(last) if line.startswith("E ")), last[-1] if last else "no output")
            raise SynthesisError(f"{config.repo}: no test passes at {config.commit} (twice) with `{config.test_command}`; "
                                 f"nothing to break ({len(suite.runs[0])} test(s) reported; the output says: {why[:200]})")
        summary.flaky_tests, summary.passing_tests = suite.flaky, len(suite.passing)
        candidates = [c for c in plan(config, git_dir, sha, suite) if c.id not in state.decided]
        wanted = max(0, config.max_tasks - summary.total_tasks)
        candidates = candidates[: config.max_candidates or 5 * wanted]
        summary.planned = len(candidates)
        if on_progress:
            on_progress(summary)

        taken = [summary.total_tasks]  # tasks written or being written: a worker claims one before it writes

        def claim() -> bool:
            if taken[0] >= config.max_tasks:
                return False
            taken[0] += 1
            return True

        def release() -> None:
            taken[0] -= 1

        def work(worker: Worker, index: int) -> None:
            if index:
                worker.__enter__()
            while True:
                with lock:
                    if taken[0] >= config.max_tasks or not candidates:
                        return
                    candidate = candidates.pop(0)
                try:
                    outcome, item = _evaluate(config, worker, candidate, suite, state, lock, claim, release, git_dir, sha,
                                              name, environment)
                except (SandboxError, OSError) as exc:  # the container or the engine: ours, and this worker stops
                    outcome, item = "infra_error", {"error": f"{type(exc).__name__}: {exc}"[:300]}
                with lock:
                    summary.candidates += 1
                    summary.count(candidate.method, "candidates")
                    if outcome == "validated":
                        summary.validated += 1
                        summary.total_tasks += 1
                        summary.tasks.append(item["task"])
                        summary.count(candidate.method, "validated")
                    elif outcome == "enough_tasks":
                        summary.not_needed += 1
                    else:
                        summary.rejected[outcome] += 1
                    summary.last = f"{candidate.method}/{candidate.kind}: {outcome}"
                    if outcome not in ("infra_error", "enough_tasks"):  # both can go otherwise another time
                        state.record({"id": candidate.id, "method": candidate.method, "kind": candidate.kind,
                                      "outcome": outcome, **item})
                    if on_progress:
                        on_progress(summary)
                if outcome == "infra_error":
                    return

        threads = [threading.Thread(target=work, args=(worker, index), name=f"synth-{index}", daemon=True)
                   for index, worker in enumerate(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)  # in slices, so Ctrl-C reaches the main thread
    finally:
        for worker in workers:
            worker.__exit__(None, None, None)
    summary.seconds = round(time.monotonic() - started, 1)
    return summary


def _tasks_in(out: Path) -> int:
    return sum(1 for path in out.glob("*/task.yaml"))


def _evaluate(config: SynthConfig, worker: Worker, candidate: Candidate, suite: _Suite, state: _State,
              lock: threading.Lock, claim: Callable[[], bool], release: Callable[[], None], git_dir: str, sha: str,
              name: str, environment: Environment) -> tuple[str, dict]:
    """Apply, run twice, judge by the rule, dedupe, write: (outcome, what the state records).

    `claim` (called under `lock`) takes one of the tasks still wanted, or says none is left; `release` gives it back."""
    problem = worker.apply(candidate.patch)
    if problem:
        worker.reset()
        return "does_not_apply", {}
    stable = set(suite.passing)
    considered = [test for test in (candidate.tests if candidate.tests is not None else suite.passing) if test in stable]
    try:
        first = worker.run_tests(candidate.tests)
        broken = [t for t in considered if rule.status_in(first.statuses, t) != rule.PASSED]
        if not broken:
            return "no_failing_test", {}
        if len(broken) > config.max_fail_to_pass:
            return "too_many_failing", {}
        second = worker.run_tests(candidate.tests)
    finally:
        worker.reset()
    without = [first.statuses, second.statuses]
    fail_to_pass, pass_to_pass, flaky = rule.derive(without, suite.runs, among=considered)
    if flaky:
        return "flaky", {"flaky": flaky[:5]}
    if not fail_to_pass:
        return "no_failing_test", {}
    judged = rule.check(fail_to_pass, pass_to_pass, without, suite.runs)
    if not judged.valid:
        return "rule", {"violation": judged.violations[0]}
    key = hashlib.sha256(json.dumps([fail_to_pass, normalised_diff(candidate.patch)]).encode()).hexdigest()[:16]
    with lock:
        if key in state.keys:
            return "duplicate", {}
        if not claim():
            return "enough_tasks", {}
        state.keys.add(key)
    task_id = f"{name}.{candidate.method}.{candidate.kind}.{candidate.id[:10]}"
    try:
        _write(config, candidate, task_id, git_dir, sha, environment, fail_to_pass, pass_to_pass, first.messages, name)
    except BaseException:
        with lock:
            state.keys.discard(key)
            release()
        raise
    return "validated", {"task": task_id, "key": key, "fail_to_pass": len(fail_to_pass)}


def _write(config: SynthConfig, candidate: Candidate, task_id: str, git_dir: str, sha: str, environment: Environment,
           fail_to_pass: list[str], pass_to_pass: list[str], messages: dict[str, str], name: str) -> Path:
    folder = config.out / task_id
    staging = begin(folder)
    try:
        change = candidate.patch + (hide_patch(git_dir, sha, fail_to_pass) if config.hide_tests else "")
        base_commit, undo = snapshot(git_dir, sha, staging / BUNDLE, change)
        # The undo is one diff of the buggy commit against the clean tree: its test part is the hidden tests.
        gold, test_patch = _split_undo(undo)
        meta = {"repo": name, "method": candidate.method, "kind": candidate.kind, "file": candidate.path,
                "function": candidate.function, "source_commit": sha, "description": candidate.description}
        if candidate.reverted_commit:
            meta["reverted_commit"] = candidate.reverted_commit
        task = Task(id=task_id, repo=BUNDLE, base_commit=base_commit, environment=environment,
                    problem_statement=statement.write(name, fail_to_pass, messages, hidden=config.hide_tests),
                    tests=TestSpec(test_patch=test_patch, fail_to_pass=fail_to_pass, pass_to_pass=pass_to_pass,
                                   command=config.test_command),
                    gold_patch=gold, meta={k: v for k, v in meta.items() if v})
        return write_task(staged_task(task, folder), folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _split_undo(undo: str) -> tuple[str, str]:
    """The undo diff as (gold patch, test patch): by path, as `tasks new` splits a fix."""
    if not undo.strip():
        raise WriterError("the bug left the tree unchanged")
    chunks = _file_chunks(undo)
    gold = "".join(chunk for path, chunk in chunks if not is_test_path(path))
    tests = "".join(chunk for path, chunk in chunks if is_test_path(path))
    return gold, tests


def _file_chunks(diff: str) -> list[tuple[str, str]]:
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

