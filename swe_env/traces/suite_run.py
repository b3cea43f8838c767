"""A suite under the tracer in a started container: the program a task's corpus is traced from (`corpus_command`),
one run of it untraced or traced (`run_suite`), and what the run left (`read_outcomes`, `iter_traces`,
`read_status`); `suite_reach`, the public way synthesis learns a suite.

Django's and sympy's runners write no report: the grader's recorder writes their outcomes, sealed as in a grading
under a key only this process knows (`_recorder_key`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import time
from collections.abc import Callable, Iterator

from pydantic import BaseModel, Field

from ..data.task import RunnerName, Task
from ..grading import runners, seal
from ..runtime.sandbox import MAX_READ_BYTES, Sandbox
from ..runtime.shell import CommandResult
from . import tracer
from .corpus_schema import CorpusOptions, RawTrace
from .host import USAGE_PREFIX, TraceError, TraceOptions, tracer_dir

PART_BYTES = 16 * 1024 * 1024
"""The tracer starts a new traces file past this many bytes; each part is read back whole."""
DEFAULT_SELECT_COMMAND = "python -m pytest -p no:cacheprovider"
"""What a `select` is appended to (the task's own command is used as written without one)."""
_TOX = re.compile(r"(^|/)tox$")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")
_VALUE_OPTIONS = {
    # Options of the runners whose value is the next argument (not a test selection to drop).
    "pytest": {
        "-p",
        "-k",
        "-m",
        "-c",
        "-o",
        "-W",
        "-n",
        "--rootdir",
        "--junitxml",
        "--deselect",
        "--ignore",
        "--durations",
        "--maxfail",
        "--tb",
        "--confcutdir",
        "--basetemp",
        "--import-mode",
    },
    "django": {"-v", "--verbosity", "--parallel", "--settings", "-k", "--tag", "--exclude-tag", "--start-at", "--start-after"},
    "sympy": {"--seed", "-k", "--split", "--timeout", "--durations"},
}


class CorpusRun(BaseModel):
    """What a task's corpus is traced from: the program, its runner, and variables for it."""

    argv: list[str]
    runner: RunnerName = "pytest"
    env: dict[str, str] = Field(default_factory=dict)
    note: str | None = None
    """How the task's command was turned into this one, when it was (a tox run, a whole suite)."""


def _drop_selection(args: list[str], runner: str) -> list[str]:
    """A runner's arguments without the tests they select: options (and their values) stay."""
    kept, takes_value = [], _VALUE_OPTIONS.get(runner, set())
    index = 0
    while index < len(args):
        arg = args[index]
        if arg.startswith("-"):
            kept.append(arg)
            if arg in takes_value and index + 1 < len(args):
                kept.append(args[index + 1])
                index += 1
        index += 1
    return kept


def corpus_command(task: Task, options: CorpusOptions) -> CorpusRun:
    """The program a task's corpus is traced from (see `CorpusOptions.select` and `suite`).

    pytest, Django's `runtests.py` and sympy's `bin/test` run under the tracer as they are;
    a tox run (`tox ... -- ARGS`) becomes `python -m pytest -rA ARGS` in the task's own
    environment (the tracer cannot follow tox into its subprocess; the tox.ini's `setenv` is
    not applied). `VAR=value` words before the program are passed as variables.
    """
    if options.select:
        return CorpusRun(argv=[*shlex.split(DEFAULT_SELECT_COMMAND), *options.select])
    words = shlex.split(task.tests.command)
    env = {}
    while words and _ASSIGNMENT.fullmatch(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words or any(word in ("&&", "||", ";", "|") for word in words):
        raise TraceError(f"task {task.id}: its test command is not one program ({task.tests.command!r}); give a pytest selection (--select)")
    runner: RunnerName = task.tests.runner
    whole = options.suite == "whole"
    note = None
    if _TOX.search(words[0]):
        rest = words[words.index("--") + 1 :] if "--" in words else []
        words, runner = ["python", "-m", "pytest", "-rA", *rest], "pytest"
        note = "a tox run, traced as python -m pytest in the task's environment"
    if runner not in ("pytest", "django", "sympy"):
        raise TraceError(f"task {task.id}: its tests run with {runner}, which the tracer cannot follow; give a pytest selection (--select)")
    if whole:
        program = 3 if words[:3] in (["python", "-m", "pytest"], ["python3", "-m", "pytest"]) else 1
        if words[0] in ("python", "python3") and program == 1:
            program = 2  # python SCRIPT ...
        selected = words[program:]
        kept = _drop_selection(selected, runner)
        words = [*words[:program], *kept]
        if kept != selected:
            note = ((note + "; ") if note else "") + "the tests the command names taken out (the whole suite)"
    # Tests in another process are neither traced nor, for pytest, told from ours: sympy's runner
    # re-runs itself in a subprocess (for hash randomization) unless told not to, Django's runs
    # tests in worker processes unless --parallel 1.
    if runner == "sympy" and "--no-subprocess" not in words:
        words.append("--no-subprocess")
    if runner == "django" and not any(word == "--parallel" or word.startswith("--parallel=") for word in words):
        words += ["--parallel", "1"]
    return CorpusRun(argv=words, runner=runner, env=env, note=note)


def run_suite(
    sandbox: Sandbox, run: CorpusRun, options: CorpusOptions, folder: str, traced: bool, timeout: float, budget: dict, shard: tuple[int, int]
) -> tuple[CommandResult, float]:
    """One run of the suite in `folder` of a started sandbox, untraced or under the tracer's corpus mode (the corpus
    caps left in `budget`; `shard`: (index, count)): its result and seconds. A usage error of the tracer is a TraceError."""
    out, outcomes, status = f"{folder}/traces.jsonl", f"{folder}/outcomes.jsonl", f"{folder}/status.json"
    argv = run.argv
    if shard[1] > 1 and run.runner == "sympy":
        argv = [*argv, f"--split={shard[0] + 1}/{shard[1]}"]
    sources = options.function_traces or options.levels != "function"
    corpus = {
        "trace": traced,
        "outcomes": outcomes,
        "status": status,
        "sources": sources,
        "part_bytes": PART_BYTES,
        "runner": run.runner,
        "shard": list(shard),
        **budget,
    }
    config = {"argv": argv, "function": None, "args": None, "out": out, "workdir": sandbox.workdir, "corpus": corpus, **options.trace.model_dump()}
    sandbox.write_file(f"{folder}/config.json", json.dumps(config).encode())
    sandbox.exec(["/bin/bash", "-c", 'rm -f -- "$1" "$1".* "$2" "$3"', "rm", out, outcomes, status])
    variables = dict(run.env)
    prelude = ""
    if run.runner != "pytest":
        # Django's and sympy's runners write no report: the grader's recorder writes their outcomes.
        # Its records are sealed as in a grading (MAC'd under a key it reads once), so the key is written for it.
        recorder = runners.runner_named(run.runner)
        for path, data in recorder.files(folder).items():
            sandbox.write_file(path, data)
        key_path = f"{folder}/recorder.key"
        sandbox.write_file(key_path, seal.key_file(_recorder_key(sandbox, folder), [], runner_is_repo=False))
        sandbox.write_file(outcomes, b"")  # the recorder appends to the stream it is given; it creates nothing
        variables.update(recorder.environment(outcomes, key_path, folder))
        prelude = recorder.prelude(folder) + " && "
    if variables:
        prelude += "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in variables.items()) + " && "
    command = (
        f"({prelude}cd -- {shlex.quote(sandbox.workdir)} && exec python "
        f"{shlex.quote(folder + '/swe_env_tracer.py')} {shlex.quote(folder + '/config.json')})"
    )
    started = time.monotonic()
    result = sandbox.run(command, timeout=max(1.0, timeout))
    seconds = time.monotonic() - started
    usage = next((line for line in result.output.splitlines() if line.startswith(USAGE_PREFIX)), None)
    if result.exit_code == 2 and usage is not None:
        raise TraceError(usage[len(USAGE_PREFIX) :].strip())
    return result, seconds


def read_outcomes(sandbox: Sandbox, folder: str) -> dict[str, str]:
    """Test id -> outcome: the plugin's lines (`test_id`, `outcome`) or the recorder's (`ids`, `status`)."""
    try:
        text = sandbox.read(f"{folder}/outcomes.jsonl").data.decode("utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    rank = {"passed": 0, "xpassed": 1, "xfailed": 1, "skipped": 2, "failed": 3, "error": 4}
    prefix = sandbox.workdir.rstrip("/") + "/"
    found: dict[str, str] = {}

    def keep(test: str, outcome: str) -> None:
        if test not in found or rank.get(outcome, 4) > rank.get(found[test], 4):
            found[test] = outcome

    if text.startswith("0 "):  # the grader's recorder (Django's, sympy's runner): sealed records
        for outcome, ids in seal.test_records(text.encode("utf-8", errors="surrogateescape"), _recorder_key(sandbox, folder)):
            if ids:
                # django: `name (module.Class)` first; sympy: `path:name`, the path made relative.
                sympy_id = ids[1] if len(ids) > 1 and ids[1].endswith(":" + ids[0]) else None
                keep((sympy_id or ids[0]).removeprefix(prefix), outcome)
        return found
    for line in text.splitlines():
        try:
            item = json.loads(line)
            test, outcome = str(item["test_id"]), str(item["outcome"])
        except (ValueError, KeyError, TypeError):
            continue
        keep(test, outcome)
    return found


_RECORDER_SECRET = os.urandom(32)


def _recorder_key(sandbox: Sandbox, folder: str) -> bytes:
    """The key the recorder seals a corpus run's outcomes with: one per container and folder, known to this process only."""
    return hashlib.sha256(_RECORDER_SECRET + f"{sandbox.name}\0{folder}".encode()).digest()


def iter_traces(sandbox: Sandbox, folder: str, notes: list[str]) -> Iterator[RawTrace]:
    """The traced run's traces, one part file at a time (a real suite writes hundreds of MB: never all in memory)."""
    dropped, part = 0, 0
    while True:
        path = f"{folder}/traces.jsonl" + (f".{part}" if part else "")
        try:
            content = sandbox.read(path, max_bytes=MAX_READ_BYTES)
        except FileNotFoundError:
            break
        data = content.data
        if content.truncated:
            data = data[: data.rfind(b"\n") + 1]
            notes.append(f"{path} was {content.size} bytes; only the first {len(data)} were read")
        for line in data.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                trace = RawTrace.model_validate_json(line)
            except ValueError:
                dropped += 1
                continue
            yield trace
        part += 1
    if dropped:
        notes.append(f"{dropped} line(s) of the traces file were not traces and were dropped")


def read_status(sandbox: Sandbox, folder: str) -> dict:
    """The tracer's status file of the last run (tests collected, traces written and dropped, a cap that stopped it)."""
    try:
        status = json.loads(sandbox.read(f"{folder}/status.json").data)
    except (FileNotFoundError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def last_lines(result: CommandResult, lines: int = 3) -> str:
    """The last lines of a run's output, on one line (why a run ran nothing, in its own words)."""
    found = [line.strip() for line in result.output.splitlines() if line.strip()][-lines:]
    return " | ".join(found)[-600:] or "(no output)"


class SuiteTimeout(TraceError):
    """A run of `suite_reach` did not finish within its bound; one line."""

    def __init__(self, traced: bool, limit: float):
        super().__init__(f"the suite's {'traced' if traced else 'untraced'} run did not finish within {limit:.0f} s")
        self.traced, self.limit = traced, limit


class SuiteReach(BaseModel):
    """A suite learned once (for task synthesis): every test's outcome in each run, and which repository
    functions each test entered."""

    runs: list[dict[str, str]] = Field(default_factory=list)
    """Test id -> outcome, one mapping per run (untraced runs first, the traced run last)."""
    reached: dict[str, list[tuple[str, int, str]]] = Field(default_factory=dict)
    """Test id -> (file relative to the workdir, first line, qualified name) of each function entered below it."""
    notes: list[str] = Field(default_factory=list)
    output_tail: str = ""
    """The last 2,000 characters of the last run's output (what to show when no test passed)."""
    seconds: list[float] = Field(default_factory=list)
    """Seconds each run took, in the order of `runs`."""


REACH_TRACE = TraceOptions(max_events=2_000, max_bytes=1_000_000, repr_cap=8)
"""The trace caps of `suite_reach`'s traced run. Small on purpose: what a test reached comes from the chain's
`sources`, which the tracer records at every entry into a repository function even after a cap has cut the events
(up to 500 per test), so a cut costs no reach while the line events it stops are the tracer's cost. On marshmallow's
`tests/test_schema.py` (246 tests) these caps and the former 50,000 events / 20 MB gave the same reach, 10,092
(test, function) pairs, and half the records to read back."""


def suite_reach(
    sandbox: Sandbox,
    argv: list[str],
    timeout: float,
    untraced_runs: int = 1,
    traced_timeout: Callable[[float], float] | None = None,
    trace: TraceOptions = REACH_TRACE,
) -> SuiteReach:
    """Run a pytest suite `untraced_runs` times untraced, then once under the tracer's corpus mode, in a started
    sandbox; what each test reached comes from the functions its trace entered (its call events and sources).
    `timeout` bounds each untraced run; `traced_timeout`, given the slowest untraced run's seconds, gives the traced
    run's bound (default `timeout` too). A run that does not finish within its bound is a `SuiteTimeout`."""
    options = CorpusOptions(trace=trace, function_traces=True, check_outcomes=False)
    folder = tracer_dir(sandbox)
    sandbox.write_file(f"{folder}/swe_env_tracer.py", tracer.runner_source())
    found = SuiteReach()
    for traced in [False] * untraced_runs + [True]:
        limit = timeout
        if traced and traced_timeout is not None:
            limit = traced_timeout(max(found.seconds, default=0.0))
        result, seconds = run_suite(sandbox, CorpusRun(argv=argv), options, folder, traced, limit, {}, (0, 1))
        found.notes += result.notes
        if result.timed_out:
            raise SuiteTimeout(traced, limit)
        found.runs.append(read_outcomes(sandbox, folder))
        found.seconds.append(round(seconds, 1))
        found.output_tail = result.output[-2000:]
    for raw in iter_traces(sandbox, folder, found.notes):
        if raw.test_id is None:
            continue
        places = {(event.file, event.line, event.function) for event in raw.events if event.event == "call" and event.depth}
        for key in raw.sources:
            file, line, function = key.rsplit(":", 2)
            if line.isdigit():
                places.add((file, int(line), function))
        found.reached.setdefault(raw.test_id, [])
        found.reached[raw.test_id] = sorted(set(found.reached[raw.test_id]) | places)
    return found
