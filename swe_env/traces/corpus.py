"""Trace corpora of whole repositories: every test function of a suite as its own trace.

`trace_corpus` runs, for each task, the repository's own pytest suite (the task's test
command, or a given selection) in a container of its own from the task's instance image,
under the in-container tracer in corpus mode (`tracer/runner.py`, CORPUS): each test
function is one test-level trace (entry: the test function, its source as context; below it
the frames of the repository's code, site-packages out of scope), and each repository
function it calls is cut out of it as a function-level trace (entry: that function, its
source as context). With `levels` "repository" (or "both") each test's whole trace is also
written as a repository-level record: the same events, with the source of every repository
function the test reached as its context (`ContextBlock`s, bounded by `repository_context_bytes`;
`repository_context` renders it). Records are `CorpusTrace`s: the trace schema of `swe_env.traces.host` plus the
corpus fields. The hidden tests are not applied unless asked (`with_test_patch`): a corpus
is the repository's own tests at base_commit.

Out directory:

    manifest.json            options, one `TaskCorpus` per task (counts, sizes, cut traces,
                             failed tests, the outcome check), totals; rewritten after each task
    traces/<task>.jsonl      one `CorpusTrace` per line (the source of truth)
    cwm/<task>.jsonl         with `cwm`: one `traces.cwm_record` per line, same order

A re-run with the same out directory and options skips the tasks the manifest has as
done (or stopped by a corpus cap) and keeps deduplicating against their shards.

Why one module of this size: one pipeline (run untraced, run traced, cut function traces,
dedup, shard, resume) whose steps pass one row of state between them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import itertools
import json
import os
import re
import shlex
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from . import tracer
from ..build.images import ImageBuilder
from ..data.task import RunnerName
from ..grading import runners, seal
from ..runtime.sandbox import MAX_READ_BYTES, Sandbox
from ..runtime.shell import CommandResult
from ..data.task import Task
from .host import (Trace, TraceEntry, TraceError, TraceEvent, TraceOptions, USAGE_PREFIX, apply_patch, cwm_context,
                   cwm_record, tracer_dir)

MANIFEST_VERSION = 1
PART_BYTES = 16 * 1024 * 1024
"""The tracer starts a new traces file past this many bytes; each part is read back whole."""
DEFAULT_SELECT_COMMAND = "python -m pytest -p no:cacheprovider"
"""What a `select` is appended to (the task's own command is used as written without one)."""
Level = Literal["test", "function", "repository"]
Levels = Literal["function", "repository", "both"]
Stop = Literal["max_traces", "max_bytes", "wall_time", "timeout"]
Suite = Literal["whole", "task"]
_TOX = re.compile(r"(^|/)tox$")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")
_VALUE_OPTIONS = {
    # Options of the runners whose value is the next argument (not a test selection to drop).
    "pytest": {"-p", "-k", "-m", "-c", "-o", "-W", "-n", "--rootdir", "--junitxml", "--deselect", "--ignore",
               "--durations", "--maxfail", "--tb", "--confcutdir", "--basetemp", "--import-mode"},
    "django": {"-v", "--verbosity", "--parallel", "--settings", "-k", "--tag", "--exclude-tag", "--start-at",
               "--start-after"},
    "sympy": {"--seed", "-k", "--split", "--timeout", "--durations"},
}


class CorpusOptions(BaseModel):
    """What a corpus run records, and its bounds (the `swe-env trace-corpus` options)."""

    model_config = ConfigDict(extra="forbid")

    trace: TraceOptions = Field(default_factory=TraceOptions)
    """Per-trace options and caps (`max_events`, `max_bytes` per test trace, `repr_cap`, scope)."""
    select: list[str] = Field(default_factory=list)
    """pytest arguments selecting the tests (paths, node ids, `-k ...`), run as
    `DEFAULT_SELECT_COMMAND` + select; empty: the task's test command (see `suite`)."""
    suite: Suite = "whole"
    """Without `select`: `whole` runs the task's test command with the tests it names taken out
    (its runner and options: the repository's whole suite); `task` runs it as written."""
    shards: int = Field(default=1, ge=1)
    """Split each task's suite into this many shards, each run in a container of its own (pytest:
    by test file; sympy: its runner's `--split`); the shards spread over the workers."""
    tokenizer: str = "bytes"
    """What `tokens` counts, over each record's CWM text: `bytes` (a byte-level count: UTF-8 bytes,
    what a byte-level tokenizer emits) or a `tokenizer.json` file (the `tokenizers` package)."""
    with_test_patch: bool = False
    """Apply the task's hidden test patch first (off: the repository's own tests at base_commit)."""
    levels: Levels = "function"
    """Which records: `function` (each test's trace with the test's source as context, and the function-level traces
    cut out of it), `repository` (each test's whole trace across the modules it reaches, with the source of every
    repository function it entered as context: CWM's repository-level traces), or `both`."""
    repository_context_bytes: int = Field(default=64_000, ge=1_000)
    """Per repository-level record: bytes of source context; the test's own source is always kept, the functions it
    reached are added in call order while they fit (the rest are counted in the record's `context_dropped`)."""
    max_repository_traces: int | None = Field(default=None, gt=0)
    """Repository-level records in the whole corpus; past it they are left out (counted, the task goes on)."""
    function_traces: bool = True
    """Also cut a function-level trace out of each test trace for every repository function it calls."""
    max_function_traces_per_test: int = Field(default=100, ge=0)
    """Function-level traces kept per test trace (after deduplication), in call order."""
    dedupe: bool = True
    """Drop a trace whose content (entry and events) equals one already in the corpus."""
    check_outcomes: bool = True
    """Run the suite untraced first in the same container and compare every test's outcome."""
    max_traces: int | None = Field(default=None, gt=0)
    """Records (test and function level) in the whole corpus; the run stops adding past it."""
    max_bytes: int | None = Field(default=None, gt=0)
    """Bytes of JSONL records in the whole corpus (the CWM shards are not counted)."""
    max_seconds: float | None = Field(default=None, gt=0)
    """Wall time of the run; tasks not started by then are left for a re-run, a running one is stopped."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds each suite run (untraced, traced) may take; default the task's `grading_timeout`."""
    cwm: bool = False
    """Also write each record rendered in CWM's trace format (`cwm/<task>.jsonl`)."""


class ContextBlock(BaseModel):
    """One piece of a repository-level record's source context: a function (or body) of one file."""

    file: str
    first_line: int | None = None
    source: str
    """Whole lines, each ending in a newline (the tracer's entry source of the function)."""
    source_cut: bool = False


class CorpusTrace(Trace):
    """One corpus record: a `Trace` (the schema of `swe_env.traces.host`) and where it came from."""

    level: Level
    """`test`: the entry is the test function (its source as context); `function`: a repository function the test
    called; `repository`: the test's whole trace with the sources of what it reached as context (`context`)."""
    test_id: str
    """The pytest node id of the test whose run this trace comes from."""
    parent_trace_id: str | None = None
    """For a function-level trace: the test-level trace it was cut out of (which may have been deduplicated away)."""
    content_hash: str
    """sha256 of the entry (file, function, line, source) and the events: what deduplication compares."""
    tokens: int = 0
    """Tokens of the record's CWM text under the corpus's `tokenizer`."""
    context: list[ContextBlock] | None = None
    """Repository level: the source context, the entry's own block first, then each function the test entered
    (in the order first entered) that fitted `repository_context_bytes`; None for the other levels."""
    context_dropped: int = 0
    """Repository level: functions the test entered whose source the context cap left out."""


class _RawTrace(Trace):
    """A line of the tracer's corpus output: a trace with its test id and the sources of its frames."""

    test_id: str | None = None
    sources: dict[str, dict] = Field(default_factory=dict)


class OutcomeChange(BaseModel):
    test_id: str
    untraced: str | None
    traced: str | None


class TaskCorpus(BaseModel):
    """The manifest's entry for one task (or one shard of its suite)."""

    task_id: str
    shard_index: int = 0
    """Which shard of the task's suite (0-based) this row is, of `shards`."""
    shards: int = 1

    @property
    def key(self) -> str:
        """The row's key in the manifest: the task id, with `#shard` when the suite is sharded."""
        return self.task_id if self.shards == 1 else f"{self.task_id}#{self.shard_index}"
    status: Literal["done", "stopped", "failed"]
    """`stopped`: a corpus cap, the wall time or the run's timeout ended it early (`stopped_by`); `failed`: `error`
    (also a run that recorded nothing: no test ran, or tests ran and no trace came of them)."""
    error: str | None = None
    runner: RunnerName = "pytest"
    """How the suite was run and its tests named: pytest's plugin, or Django's / sympy's runner with the grader's recorder."""
    untraced_count: int | None = None
    """Tests the untraced run reported an outcome for (None: not run)."""
    collected: int | None = None
    """pytest: items collected by the traced run (after deselection)."""
    exit_code: int | None = None
    """The traced run's exit code."""
    stopped_by: Stop | None = None
    command: str = ""
    with_test_patch: bool = False
    tests: int = 0
    """Tests that reported an outcome in the traced run."""
    outcomes: dict[str, int] = Field(default_factory=dict)
    """Traced run: outcome -> number of tests."""
    failed_tests: list[str] = Field(default_factory=list)
    """Tests whose traced outcome was failed or error."""
    untraced_tests: list[str] = Field(default_factory=list)
    """Tests with an outcome but no trace (no code object to match, skipped in setup, a corpus cap)."""
    test_traces: int = 0
    function_traces: int = 0
    repository_traces: int = 0
    """Repository-level records written (`levels` repository or both)."""
    repository_dropped: int = 0
    """Repository-level records `max_repository_traces` left out."""
    context_cut: int = 0
    """Repository-level records written whose context left functions out (`repository_context_bytes`)."""
    context_dropped: int = 0
    """Functions left out of those contexts, in all."""
    duplicates: int = 0
    """Traces dropped because the corpus already held the same content."""
    dropped_by_caps: int = 0
    """Traces the corpus caps (`max_traces`, `max_bytes`) left out."""
    bytes: int = 0
    """Bytes of this task's JSONL shard."""
    tokens: int = 0
    """Tokens of the records written (`CorpusOptions.tokenizer`)."""
    cut: dict[str, int] = Field(default_factory=dict)
    """Records written whose trace is cut or incomplete: `max_events`, `max_bytes`, `incomplete` -> count."""
    outcomes_checked: bool = False
    outcomes_unchanged: bool | None = None
    outcome_changes: list[OutcomeChange] = Field(default_factory=list)
    untraced_seconds: float | None = None
    traced_seconds: float | None = None
    seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)
    shard: str | None = None
    cwm_shard: str | None = None


class CorpusManifest(BaseModel):
    version: int = MANIFEST_VERSION
    options: CorpusOptions
    tasks: dict[str, TaskCorpus] = Field(default_factory=dict)
    not_reached: list[str] = Field(default_factory=list)
    """Tasks the wall time left out (a re-run does them)."""
    totals: dict[str, int] = Field(default_factory=dict)

    def summarize(self) -> None:
        rows = list(self.tasks.values())
        cut: Counter[str] = Counter()
        for row in rows:
            cut.update(row.cut)
        self.totals = {
            "tasks": len(rows), "failed_tasks": sum(r.status == "failed" for r in rows),
            "test_traces": sum(r.test_traces for r in rows), "function_traces": sum(r.function_traces for r in rows),
            "repository_traces": sum(r.repository_traces for r in rows),
            "repository_dropped": sum(r.repository_dropped for r in rows),
            "context_cut": sum(r.context_cut for r in rows), "context_dropped": sum(r.context_dropped for r in rows),
            "duplicates": sum(r.duplicates for r in rows), "bytes": sum(r.bytes for r in rows),
            "tokens": sum(r.tokens for r in rows),
            "tests": sum(r.tests for r in rows), "failed_tests": sum(len(r.failed_tests) for r in rows),
            "outcome_changes": sum(len(r.outcome_changes) for r in rows),
            **{f"cut_{reason}": count for reason, count in sorted(cut.items())},
        }


# ---------------------------------------------------------------- records


_EVENTS = TypeAdapter(list[TraceEvent])
_HASH_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


def content_hash(entry: TraceEntry, events: list, context: list[ContextBlock] | None = None) -> str:
    """sha256 of `json.dumps({"entry": [file, function, line, source], "events": [each event's model_dump()]},
    sort_keys=True, ensure_ascii=False)`; a repository-level record's `context` (a list of its blocks' dumps) is
    a key of it too, so it never counts as a duplicate of its test-level twin."""
    payload: dict = {"entry": [entry.file, entry.function, entry.line, entry.source],
                     "events": _EVENTS.dump_python(events)}
    if context is not None:
        payload["context"] = [block.model_dump() for block in context]
    return hashlib.sha256(_HASH_JSON(payload).encode()).hexdigest()


def function_traces(trace: Trace, sources: dict[str, dict], limit: int | None = None) -> list[Trace]:
    """The function-level traces inside a trace: one per frame below the entry, in call order (see `iter_function_traces`)."""
    return list(itertools.islice(iter_function_traces(trace, sources), limit))


def iter_function_traces(trace: Trace, sources: dict[str, dict]) -> Iterator[Trace]:
    """The function-level traces inside a trace, one at a time: one per frame below the entry, in call order.

    A frame's events are contiguous in its trace (from its `call` to its last event, the
    frames it called in between); they are taken with depths and frame numbers rebased.
    When the trace ends inside the frame (a cap, or the program ended), the function-level
    trace keeps the trace's `cut` or `complete: false` unless the frame's `return` is in.
    The entry's source comes from `sources` ("file:line:function" of the call event).
    """
    events, found = trace.events, 0
    for start, first in enumerate(events):
        if first.event != "call" or first.depth == 0:
            continue
        end = start + 1
        while end < len(events) and (events[end].depth > first.depth or events[end].frame == first.frame):
            end += 1
        segment = events[start:end]
        numbers: dict[int, int] = {}
        rebased = [event.model_copy(update={"depth": event.depth - first.depth,
                                            "frame": numbers.setdefault(event.frame, len(numbers))})
                   for event in segment]
        last = segment[-1]
        returned = last.frame == first.frame and last.event == "return"
        left = last.frame == first.frame and last.event in ("return", "exception")
        runs_to_end = end == len(events)
        whole = returned or (left and not runs_to_end) or (left and trace.cut is None and trace.complete)
        source = sources.get(f"{first.file}:{first.line}:{first.function}") or {}
        entry = TraceEntry(file=first.file, function=first.function, line=first.line, **source)
        found += 1
        yield Trace(trace_id=f"{trace.trace_id}.{found}", task_id=trace.task_id, thread=trace.thread,
                    entry=entry, repr_cap=trace.repr_cap, full_locals=trace.full_locals,
                    cut=None if whole else trace.cut, complete=whole or trace.complete,
                    event_count=len(rebased), tracer_errors=[], events=rebased)


def context_blocks(trace: Trace, sources: dict[str, dict], max_bytes: int) -> tuple[list[ContextBlock], int]:
    """A repository-level record's context: the entry's source, then the source of each function the trace entered
    (in the order first entered; one block per function, whatever line it was entered at), while the rendered
    context stays within `max_bytes` (the entry's block always). Returns (blocks, functions left out)."""
    entry = trace.entry
    blocks = [ContextBlock(file=entry.file, first_line=entry.first_line, source=entry.source or "",
                           source_cut=entry.source_cut)]
    seen = {(entry.file, entry.first_line)}
    size, dropped = _size(repository_context(trace, blocks)), 0
    for event in trace.events:
        if event.event != "call" or event.depth == 0:
            continue
        found = sources.get(f"{event.file}:{event.line}:{event.function}")
        if not found or not found.get("source"):
            continue
        block = ContextBlock(file=event.file, first_line=found.get("first_line"), source=found["source"],
                             source_cut=bool(found.get("source_cut")))
        if (block.file, block.first_line) in seen:
            continue
        seen.add((block.file, block.first_line))
        # A block adds its source, and a file's header line when it opens a new file.
        extra = _size(block.source) + 1 + (0 if any(b.file == block.file for b in blocks) else _size(f"# {block.file}\n") + 1)
        if size + extra > max_bytes:
            dropped += 1
            continue
        blocks.append(block)
        size += extra
    return blocks, dropped


def repository_context(trace: Trace, blocks: list[ContextBlock]) -> str:
    """The CONTEXT of a repository-level record in CWM's layout: per file (the entry's first, then in the order first
    entered) a `# <path>` line and its blocks in line order, a blank line between blocks; START_MARKER on the
    entry line (`host.cwm_context` of the entry's own block)."""
    by_file: dict[str, list[ContextBlock]] = {}
    for block in blocks:
        by_file.setdefault(block.file, []).append(block)
    parts = []
    for file, found in by_file.items():
        texts = []
        for block in sorted(found, key=lambda b: b.first_line or 0):
            if block is blocks[0]:
                texts.append(cwm_context(trace))
            else:
                texts.append(block.source if block.source.endswith("\n") else block.source + "\n")
        parts.append(f"# {file}\n" + "\n".join(texts))
    return "\n".join(parts)


def _size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def render_record(record: CorpusTrace) -> dict:
    """A record's `cwm_record` (a repository-level record with its `repository_context`)."""
    context = repository_context(record, record.context) if record.context is not None else None
    return cwm_record(record, context=context)


def _cut_reason(trace: Trace) -> str | None:
    if trace.cut:
        return trace.cut
    return None if trace.complete else "incomplete"


def _shard_name(key: str) -> str:
    return key.replace("/", "__") + ".jsonl"


# ---------------------------------------------------------------- the shared budget


class _Corpus:
    """The state shared by the workers: dedup hashes, the corpus caps, the manifest on disk."""

    def __init__(self, out: Path, manifest: CorpusManifest, options: CorpusOptions):
        self.out, self.manifest, self.options = out, manifest, options
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.traces = sum(r.test_traces + r.function_traces + r.repository_traces for r in manifest.tasks.values())
        self.repository_traces = sum(r.repository_traces for r in manifest.tasks.values())
        self.bytes = sum(r.bytes for r in manifest.tasks.values())
        self.started = time.monotonic()
        self.stop_reason: Stop | None = None
        self.count_tokens = token_counter(options.tokenizer)

    def remaining_traces(self) -> int | None:
        return None if self.options.max_traces is None else max(0, self.options.max_traces - self.traces)

    def remaining_bytes(self) -> int | None:
        return None if self.options.max_bytes is None else max(0, self.options.max_bytes - self.bytes)

    def remaining_seconds(self) -> float | None:
        if self.options.max_seconds is None:
            return None
        return self.options.max_seconds - (time.monotonic() - self.started)

    def full(self) -> Stop | None:
        if self.remaining_traces() == 0:
            return "max_traces"
        if self.remaining_bytes() == 0:
            return "max_bytes"
        left = self.remaining_seconds()
        if left is not None and left <= 0:
            return "wall_time"
        return None

    def admit(self, trace: CorpusTrace,
              line_bytes: int) -> Literal["ok", "duplicate", "max_traces", "max_bytes", "max_repository_traces"]:
        """Under the lock: take a record into the corpus, or say why not."""
        if self.options.dedupe and trace.content_hash in self.seen:
            return "duplicate"
        repository = trace.level == "repository"
        if repository and self.options.max_repository_traces is not None \
                and self.repository_traces >= self.options.max_repository_traces:
            return "max_repository_traces"
        if self.remaining_traces() == 0:
            return "max_traces"
        left = self.remaining_bytes()
        if left is not None and line_bytes > left:
            return "max_bytes"
        self.seen.add(trace.content_hash)
        self.repository_traces += repository
        self.traces += 1
        self.bytes += line_bytes
        return "ok"

    def record(self, row: TaskCorpus) -> None:
        with self.lock:
            self.manifest.tasks[row.key] = row
            self.write_manifest()

    def write_manifest(self) -> None:
        self.manifest.summarize()
        _write_atomic(self.out / "manifest.json", self.manifest.model_dump_json(indent=1).encode())


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


# ---------------------------------------------------------------- one task


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
        raise TraceError(f"task {task.id}: its test command is not one program ({task.tests.command!r}); "
                         "give a pytest selection (--select)")
    runner: RunnerName = task.tests.runner
    whole = options.suite == "whole"
    note = None
    if _TOX.search(words[0]):
        rest = words[words.index("--") + 1:] if "--" in words else []
        words, runner = ["python", "-m", "pytest", "-rA", *rest], "pytest"
        note = "a tox run, traced as python -m pytest in the task's environment"
    if runner not in ("pytest", "django", "sympy"):
        raise TraceError(f"task {task.id}: its tests run with {runner}, which the tracer cannot follow; "
                         "give a pytest selection (--select)")
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


def _run_suite(sandbox: Sandbox, run: CorpusRun, options: CorpusOptions, folder: str, traced: bool,
               timeout: float, budget: dict, shard: tuple[int, int]) -> tuple[CommandResult, float]:
    out, outcomes, status = f"{folder}/traces.jsonl", f"{folder}/outcomes.jsonl", f"{folder}/status.json"
    argv = run.argv
    if shard[1] > 1 and run.runner == "sympy":
        argv = [*argv, f"--split={shard[0] + 1}/{shard[1]}"]
    sources = options.function_traces or options.levels != "function"
    corpus = {"trace": traced, "outcomes": outcomes, "status": status, "sources": sources,
              "part_bytes": PART_BYTES, "runner": run.runner, "shard": list(shard), **budget}
    config = {"argv": argv, "function": None, "args": None, "out": out, "workdir": sandbox.workdir,
              "corpus": corpus, **options.trace.model_dump()}
    sandbox.write_file(f"{folder}/config.json", json.dumps(config).encode())
    sandbox.exec(["/bin/bash", "-c", f'rm -f -- "$1" "$1".* "$2" "$3"', "rm", out, outcomes, status])
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
    command = (f"({prelude}cd -- {shlex.quote(sandbox.workdir)} && exec python "
               f"{shlex.quote(folder + '/swe_env_tracer.py')} {shlex.quote(folder + '/config.json')})")
    started = time.monotonic()
    result = sandbox.run(command, timeout=max(1.0, timeout))
    seconds = time.monotonic() - started
    usage = next((line for line in result.output.splitlines() if line.startswith(USAGE_PREFIX)), None)
    if result.exit_code == 2 and usage is not None:
        raise TraceError(usage[len(USAGE_PREFIX):].strip())
    return result, seconds


def _read_outcomes(sandbox: Sandbox, folder: str) -> dict[str, str]:
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


def _iter_traces(sandbox: Sandbox, folder: str, notes: list[str]) -> Iterator[_RawTrace]:
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
                trace = _RawTrace.model_validate_json(line)
            except ValueError:
                dropped += 1
                continue
            yield trace
        part += 1
    if dropped:
        notes.append(f"{dropped} line(s) of the traces file were not traces and were dropped")


def _read_status(sandbox: Sandbox, folder: str) -> dict:
    try:
        status = json.loads(sandbox.read(f"{folder}/status.json").data)
    except (FileNotFoundError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def _tail(result: CommandResult, lines: int = 3) -> str:
    """The last lines of a run's output, on one line (why a run ran nothing, in its own words)."""
    found = [line.strip() for line in result.output.splitlines() if line.strip()][-lines:]
    return " | ".join(found)[-600:] or "(no output)"


def _nothing_recorded(row: TaskCorpus, result: CommandResult, status: dict, written: int) -> str | None:
    """Why a finished run must not count as done: no test ran, or tests ran and nothing was traced."""
    if row.stopped_by is not None:
        return None
    untraced = "not run" if row.untraced_count is None else f"{row.untraced_count} test(s)"
    where = f"(exit code {result.exit_code}; untraced run: {untraced}"
    if row.collected is not None:
        where += f"; collected: {row.collected}"
    where += f"): {_tail(result)}"
    if row.tests == 0:
        return f"no test ran {where}"
    if written == 0 and not status.get("dropped"):
        return (f"the tracer recorded no trace for the {row.tests} test(s) that ran (tests in other processes, "
                f"e.g. pytest-xdist's, are not traced) {where}")
    return None


def corpus_of_task(task: Task, image: str, corpus: _Corpus, active: set | None = None,
                   shard: tuple[int, int] = (0, 1)) -> TaskCorpus:
    """Trace one task's suite (or one shard of it) into its shard file; the manifest row says what happened."""
    options = corpus.options
    started = time.monotonic()
    row = TaskCorpus(task_id=task.id, shard_index=shard[0], shards=shard[1], status="done",
                     with_test_patch=options.with_test_patch)
    timeout = options.timeout or task.limits.grading_timeout
    sandbox = Sandbox.for_task(task, image, "corpus")
    with task_container(row, sandbox, active, started):
        run = corpus_command(task, options)
        row.command, row.runner = shlex.join(run.argv), run.runner
        if run.note:
            row.notes.append(run.note)
        sandbox.start()
        if options.with_test_patch:
            apply_patch(sandbox, task.tests.test_patch)
        folder = tracer_dir(sandbox)
        sandbox.write_file(f"{folder}/swe_env_tracer.py", tracer.runner_source())
        untraced: dict[str, str] = {}
        if options.check_outcomes:
            left = corpus.remaining_seconds()
            result, row.untraced_seconds = _run_suite(sandbox, run, options, folder, False,
                                                      timeout if left is None else min(timeout, left), {}, shard)
            row.notes += result.notes
            untraced = _read_outcomes(sandbox, folder)
            row.untraced_count = len(untraced)
            if result.timed_out:
                row.notes.append("the untraced run timed out")
        with corpus.lock:
            budget = {"max_traces": corpus.remaining_traces(), "max_total_bytes": corpus.remaining_bytes()}
            left = corpus.remaining_seconds()
        stop = corpus.full()
        if stop is not None:
            row.status, row.stopped_by = "stopped", stop
            return row
        run_timeout = timeout if left is None else min(timeout, left)
        result, row.traced_seconds = _run_suite(sandbox, run, options, folder, True, run_timeout, budget, shard)
        row.notes += result.notes
        row.exit_code = result.exit_code
        if result.timed_out:
            row.status = "stopped"
            row.stopped_by = "wall_time" if left is not None and run_timeout == left else "timeout"
        traced = _read_outcomes(sandbox, folder)
        status = _read_status(sandbox, folder)
        if isinstance(status.get("collected"), int):
            row.collected = status["collected"]
        if status.get("stopped") and row.stopped_by is None:
            row.status, row.stopped_by = "stopped", status["stopped"]
        row.tests = len(traced)
        row.outcomes = dict(Counter(traced.values()))
        row.failed_tests = sorted(test for test, outcome in traced.items() if outcome in ("failed", "error"))
        if options.check_outcomes and not result.timed_out:
            row.outcomes_checked = True
            row.outcome_changes = [OutcomeChange(test_id=test, untraced=untraced.get(test), traced=traced.get(test))
                                   for test in sorted(set(untraced) | set(traced))
                                   if untraced.get(test) != traced.get(test)]
            row.outcomes_unchanged = not row.outcome_changes
        written = _write_shards(task, _iter_traces(sandbox, folder, row.notes), traced, corpus, row)
        empty = _nothing_recorded(row, result, status, written)
        if empty is not None:
            row.status, row.error = "failed", empty
            if row.bytes == 0:  # nothing kept: no shard files for a failed task
                for written_path in (row.shard, row.cwm_shard):
                    if written_path:
                        (corpus.out / written_path).unlink(missing_ok=True)
                row.shard = row.cwm_shard = None
    return row


@contextlib.contextmanager
def task_container(row, sandbox: Sandbox, active: set | None, started: float) -> Iterator[None]:
    """A task's work in its own container: a trace, sandbox or engine failure fails the row (`status`, `error`:
    its cause in one line) instead of the run; the container is removed (and left `active`) and the row timed."""
    if active is not None:
        active.add(sandbox)
    try:
        yield
    except TraceError as exc:
        row.status, row.error = "failed", str(exc)
    except (OSError, RuntimeError) as exc:  # SandboxError, ShellError, DiskLimitExceeded, the engine
        row.status, row.error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        sandbox.close()
        if active is not None:
            active.discard(sandbox)
        row.seconds = round(time.monotonic() - started, 3)


def token_counter(tokenizer: str) -> Callable[[str], int]:
    """Count tokens of a text: `bytes` (UTF-8 bytes: a byte-level count) or a `tokenizer.json` file."""
    if tokenizer == "bytes":
        return lambda text: len(text.encode("utf-8"))
    if not Path(tokenizer).is_file():
        raise ValueError(f"--tokenizer: {tokenizer}: not `bytes` and not a tokenizer.json file")
    try:
        from tokenizers import Tokenizer  # optional: only for a named tokenizer
    except ImportError:
        raise ValueError(f"--tokenizer: {tokenizer}: counting with a tokenizer file needs the `tokenizers` "
                         "package (pip install tokenizers)") from None
    try:
        loaded = Tokenizer.from_file(tokenizer)
    except Exception as exc:  # noqa: BLE001 - the library's own errors, as one line
        raise ValueError(f"--tokenizer: {tokenizer}: {str(exc).splitlines()[0]}") from None
    return lambda text: len(loaded.encode(text, add_special_tokens=False).ids)


def _write_shards(task: Task, raw: Iterator[_RawTrace], outcomes: dict[str, str], corpus: _Corpus,
                  row: TaskCorpus) -> int:
    """Write the task's records as they come (each shard file replaced whole at the end); returns the test traces read."""
    options = corpus.options
    name = _shard_name(row.key)
    paths = [corpus.out / "traces" / name, *([corpus.out / "cwm" / name] if options.cwm else [])]
    temporary = [path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp") for path in paths]
    for path in temporary:
        path.parent.mkdir(parents=True, exist_ok=True)
    with open(temporary[0], "wb") as shard, (open(temporary[1], "wb") if options.cwm else open(os.devnull, "wb")) as cwm:
        seen = _write_records(task, raw, corpus, row, shard, cwm)
    for path, final in zip(temporary, paths):
        os.replace(path, final)
    row.untraced_tests = sorted(set(outcomes) - seen)
    row.shard = f"traces/{name}"
    row.cwm_shard = f"cwm/{name}" if options.cwm else None
    return len(seen)


def _write_records(task: Task, raw: Iterator[_RawTrace], corpus: _Corpus, row: TaskCorpus, shard, cwm) -> set[str]:
    options = corpus.options
    count = corpus.count_tokens
    cut: Counter[str] = Counter()
    traced_tests = set()
    for number, item in enumerate(raw, start=1):
        if item.test_id is None:
            continue
        traced_tests.add(item.test_id)
        # The models are passed on as they are, not dumped and validated again: a test of a real
        # suite can hold 10,000 events, and its function-level traces as many again.
        base = Trace(**{name: getattr(item, name) for name in Trace.model_fields})
        base.trace_id, base.task_id = f"{task.id}:{number}", task.id
        functions = options.levels in ("function", "both")
        candidates: Iterator[tuple[Level, Trace]] = iter([("test", base)] if functions else [])
        if options.levels != "function":
            candidates = itertools.chain(candidates, [("repository", base)])
        if functions and options.function_traces and options.max_function_traces_per_test:
            candidates = itertools.chain(candidates, (("function", t) for t in iter_function_traces(base, item.sources)))
        kept_functions = 0
        for level, trace in candidates:  # function-level traces are made only until enough are kept
            if level == "function" and kept_functions >= options.max_function_traces_per_test:
                break
            blocks, dropped = (context_blocks(trace, item.sources, options.repository_context_bytes)
                               if level == "repository" else (None, 0))
            record = CorpusTrace(**{name: getattr(trace, name) for name in Trace.model_fields}, level=level,
                                 test_id=item.test_id, parent_trace_id=base.trace_id if level == "function" else None,
                                 content_hash=content_hash(trace.entry, trace.events, blocks),
                                 context=blocks, context_dropped=dropped)
            if level == "repository":
                record.trace_id = f"{base.trace_id}.r"
            rendered = render_record(record)
            record.tokens = count(rendered["text"])
            data = (record.model_dump_json() + "\n").encode()
            with corpus.lock:
                verdict = corpus.admit(record, len(data))
            if verdict == "duplicate":
                row.duplicates += 1
                continue
            if verdict == "max_repository_traces":  # its own cap: the other levels go on
                row.repository_dropped += 1
                continue
            if verdict != "ok":
                row.dropped_by_caps += 1
                row.status, row.stopped_by = "stopped", row.stopped_by or verdict
                continue
            shard.write(data)
            row.bytes += len(data)
            row.tokens += record.tokens
            if level == "test":
                row.test_traces += 1
            elif level == "repository":
                row.repository_traces += 1
                row.context_cut += dropped > 0
                row.context_dropped += dropped
            else:
                row.function_traces += 1
                kept_functions += 1
            reason = _cut_reason(record)
            if reason:
                cut[reason] += 1
            if options.cwm:
                cwm.write((json.dumps({**rendered, "level": level, "test_id": item.test_id,
                                       "tokens": record.tokens}, ensure_ascii=False) + "\n").encode())
    row.cut = dict(cut)
    return traced_tests


# ---------------------------------------------------------------- the corpus


def load_manifest(out: str | Path) -> CorpusManifest | None:
    path = Path(out) / "manifest.json"
    if not path.exists():
        return None
    try:
        return CorpusManifest.model_validate_json(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: not a corpus manifest ({str(exc).splitlines()[0]})") from None


def read_corpus(out: str | Path, task_id: str | None = None) -> list[CorpusTrace]:
    """The records of a corpus (or of one task), in shard order."""
    manifest = load_manifest(out)
    if manifest is None:
        raise ValueError(f"{out}: no manifest.json; not a corpus")
    records = []
    for row in manifest.tasks.values():
        if row.shard and (task_id is None or row.task_id == task_id):
            for line in (Path(out) / row.shard).read_text(encoding="utf-8").splitlines():
                if line.strip():
                    records.append(CorpusTrace.model_validate_json(line))
    return records


def trace_corpus(tasks: list[Task], out: str | Path, options: CorpusOptions | None = None, *, workers: int = 1,
                 builder: ImageBuilder | None = None, restart: bool = False,
                 on_start: Callable[[Task], None] | None = None,
                 on_task: Callable[[TaskCorpus], None] | None = None) -> CorpusManifest:
    """Trace the test suites of `tasks` into a corpus under `out` (see the module's docstring).

    `workers` tasks (or shards of their suites) run at once, each in its own container. Resumes unless `restart`: tasks
    the manifest has as done or stopped are skipped (a manifest made with other options is
    an error). `on_start`/`on_task` are called as tasks start and finish (from worker threads).
    """
    options = options or CorpusOptions()
    out = Path(out)
    manifest = None if restart else load_manifest(out)
    if manifest is not None and manifest.options != options:
        raise ValueError(f"{out}/manifest.json was made with other options; pass --restart or another --out")
    manifest = manifest or CorpusManifest(options=options)
    ids = [task.id for task in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError("the tasks hold an id twice")
    for task in tasks:  # a command the tracer cannot run fails here, before any image is built
        run = corpus_command(task, options)
        if options.shards > 1 and run.runner == "django":
            raise TraceError(f"task {task.id}: Django's runner has no shards; run it with --shards 1")
    finished = {key for key, row in manifest.tasks.items() if row.status in ("done", "stopped")}
    corpus = _Corpus(out, manifest, options)
    for key, row in manifest.tasks.items():
        if key in finished and row.shard and (out / row.shard).exists():
            for line in (out / row.shard).read_text(encoding="utf-8").splitlines():
                if line.strip():
                    corpus.seen.add(json.loads(line)["content_hash"])
    def key_of(task: Task, index: int) -> str:
        return task.id if options.shards == 1 else f"{task.id}#{index}"

    todo = [(task, index) for task in tasks for index in range(options.shards) if key_of(task, index) not in finished]
    manifest.not_reached = []
    builder = builder or ImageBuilder()
    active: set = set()
    stop_all = threading.Event()

    def one(task: Task, index: int) -> TaskCorpus | None:
        if stop_all.is_set() or corpus.full() == "wall_time":
            return None
        if on_start:
            on_start(task)
        try:
            image = builder.ensure(task)
        except Exception as exc:  # noqa: BLE001 - an image that does not build fails this task only
            row = TaskCorpus(task_id=task.id, shard_index=index, shards=options.shards, status="failed",
                             error=f"{type(exc).__name__}: {exc}".splitlines()[0])
        else:
            row = corpus_of_task(task, image, corpus, active, (index, options.shards))
        corpus.record(row)
        if on_task:
            on_task(row)
        return row

    out.mkdir(parents=True, exist_ok=True)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="corpus")
    futures: dict = {}
    try:
        futures = {pool.submit(one, task, index): key_of(task, index) for task, index in todo}
        for future in concurrent.futures.as_completed(futures):
            if future.result() is None:
                manifest.not_reached.append(futures[future])
    except BaseException:
        stop_all.set()
        for future in futures:
            future.cancel()
        for sandbox in list(active):
            sandbox.close()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    with corpus.lock:
        manifest.not_reached.sort()
        corpus.write_manifest()
    return manifest


__all__ = ["ContextBlock", "CorpusManifest", "CorpusOptions", "CorpusRun", "CorpusTrace", "OutcomeChange", "TaskCorpus",
           "content_hash", "context_blocks", "corpus_command", "render_record", "repository_context", "corpus_of_task", "function_traces", "iter_function_traces", "load_manifest", "read_corpus", "suite_reach",
           "SuiteReach", "task_container", "token_counter", "trace_corpus"]


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


def suite_reach(sandbox: Sandbox, argv: list[str], timeout: float, untraced_runs: int = 1) -> SuiteReach:
    """Run a pytest suite `untraced_runs` times untraced, then once under the tracer's corpus mode, in a started
    sandbox; what each test reached comes from the functions its trace entered (its call events and sources)."""
    options = CorpusOptions(trace=TraceOptions(max_events=50_000, max_bytes=20_000_000, repr_cap=8),
                            function_traces=True, check_outcomes=False)
    folder = tracer_dir(sandbox)
    sandbox.write_file(f"{folder}/swe_env_tracer.py", tracer.runner_source())
    found = SuiteReach()
    for traced in [False] * untraced_runs + [True]:
        result, _seconds = _run_suite(sandbox, CorpusRun(argv=argv), options, folder, traced, timeout, {}, (0, 1))
        found.notes += result.notes
        if result.timed_out:
            raise TraceError(f"the suite did not finish within {timeout:g} s")
        found.runs.append(_read_outcomes(sandbox, folder))
        found.output_tail = result.output[-2000:]
    for raw in _iter_traces(sandbox, folder, found.notes):
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
