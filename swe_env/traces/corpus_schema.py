"""What a trace corpus is on disk: its options (`CorpusOptions`), its records (`CorpusTrace`, with a repository-level
record's `ContextBlock`s), the manifest (`CorpusManifest`: one `TaskCorpus` row per task or shard) and the tracer's
raw lines (`RawTrace`). Models only; `corpus` fills them.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..data.task import RunnerName
from .host import Trace, TraceOptions

MANIFEST_VERSION = 1
Level = Literal["test", "function", "repository"]
Levels = Literal["function", "repository", "both"]
Stop = Literal["max_traces", "max_bytes", "wall_time", "timeout"]
Suite = Literal["whole", "task"]


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


class RawTrace(Trace):
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
            "tasks": len(rows),
            "failed_tasks": sum(r.status == "failed" for r in rows),
            "test_traces": sum(r.test_traces for r in rows),
            "function_traces": sum(r.function_traces for r in rows),
            "repository_traces": sum(r.repository_traces for r in rows),
            "repository_dropped": sum(r.repository_dropped for r in rows),
            "context_cut": sum(r.context_cut for r in rows),
            "context_dropped": sum(r.context_dropped for r in rows),
            "duplicates": sum(r.duplicates for r in rows),
            "bytes": sum(r.bytes for r in rows),
            "tokens": sum(r.tokens for r in rows),
            "tests": sum(r.tests for r in rows),
            "failed_tests": sum(len(r.failed_tests) for r in rows),
            "outcome_changes": sum(len(r.outcome_changes) for r in rows),
            **{f"cut_{reason}": count for reason, count in sorted(cut.items())},
        }
