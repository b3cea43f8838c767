"""Traces of a task before and after its fix: what a bug changes in execution.

For a task with a gold patch (a synthesized one: its `meta` names the method, mutation kind and
function, and its gold patch is the reverse of the bug), the tests that decide it (FAIL_TO_PASS)
are traced on the buggy tree (base_commit, the test patch applied) and again in the same
container after the gold patch is applied. Each test gives one `TracePair`: both
repository-level records (`traces.corpus.CorpusTrace`, level "repository": the test's whole
trace with the sources it reached as context, so the fixed tree's context holds the fixed
source), the outcome on each side, the first event at which the two executions differ, and the
functions whose own events differ (or that ran on one side only): the world-model signal of
mutate-fix data.

Out directory:

    pairs.json             options and one `PairTask` per task (counts, outcomes, errors), totals
    pairs/<task>.jsonl     one `TracePair` per deciding test
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ..build.images import ImageBuilder
from ..data.task import Task
from ..runtime.sandbox import Sandbox
from . import tracer
from .corpus import task_container, write_atomic
from .corpus_schema import CorpusOptions, CorpusTrace
from .host import Trace, TraceError, TraceEvent, apply_patch, tracer_dir
from .records import content_hash, context_blocks, render_record, token_counter
from .suite_run import DEFAULT_SELECT_COMMAND, CorpusRun, iter_traces, read_outcomes, run_suite

Side = Literal["before", "after"]


class Divergence(BaseModel):
    """The first event at which the buggy and the fixed runs differ (kind, place, source line, locals or value)."""

    index: int
    """The event's index in both traces (the events before it are the same)."""
    before: TraceEvent | None = None
    """The buggy run's event there (None: its trace ended first)."""
    after: TraceEvent | None = None
    """The fixed run's event there (None: its trace ended first)."""


class FunctionChange(BaseModel):
    """A function whose own events differ between the runs (its calls, in order, each without frame numbers)."""

    file: str
    function: str
    change: Literal["changed", "only_before", "only_after"]
    before_events: int
    after_events: int


class TracePair(BaseModel):
    """One deciding test traced on the buggy tree and on the fixed one."""

    task_id: str
    test_id: str
    meta: dict[str, str] = Field(default_factory=dict)
    """The task's `meta` (a synthesized task's method, kind, file, function, source commit)."""
    outcome_before: str | None
    outcome_after: str | None
    before: CorpusTrace | None
    """The buggy run's repository-level record (None: the test left no trace)."""
    after: CorpusTrace | None
    first_divergence: Divergence | None
    """None when both traces are the same (or one is missing)."""
    functions_changed: list[FunctionChange] = Field(default_factory=list)
    tokens: int = 0
    """Tokens of both records' CWM texts (`CorpusOptions.tokenizer`)."""


class PairTask(BaseModel):
    """The manifest's row for one task."""

    task_id: str
    status: Literal["done", "failed"]
    error: str | None = None
    tests: list[str] = Field(default_factory=list)
    """The deciding tests traced (FAIL_TO_PASS)."""
    pairs: int = 0
    """Tests with a trace on both sides."""
    diverged: int = 0
    """Pairs whose traces differ."""
    outcomes_before: dict[str, str] = Field(default_factory=dict)
    outcomes_after: dict[str, str] = Field(default_factory=dict)
    tokens: int = 0
    bytes: int = 0
    seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)
    shard: str | None = None


class PairManifest(BaseModel):
    options: CorpusOptions
    tasks: dict[str, PairTask] = Field(default_factory=dict)
    totals: dict[str, int] = Field(default_factory=dict)

    def summarize(self) -> None:
        rows = list(self.tasks.values())
        self.totals = {
            "tasks": len(rows),
            "failed_tasks": sum(r.status == "failed" for r in rows),
            "tests": sum(len(r.tests) for r in rows),
            "pairs": sum(r.pairs for r in rows),
            "diverged": sum(r.diverged for r in rows),
            "tokens": sum(r.tokens for r in rows),
            "bytes": sum(r.bytes for r in rows),
        }


# ---------------------------------------------------------------- comparing two traces


_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
"""An object's address in a default repr (`<function f at 0x7f6a...>`): it differs from run to run."""


def _same_run(text: str | None) -> str | None:
    return None if text is None else _ADDRESS.sub("0x?", text)


def _key(event: TraceEvent) -> tuple:
    """What an event says as CWM's layout writes it (kind, function, source line, locals, value), without its frame
    number (numbered per trace) and line number (a bug that adds or removes lines moves every line below it in its file:
    not a change in execution), and with objects' addresses in reprs made equal (two runs never place objects alike)."""
    return (
        event.event,
        event.file,
        event.function,
        event.depth,
        event.source,
        tuple(sorted((name, _same_run(value)) for name, value in (event.locals or {}).items())),
        _same_run(event.value),
        _same_run(event.exception),
    )


def first_divergence(before: Trace, after: Trace) -> Divergence | None:
    """The first event index at which the two traces differ (line numbers and objects' addresses in reprs aside);
    None when they are the same."""
    for index, (one, two) in enumerate(zip(before.events, after.events, strict=False)):  # lengths compared below
        if _key(one) != _key(two):
            return Divergence(index=index, before=one, after=two)
    if len(before.events) == len(after.events):
        return None
    index = min(len(before.events), len(after.events))
    return Divergence(
        index=index,
        before=before.events[index] if index < len(before.events) else None,
        after=after.events[index] if index < len(after.events) else None,
    )


def _calls(trace: Trace) -> dict[tuple[str, str], list[tuple]]:
    """(file, function) -> each of its frames' events (depth made relative), frames in the order they started."""
    frames: dict[int, list[TraceEvent]] = {}
    for event in trace.events:
        frames.setdefault(event.frame, []).append(event)
    found: dict[tuple[str, str], list[tuple]] = {}
    for events in frames.values():
        base = events[0].depth
        found.setdefault((events[0].file, events[0].function), []).append(tuple(_key(e.model_copy(update={"depth": e.depth - base})) for e in events))
    return found


def functions_changed(before: Trace, after: Trace) -> list[FunctionChange]:
    """Functions whose own events differ between the traces, or that ran in one of them only (in first-seen order)."""
    one, two = _calls(before), _calls(after)
    changes = []
    for key in [*one, *(k for k in two if k not in one)]:
        if one.get(key) == two.get(key):
            continue
        change: Literal["changed", "only_before", "only_after"] = "only_after" if key not in one else "only_before" if key not in two else "changed"
        changes.append(
            FunctionChange(
                file=key[0],
                function=key[1],
                change=change,
                before_events=sum(map(len, one.get(key, []))),
                after_events=sum(map(len, two.get(key, []))),
            )
        )
    return changes


# ---------------------------------------------------------------- one task


def _traced(
    sandbox: Sandbox,
    task: Task,
    tests: list[str],
    options: CorpusOptions,
    folder: str,
    timeout: float,
    side: Side,
    notes: list[str],
    count: Callable[[str], int],
) -> tuple[dict[str, str], dict[str, CorpusTrace]]:
    """Run the tests once under the corpus tracer: outcomes, and each test's repository-level record."""
    # One hash seed for both sides: a set's order (and so its repr) would otherwise differ between the runs.
    run = CorpusRun(argv=[*shlex.split(DEFAULT_SELECT_COMMAND), *tests], env={"PYTHONHASHSEED": "0"})
    # The sources of the functions a test reaches are recorded whatever `levels` says: they are the records' context.
    traced_options = options.model_copy(update={"levels": "repository"})
    result, _seconds = run_suite(sandbox, run, traced_options, folder, True, timeout, {}, (0, 1))
    notes += [f"{side}: {note}" for note in result.notes]
    if result.timed_out:
        raise TraceError(f"the {side} run did not finish within {timeout:g} s")
    outcomes = read_outcomes(sandbox, folder)
    records: dict[str, CorpusTrace] = {}
    for number, raw in enumerate(iter_traces(sandbox, folder, notes), start=1):
        if raw.test_id is None or raw.test_id in records:
            continue
        base = Trace(**{name: getattr(raw, name) for name in Trace.model_fields})
        blocks, dropped = context_blocks(base, raw.sources, options.repository_context_bytes)
        record = CorpusTrace(
            **{name: getattr(base, name) for name in Trace.model_fields},
            level="repository",
            test_id=raw.test_id,
            content_hash=content_hash(base.entry, base.events, blocks),
            context=blocks,
            context_dropped=dropped,
        )
        record.trace_id, record.task_id = f"{task.id}:{side}:{number}", task.id
        record.tokens = count(render_record(record)["text"])
        records[raw.test_id] = record
    return outcomes, records


def pairs_of_task(
    task: Task, image: str, options: CorpusOptions, count: Callable[[str], int], active: set | None = None
) -> tuple[PairTask, list[TracePair]]:
    """Trace the task's deciding tests before and after its gold patch, in one container of its own."""
    started = time.monotonic()
    tests = list(task.tests.fail_to_pass)
    row = PairTask(task_id=task.id, status="done", tests=tests)
    if not task.gold_patch or not task.gold_patch.strip():
        row.status, row.error = "failed", "the task has no gold patch (nothing to trace after)"
        return row, []
    if task.tests.runner != "pytest" or not tests:
        row.status, row.error = (
            "failed",
            (f"its tests run with {task.tests.runner}; before/after traces need pytest" if tests else "the task names no FAIL_TO_PASS test"),
        )
        return row, []
    timeout = options.timeout or task.limits.grading_timeout
    sandbox = Sandbox.for_task(task, image, "corpus")
    pairs: list[TracePair] = []
    with task_container(row, sandbox, active, started):
        sandbox.start()
        apply_patch(sandbox, task.tests.test_patch)  # the deciding tests may be hidden in it
        folder = tracer_dir(sandbox)
        sandbox.write_file(f"{folder}/swe_env_tracer.py", tracer.runner_source())
        row.outcomes_before, before = _traced(sandbox, task, tests, options, folder, timeout, "before", row.notes, count)
        apply_patch(sandbox, task.gold_patch)
        row.outcomes_after, after = _traced(sandbox, task, tests, options, folder, timeout, "after", row.notes, count)
        for test in tests:
            one, two = before.get(test), after.get(test)
            pair = TracePair(
                task_id=task.id,
                test_id=test,
                meta={k: str(v) for k, v in task.meta.items()},
                outcome_before=row.outcomes_before.get(test),
                outcome_after=row.outcomes_after.get(test),
                before=one,
                after=two,
                first_divergence=first_divergence(one, two) if one and two else None,
                functions_changed=functions_changed(one, two) if one and two else [],
                tokens=(one.tokens if one else 0) + (two.tokens if two else 0),
            )
            pairs.append(pair)
        row.pairs = sum(p.before is not None and p.after is not None for p in pairs)
        row.diverged = sum(p.first_divergence is not None for p in pairs)
        row.tokens = sum(p.tokens for p in pairs)
        if row.pairs == 0:  # never silently empty
            row.status = "failed"
            row.error = (
                f"no deciding test left a trace on both sides (before: {len(before)} traced, "
                f"{len(row.outcomes_before)} ran; after: {len(after)} traced, {len(row.outcomes_after)} ran)"
            )
    return row, pairs


def trace_before_after(
    tasks: Iterable[Task],
    out: str | Path,
    options: CorpusOptions | None = None,
    *,
    workers: int = 1,
    builder: ImageBuilder | None = None,
    on_task: Callable[[PairTask], None] | None = None,
) -> PairManifest:
    """Trace each task's deciding tests before and after its fix into `out` (see the module's docstring).

    Uses of `options`: the tracer's caps (`trace`), `tokenizer`, `repository_context_bytes` and `timeout`.
    Each run starts afresh (no resume): `pairs.json` and the shards of these tasks are rewritten.
    """
    options = options or CorpusOptions()
    out = Path(out)
    manifest = PairManifest(options=options)
    count = token_counter(options.tokenizer)
    builder = builder or ImageBuilder()
    lock = threading.Lock()
    active: set = set()

    def one(task: Task) -> None:
        pairs: list[TracePair] = []
        try:
            image = builder.ensure(task)
        except Exception as exc:  # noqa: BLE001 - an image that does not build fails this task only
            row = PairTask(task_id=task.id, status="failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
        else:
            row, pairs = pairs_of_task(task, image, options, count, active)
        if pairs:
            data = b"".join((pair.model_dump_json() + "\n").encode() for pair in pairs)
            name = task.id.replace("/", "__") + ".jsonl"
            write_atomic(out / "pairs" / name, data)
            row.shard, row.bytes = f"pairs/{name}", len(data)
        with lock:
            manifest.tasks[task.id] = row
            manifest.summarize()
            write_atomic(out / "pairs.json", manifest.model_dump_json(indent=1).encode())
        if on_task:
            on_task(row)

    out.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="pairs") as pool:
        futures = [pool.submit(one, task) for task in tasks]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            for sandbox in list(active):
                sandbox.close()
            raise
    return manifest


def read_pairs(out: str | Path, task_id: str) -> list[TracePair]:
    """The pairs of one task of a before/after run."""
    manifest = PairManifest.model_validate_json((Path(out) / "pairs.json").read_text())
    row = manifest.tasks[task_id]
    if not row.shard:
        return []
    return [TracePair.model_validate(json.loads(line)) for line in (Path(out) / row.shard).read_text().splitlines() if line]


__all__ = [
    "Divergence",
    "FunctionChange",
    "PairManifest",
    "PairTask",
    "TracePair",
    "first_divergence",
    "functions_changed",
    "pairs_of_task",
    "read_pairs",
    "trace_before_after",
]
