"""`synthesize`: tasks from a repository at a commit, each one a validated bug.

1. The repository's image is built (the given environment, the SWE-bench recipe of a repository
   and version, or pytest plus `pip install -e .` for a package) and the suite is learned once in
   a worker's container: two runs (one untraced, one under our tracer, `traces.corpus.suite_reach`)
   give which tests pass in both (a test that differs is flaky and never decides anything) and
   which repository functions each passing test enters. Only those functions are mutated.
2. Candidates come from the methods (`procedural`: AST mutations of reached functions;
   `history`: past source changes undone; `model`: a model's rewrite of a reached function,
   asked when the candidate's turn comes), interleaved by method and kind, seeded; `combine`
   candidates (two validated bugs of one file or folder) are made as bugs validate and go
   first.
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

import contextlib
import hashlib
import json
import logging
import random
import re
import shutil
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..build.images import ImageBuilder
from ..data.task import DEFAULT_TEST_COMMAND, Environment, Task, TestSpec
from ..grading import rule
from ..runtime.sandbox import SandboxError
from . import combine, history, procedural, recipes, statement
from . import model as model_method
from .hiding import hide_patch
from .refs import default_environment, is_test_path
from .suite import Worker
from .writer import BUNDLE, Snapshots, WriterError, begin, git, mirrored, resolve, staged_task, write_task

METHODS = {procedural.METHOD: "AST mutations of functions the passing tests reach",
           history.METHOD: "past commits' source changes undone on the chosen tree",
           model_method.METHOD: "a model rewrites a reached function with a bug, or writes its masked body (--model)",
           combine.METHOD: "two validated bugs of one file or folder in one task"}
DEFAULT_METHODS = [procedural.METHOD, history.METHOD, combine.METHOD]
"""Methods used when none are named (and `model` too when an endpoint is given)."""
STATE_FILE = "synth-state.jsonl"
_log = logging.getLogger(__name__)
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
    """How the image is built; default pytest plus `pip install -e .` when the tree is a package (or `recipe`'s)."""
    recipe: str | None = None
    """`owner/name@version` (`psf/requests@2.27`): the image is built from the SWE-bench recipe of that repository
    and version, as `tasks import-swebench` builds that repository's instances (the built-in table
    `data/recipes/swebench.yaml`, with `recipes` laid over it); its test command is the run's unless
    `test_command` is given. Not with `environment`; the recipe must run pytest."""
    recipes: Path | None = None
    """A YAML/JSON file of recipes (repo -> version or "*" -> recipe) laid over the built-in ones for `recipe`, as
    the other commands' `--recipes`."""
    test_command: str = DEFAULT_TEST_COMMAND
    """The command that runs the suite (pytest; node ids are appended to run some of it)."""
    out: Path
    """Folder the task folders (and the state of the run) go to."""
    max_tasks: int = Field(default=100, gt=0)
    """Tasks in `out` at which the run stops (those of earlier runs count)."""
    max_candidates: int | None = Field(default=None, gt=0)
    """Candidates tried at most in this run; default five per task still wanted."""
    methods: list[str] | None = None
    """Methods used (`METHODS`); default `DEFAULT_METHODS`, plus `model` when `model` is given."""
    kinds: list[str] | None = None
    """Kinds used (`procedural.KINDS`, `model.KINDS`); default all of the chosen methods'."""
    functions: list[str] | None = None
    """Only these functions are mutated (qualified names like `Class.method`, or `path::name`); default every one
    the passing tests reach."""
    model: str | None = None
    """An OpenAI-compatible endpoint (the API root, …/v1) for the `model` method; given, it also writes every task's
    problem statement. The key is read from $OPENAI_API_KEY."""
    model_name: str | None = None
    """The model asked (default: the first one the endpoint lists)."""
    model_timeout: float = Field(default=120.0, gt=0)
    """Seconds one model request may take."""
    model_retries: int = Field(default=2, ge=0)
    """Retries of a model request after a timeout, 429 or 5xx (then the candidate is rejected with the cause)."""
    model_temperature: float = 0.7
    """Sampling temperature of the model's bugs."""
    workers: int = Field(default=1, gt=0)
    """Containers (and threads) validating candidates at once."""
    hide_tests: bool = False
    """Take the failing tests out of the task's tree (they come back through the test patch); default they stay visible."""
    max_fail_to_pass: int = Field(default=20, gt=0)
    """A candidate breaking more tests than this is dropped (it breaks everything, not one behaviour)."""
    seed: int = 0
    """Seed of the candidates' order."""
    max_minutes: float | None = Field(default=None, gt=0)
    """Wall time after which no new candidate starts (the run's whole time, image and learning included)."""


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
    clean_text: str | None = None
    """The file's clean text (single-file candidates: procedural, model), for `combine`."""
    new_text: str | None = None
    """The file's text with the bug (known once the patch is)."""
    request: model_method.Request | None = None
    """A model candidate's question: its patch is asked for when its turn comes."""
    parts: tuple[Candidate, ...] = ()
    """A combined candidate's bugs."""
    parts_fail: tuple[tuple[str, ...], ...] = ()
    """The FAIL_TO_PASS of each part, as validated alone."""

    @property
    def methods_used(self) -> list[str]:
        return [self.method] if not self.parts else sorted({part.method for part in self.parts})


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
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    """Seconds spent per phase, summed over workers: image, learn, model, apply, tests_first, tests_second, reset,
    statement, write (where a run's time goes; `bench/synthesize.py` prints them)."""

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


def chosen_methods(config: SynthConfig) -> list[str]:
    """The methods a run uses: those named, else `DEFAULT_METHODS` (and `model` when an endpoint is given)."""
    if config.methods:
        return list(dict.fromkeys(config.methods))
    return DEFAULT_METHODS[:2] + ([model_method.METHOD] if config.model else []) + DEFAULT_METHODS[2:]


def _kinds_of(config: SynthConfig, known: Iterable[str]) -> list[str] | None:
    """The chosen kinds among `known` (None: all of them; [] none)."""
    return None if config.kinds is None else [k for k in config.kinds if k in known]


def _wanted(config: SynthConfig, file: str, function: str) -> bool:
    return not config.functions or function in config.functions or f"{file}::{function}" in config.functions


def plan(config: SynthConfig, git_dir: str, sha: str, suite: _Suite, model_name: str = "") -> list[Candidate]:
    """Every candidate of the chosen methods, interleaved by method and kind, in a seeded order."""
    rng = random.Random(config.seed)
    methods = chosen_methods(config)
    streams: list[list[Candidate]] = []
    by_file: dict[str, set[str]] = {}
    for file, function in suite.reaching:
        if _wanted(config, file, function):
            by_file.setdefault(file, set()).add(function)
    sources: dict[str, str] = {}
    for file in sorted(by_file):
        try:
            sources[file] = git(git_dir, "show", f"{sha}:{file}")
        except WriterError:
            continue
    procedural_kinds = _kinds_of(config, procedural.KINDS)
    if procedural.METHOD in methods and procedural_kinds != []:
        by_kind: dict[str, list[Candidate]] = {}
        for file, source in sources.items():
            for mutation in procedural.mutations(file, source, by_file[file], procedural_kinds):
                tests = sorted(suite.reaching[(file, mutation.function)])
                by_kind.setdefault(mutation.kind, []).append(Candidate(
                    _candidate_id(procedural.METHOD, mutation.patch), procedural.METHOD, mutation.kind, file,
                    mutation.function, mutation.description, mutation.patch, tests, clean_text=source,
                    new_text=mutation.source))
        for kind in sorted(by_kind):
            rng.shuffle(by_kind[kind])
        streams.append(_interleave([by_kind[k] for k in sorted(by_kind)]))
    if history.METHOD in methods:
        found = [Candidate(_candidate_id(history.METHOD, r.patch), history.METHOD, "revert_commit", ",".join(r.paths),
                           "", f"undoes {r.commit[:12]}: {r.subject}", r.patch, None, reverted_commit=r.commit)
                 for r in history.reversals(git_dir, sha)]
        streams.append(found)
    model_kinds = _kinds_of(config, model_method.KINDS)
    if model_method.METHOD in methods and model_kinds != []:
        asked: dict[str, list[Candidate]] = {}
        for file, source in sources.items():
            for function in sorted(by_file[file]):
                for kind in model_kinds or model_method.KINDS:
                    key = f"{kind}\0{file}\0{function}\0{config.model}\0{model_name}\0{config.seed}"
                    asked.setdefault(kind, []).append(Candidate(
                        _candidate_id(model_method.METHOD, key), model_method.METHOD, kind, file, function,
                        f"{model_name or 'the model'}: {kind.replace('_', ' ')} of {function}", "",
                        sorted(suite.reaching[(file, function)]), clean_text=source,
                        request=model_method.Request(kind, file, function, source)))
        for kind in sorted(asked):
            rng.shuffle(asked[kind])
        streams.append(_interleave([asked[k] for k in sorted(asked)]))
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


def chosen_recipe(config: SynthConfig) -> recipes.RecipeChoice | None:
    """The recipe the run builds from (None without `recipe`); a one-line error naming the option otherwise."""
    if config.recipe is None:
        if config.recipes is not None:
            raise SynthesisError("--recipes: used only with --recipe REPO@VERSION")
        return None
    if config.environment is not None:
        raise SynthesisError("--environment and --recipe: give one of them (an environment file or a SWE-bench recipe)")
    return recipes.choose(config.recipe, config.recipes)


def base_task(config: SynthConfig) -> tuple[Task, str, str]:
    """The task whose image every worker's container comes from (the clean tree at `config.commit`; its environment
    and test command are the run's), the git dir of the host's mirror of the repository, and its short name."""
    recipe = chosen_recipe(config)
    location = str(Path(config.repo).expanduser().resolve()) if Path(config.repo).expanduser().exists() else config.repo
    git_dir = mirrored(location)
    sha = resolve(git_dir, config.commit)
    name = config.name or Path(location.rstrip("/")).name.removesuffix(".git").removesuffix(".bundle") or "repo"
    command = config.test_command
    if recipe is not None and "test_command" not in config.model_fields_set:
        command = recipe.test_command
    environment = recipe.environment if recipe else config.environment or default_environment(git_dir, sha)
    base = Task(id=f"{name}-synth-{sha[:10]}", repo=location, base_commit=sha, problem_statement="(synthesis base)",
                environment=environment, tests=TestSpec(fail_to_pass=["(synthesis)"], command=command),
                meta={"recipe": recipe.name} if recipe else {})
    return base, git_dir, name


def _model(config: SynthConfig, methods: list[str]) -> tuple[model_method.ModelMethod | None, str]:
    """The model endpoint, asked once before anything is built, and the model's name; (None, '') without `--model`."""
    if not config.model:
        if model_method.METHOD in methods:
            raise SynthesisError("--methods model needs an endpoint: --model URL (an OpenAI-compatible API root, …/v1)")
        return None, ""
    try:
        asker = model_method.ModelMethod(config.model, config.model_name, timeout=config.model_timeout,
                                         retries=config.model_retries, temperature=config.model_temperature)
        return asker, asker.check()
    except ValueError as exc:
        raise SynthesisError(str(exc)) from None


@dataclass
class _Run:
    """What every worker of one run shares; `lock` guards the mutable parts."""

    config: SynthConfig
    suite: _Suite
    state: _State
    git_dir: str
    sha: str
    name: str
    base: Task
    """The clean tree's task: the environment and test command every written task gets."""
    model: model_method.ModelMethod | None
    taken: int
    """Tasks written or being written: a worker claims one before it writes."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    pairing: combine.Pairing[tuple[Candidate, list[str]]] | None = None
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    snapshots: Snapshots | None = None
    """The clean tree packed once; every task's bundle is written from it."""

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the block's seconds to `timings[phase]`."""
        started = time.monotonic()
        try:
            yield
        finally:
            with self.lock:
                self.timings[phase] += time.monotonic() - started

    def claim(self) -> bool:
        """Take one of the tasks still wanted (under `lock`), or say none is left."""
        if self.taken >= self.config.max_tasks:
            return False
        self.taken += 1
        return True

    def release(self) -> None:
        self.taken -= 1


def synthesize(config: SynthConfig, builder: ImageBuilder | None = None,
               on_progress: Callable[[Summary], None] | None = None) -> Summary:
    """Synthesize tasks into `config.out` (see the module's docstring); the summary of this run."""
    methods = chosen_methods(config)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SynthesisError(f"--methods: unknown method {unknown[0]!r}; known: {', '.join(METHODS)}")
    known_kinds = [*procedural.KINDS, *model_method.KINDS]
    unknown = [k for k in config.kinds or [] if k not in known_kinds]
    if unknown:
        raise SynthesisError(f"--kinds: unknown kind {unknown[0]!r}; known: {', '.join(known_kinds)}")
    chosen_recipe(config)  # a wrong --recipe stops the run before anything is made
    started = time.monotonic()
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    asker, model_name = _model(config, methods)
    base, git_dir, name = base_task(config)
    sha = base.base_commit
    state = _State(out)
    summary = Summary(total_tasks=_tasks_in(out), skipped=len(state.decided))
    if summary.total_tasks >= config.max_tasks:  # a finished run again: nothing to build or learn
        summary.seconds = round(time.monotonic() - started, 1)
        return summary
    builder = builder or ImageBuilder()
    image = builder.ensure(base)
    workers = [Worker(base, image) for _ in range(config.workers)]
    run: _Run | None = None
    try:
        summary.timings["image"] += time.monotonic() - started
        mark = time.monotonic()
        workers[0].__enter__()
        suite = learn(workers[0])
        summary.timings["learn"] += time.monotonic() - mark
        if not suite.passing:
            last = [line.strip() for line in suite.output_tail.splitlines() if line.strip()]
            why = next((line for line in reversed(last) if line.startswith("E ")), last[-1] if last else "no output")
            raise SynthesisError(f"{config.repo}: no test passes at {config.commit} (twice) with `{base.tests.command}`; "
                                 f"nothing to break ({len(suite.runs[0])} test(s) reported; the output says: {why[:200]})")
        summary.flaky_tests, summary.passing_tests = suite.flaky, len(suite.passing)
        wanted = max(0, config.max_tasks - summary.total_tasks)
        candidates = _Queue([c for c in plan(config, git_dir, sha, suite, model_name) if c.id not in state.decided],
                            limit=config.max_candidates or 5 * wanted, seed=config.seed)
        summary.planned = candidates.planned
        if on_progress:
            on_progress(summary)
        run = _Run(config, suite, state, git_dir, sha, name, base, asker, taken=summary.total_tasks,
                   pairing=combine.Pairing() if combine.METHOD in methods else None, timings=summary.timings,
                   snapshots=Snapshots(git_dir, sha))
        lock = run.lock
        deadline = started + config.max_minutes * 60 if config.max_minutes else float("inf")

        def work(worker: Worker, index: int) -> None:
            if index:
                worker.__enter__()
            while True:
                with lock:
                    next_one = None if run.taken >= config.max_tasks or time.monotonic() > deadline else candidates.pop()
                    if next_one is None:
                        return
                    candidate = next_one
                began = time.monotonic()
                try:
                    outcome, item = _evaluate(run, worker, candidate)
                except (SandboxError, OSError) as exc:  # the container or the engine: ours, and this worker stops
                    outcome, item = "infra_error", {"error": f"{type(exc).__name__}: {exc}"[:300]}
                except Exception as exc:  # noqa: BLE001 - a fault of ours with this one candidate: counted, and the next one goes on
                    outcome, item = "internal_error", {"error": f"{type(exc).__name__}: {exc}"[:300]}
                    _log.warning("synthesis: candidate %s (%s/%s): %s", candidate.id, candidate.method, candidate.kind,
                                 item["error"])
                with lock:
                    candidates.done(candidate, outcome == "validated", time.monotonic() - began)
                    summary.candidates += 1
                    summary.count(candidate.method, "candidates")
                    if outcome == "validated":
                        summary.validated += 1
                        summary.total_tasks += 1
                        summary.tasks.append(item["task"])
                        summary.count(candidate.method, "validated")
                        partner = _pair(run, candidate, item)
                        if partner is not None and partner.id not in state.decided:
                            candidates.first(partner)  # a pair validates far more often than a new bug
                            summary.planned = candidates.planned
                    elif outcome == "enough_tasks":
                        summary.not_needed += 1
                    else:
                        summary.rejected[outcome] += 1
                        summary.count(candidate.method, outcome)
                    summary.last = f"{candidate.method}/{candidate.kind}: {outcome}"
                    # infra errors, enough_tasks and an endpoint's passing failures can go otherwise another time
                    if outcome not in ("infra_error", "internal_error", "enough_tasks") and outcome not in model_method.TRANSIENT:
                        state.record({"id": candidate.id, "method": candidate.method, "kind": candidate.kind,
                                      "function": candidate.function, "outcome": outcome, **{k: v for k, v in item.items() if k != "fail_to_pass_ids"}})
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
        if run is not None and run.snapshots is not None:
            run.snapshots.close()
    summary.seconds = round(time.monotonic() - started, 1)
    return summary


class _Queue:
    """Candidates in the order of their expected yield per second, learned as the run goes.

    Methods take turns (each method's share stays, so every method makes tasks). Within the method,
    candidates are grouped by kind; each pick draws, for every kind, a success rate from
    Beta(validated + 1, rejected + 1) and divides it by the kind's mean seconds per candidate (the
    run's mean until the kind has one): the kind with the best draw gives its next candidate
    (Thompson sampling: kinds that pay are used more, untried ones are still tried). Within a kind
    the planned (seeded, shuffled) order stands. Combined candidates go first. At most `limit`
    candidates are handed out (combined ones not counted). Not thread-safe: used under the run's lock.
    """

    def __init__(self, candidates: list[Candidate], limit: int, seed: int = 0):
        self.groups: dict[tuple[str, str], list[Candidate]] = {}
        for candidate in candidates:
            self.groups.setdefault((candidate.method, candidate.kind), []).append(candidate)
        self.front: list[Candidate] = []
        self.stats: dict[tuple[str, str], list[float]] = {}
        """(method, kind) -> [validated, tried, seconds]."""
        self.limit, self.handed = limit, 0
        self.turn = 0
        self.planned = min(limit, len(candidates))
        self.rng = random.Random(seed)

    def first(self, candidate: Candidate) -> None:
        self.front.append(candidate)
        self.planned += 1

    def pop(self) -> Candidate | None:
        if self.front:
            return self.front.pop(0)
        live = [key for key, group in self.groups.items() if group]
        if not live or self.handed >= self.limit:
            return None
        tried = sum(stat[1] for stat in self.stats.values())
        overall = sum(stat[2] for stat in self.stats.values()) / tried if tried else 1.0

        def draw(key: tuple[str, str]) -> float:
            validated, count, seconds = self.stats.get(key, [0.0, 0.0, 0.0])
            cost = seconds / count if count else overall
            return self.rng.betavariate(validated + 1, count - validated + 1) / max(cost, 0.01)

        methods = sorted({method for method, _kind in live})
        method = methods[self.turn % len(methods)]
        self.turn += 1
        self.handed += 1
        return self.groups[max((key for key in live if key[0] == method), key=draw)].pop(0)

    def done(self, candidate: Candidate, validated: bool, seconds: float) -> None:
        stat = self.stats.setdefault((candidate.method, candidate.kind), [0.0, 0.0, 0.0])
        stat[0] += validated
        stat[1] += 1
        stat[2] += seconds


def _pair(run: _Run, candidate: Candidate, item: dict) -> Candidate | None:
    """A combined candidate of `candidate` (just validated) and a waiting bug of its file or folder, or None."""
    if run.pairing is None or candidate.parts or candidate.clean_text is None or candidate.new_text is None:
        return None
    fail_to_pass = list(item.get("fail_to_pass_ids", []))
    other = run.pairing.offer(candidate.path, (candidate, fail_to_pass))
    if other is None:
        return None
    first, first_fail = other
    if first.path == candidate.path:
        text = combine.merged_text(candidate.clean_text, first.new_text or "", candidate.new_text)
        if text is None:
            return None
        patch = procedural.file_diff(candidate.path, candidate.clean_text, text)
        path = candidate.path
    else:
        patch, path, text = first.patch + candidate.patch, f"{first.path},{candidate.path}", None
    tests = None if first.tests is None or candidate.tests is None else sorted({*first.tests, *candidate.tests})
    return Candidate(_candidate_id(combine.METHOD, first.id + candidate.id), combine.METHOD,
                     f"{first.kind}+{candidate.kind}", path, f"{first.function},{candidate.function}",
                     f"{first.description}; {candidate.description}", patch, tests, parts=(first, candidate),
                     parts_fail=(tuple(first_fail), tuple(fail_to_pass)), clean_text=None, new_text=text)


def _tasks_in(out: Path) -> int:
    return sum(1 for path in out.glob("*/task.yaml"))


def _evaluate(run: _Run, worker: Worker, candidate: Candidate) -> tuple[str, dict]:
    """Ask (a model candidate), apply, run twice, judge by the rule, dedupe, write: (outcome, what the state records)."""
    config, suite = run.config, run.suite
    if candidate.request is not None and not candidate.patch:
        if run.model is None:
            return "model_connection", {}
        with run.timed("model"):
            answer = run.model.bug(candidate.request)
        if answer.reason:
            return answer.reason, {"detail": answer.detail[:200]} if answer.detail else {}
        candidate.patch, candidate.new_text = answer.patch, answer.new_source
    with run.timed("apply"):
        problem = worker.apply(candidate.patch)
    if problem:
        with run.timed("reset"):
            worker.reset()
        return "does_not_apply", {}
    stable = set(suite.passing)
    considered = [test for test in (candidate.tests if candidate.tests is not None else suite.passing) if test in stable]
    try:
        with run.timed("tests_first"):
            # A bug breaking more tests than FAIL_TO_PASS may hold is dropped: pytest need not run the rest.
            first = worker.run_tests(candidate.tests, max_failures=config.max_fail_to_pass + 1)
        broken = [t for t in considered if rule.status_in(first.statuses, t) != rule.PASSED]
        if not broken:
            return "no_failing_test", {}
        if len(broken) > config.max_fail_to_pass:
            return "too_many_failing", {}
        with run.timed("tests_second"):
            second = worker.run_tests(candidate.tests)
    finally:
        with run.timed("reset"):
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
    if candidate.parts_fail and not all(set(part) <= set(fail_to_pass) for part in candidate.parts_fail):
        return "combine_masked", {}
    key = hashlib.sha256(json.dumps([fail_to_pass, normalised_diff(candidate.patch)]).encode()).hexdigest()[:16]
    with run.lock:
        if key in run.state.keys:
            return "duplicate", {}
        if not run.claim():
            return "enough_tasks", {}
        run.state.keys.add(key)
    task_id = _task_id(run.name, candidate)
    try:
        with run.timed("write"):
            _write(run, candidate, task_id, fail_to_pass, pass_to_pass, first.messages)
    except BaseException:
        with run.lock:
            run.state.keys.discard(key)
            run.release()
        raise
    return "validated", {"task": task_id, "key": key, "fail_to_pass": len(fail_to_pass),
                         "fail_to_pass_ids": fail_to_pass}


def _task_id(name: str, candidate: Candidate) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{name}.{candidate.method}.{candidate.kind}.{candidate.id[:10]}")


def _write(run: _Run, candidate: Candidate, task_id: str, fail_to_pass: list[str], pass_to_pass: list[str],
           messages: dict[str, str]) -> Path:
    config = run.config
    folder = config.out / task_id
    staging = begin(folder)
    try:
        change = candidate.patch + (hide_patch(run.git_dir, run.sha, fail_to_pass) if config.hide_tests else "")
        snapshots = run.snapshots or Snapshots(run.git_dir, run.sha)
        base_commit, undo = snapshots.write(staging / BUNDLE, change)
        # The undo is one diff of the buggy commit against the clean tree: its test part is the hidden tests.
        gold, test_patch = _split_undo(undo)
        meta: dict[str, str] = {
            "repo": run.name, "method": candidate.method, "kind": candidate.kind, "file": candidate.path,
            "function": candidate.function, "source_commit": run.sha, "description": candidate.description,
            "recipe": run.base.meta.get("recipe", "")}
        if candidate.reverted_commit:
            meta["reverted_commit"] = candidate.reverted_commit
        if candidate.method == model_method.METHOD and run.model is not None:
            meta["model"] = run.model.model
        if candidate.parts:
            meta["combined"] = ",".join(_task_id(run.name, part) for part in candidate.parts)
        written = None
        if run.model is not None:
            with run.timed("statement"):
                written = run.model.statement(run.name, fail_to_pass, messages)
        meta["statement"] = "model" if written else "template"
        problem = written or statement.write(run.name, fail_to_pass, messages, hidden=config.hide_tests)
        task = Task(id=task_id, repo=BUNDLE, base_commit=base_commit, environment=run.base.environment,
                    problem_statement=problem,
                    tests=TestSpec(test_patch=test_patch, fail_to_pass=fail_to_pass, pass_to_pass=pass_to_pass,
                                   command=run.base.tests.command),
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

