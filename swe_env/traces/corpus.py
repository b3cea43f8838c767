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

This module is the pipeline (a task's container, run untraced, run traced, cut, dedup, shard, resume) and the
corpus's shared budget; the models are `corpus_schema`, the records' making `records`, the suite's runs `suite_run`.

Why one module of this size (just over 400 lines): the corpus pipeline and the budget its
workers share; the schema, the record cuts and the suite run are modules of their own.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import json
import os
import shlex
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from ..build.images import ImageBuilder
from ..data.task import Task
from ..runtime.sandbox import Sandbox
from ..runtime.shell import CommandResult
from . import tracer
from .corpus_schema import ContextBlock, CorpusManifest, CorpusOptions, CorpusTrace, Level, OutcomeChange, RawTrace, Stop, TaskCorpus
from .host import Trace, TraceError, apply_patch, tracer_dir
from .records import content_hash, context_blocks, cut_reason, function_traces, iter_function_traces, render_record, repository_context, token_counter
from .suite_run import CorpusRun, SuiteReach, corpus_command, iter_traces, last_lines, read_outcomes, read_status, run_suite, suite_reach

__all__ = [
    "ContextBlock",
    "CorpusManifest",
    "CorpusOptions",
    "CorpusRun",
    "CorpusTrace",
    "OutcomeChange",
    "TaskCorpus",
    "content_hash",
    "context_blocks",
    "corpus_command",
    "render_record",
    "repository_context",
    "corpus_of_task",
    "function_traces",
    "iter_function_traces",
    "load_manifest",
    "read_corpus",
    "suite_reach",
    "SuiteReach",
    "task_container",
    "token_counter",
    "trace_corpus",
]
"""The corpus's public names, wherever they are defined (code imports them from here)."""


def _shard_name(key: str) -> str:
    return key.replace("/", "__") + ".jsonl"


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

    def admit(self, trace: CorpusTrace, line_bytes: int) -> Literal["ok", "duplicate", "max_traces", "max_bytes", "max_repository_traces"]:
        """Under the lock: take a record into the corpus, or say why not."""
        if self.options.dedupe and trace.content_hash in self.seen:
            return "duplicate"
        repository = trace.level == "repository"
        if repository and self.options.max_repository_traces is not None and self.repository_traces >= self.options.max_repository_traces:
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
        write_atomic(self.out / "manifest.json", self.manifest.model_dump_json(indent=1).encode())


def write_atomic(path: Path, data: bytes) -> None:
    """`data` written to `path` whole or not at all (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _nothing_recorded(row: TaskCorpus, result: CommandResult, status: dict, written: int) -> str | None:
    """Why a finished run must not count as done: no test ran, or tests ran and nothing was traced."""
    if row.stopped_by is not None:
        return None
    untraced = "not run" if row.untraced_count is None else f"{row.untraced_count} test(s)"
    where = f"(exit code {result.exit_code}; untraced run: {untraced}"
    if row.collected is not None:
        where += f"; collected: {row.collected}"
    where += f"): {last_lines(result)}"
    if row.tests == 0:
        return f"no test ran {where}"
    if written == 0 and not status.get("dropped"):
        return (
            f"the tracer recorded no trace for the {row.tests} test(s) that ran (tests in other processes, "
            f"e.g. pytest-xdist's, are not traced) {where}"
        )
    return None


def corpus_of_task(task: Task, image: str, corpus: _Corpus, active: set | None = None, shard: tuple[int, int] = (0, 1)) -> TaskCorpus:
    """Trace one task's suite (or one shard of it) into its shard file; the manifest row says what happened."""
    options = corpus.options
    started = time.monotonic()
    row = TaskCorpus(task_id=task.id, shard_index=shard[0], shards=shard[1], status="done", with_test_patch=options.with_test_patch)
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
            result, row.untraced_seconds = run_suite(sandbox, run, options, folder, False, timeout if left is None else min(timeout, left), {}, shard)
            row.notes += result.notes
            untraced = read_outcomes(sandbox, folder)
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
        result, row.traced_seconds = run_suite(sandbox, run, options, folder, True, run_timeout, budget, shard)
        row.notes += result.notes
        row.exit_code = result.exit_code
        if result.timed_out:
            row.status = "stopped"
            row.stopped_by = "wall_time" if left is not None and run_timeout == left else "timeout"
        traced = read_outcomes(sandbox, folder)
        status = read_status(sandbox, folder)
        if isinstance(status.get("collected"), int):
            row.collected = status["collected"]
        if status.get("stopped") and row.stopped_by is None:
            row.status, row.stopped_by = "stopped", status["stopped"]
        row.tests = len(traced)
        row.outcomes = dict(Counter(traced.values()))
        row.failed_tests = sorted(test for test, outcome in traced.items() if outcome in ("failed", "error"))
        if options.check_outcomes and not result.timed_out:
            row.outcomes_checked = True
            row.outcome_changes = [
                OutcomeChange(test_id=test, untraced=untraced.get(test), traced=traced.get(test))
                for test in sorted(set(untraced) | set(traced))
                if untraced.get(test) != traced.get(test)
            ]
            row.outcomes_unchanged = not row.outcome_changes
        written = _write_shards(task, iter_traces(sandbox, folder, row.notes), traced, corpus, row)
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


def _write_shards(task: Task, raw: Iterator[RawTrace], outcomes: dict[str, str], corpus: _Corpus, row: TaskCorpus) -> int:
    """Write the task's records as they come (each shard file replaced whole at the end); returns the test traces read."""
    options = corpus.options
    name = _shard_name(row.key)
    paths = [corpus.out / "traces" / name, *([corpus.out / "cwm" / name] if options.cwm else [])]
    temporary = [path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp") for path in paths]
    for path in temporary:
        path.parent.mkdir(parents=True, exist_ok=True)
    with open(temporary[0], "wb") as shard, open(temporary[1], "wb") if options.cwm else open(os.devnull, "wb") as cwm:
        seen = _write_records(task, raw, corpus, row, shard, cwm)
    for path, final in zip(temporary, paths, strict=True):
        os.replace(path, final)
    row.untraced_tests = sorted(set(outcomes) - seen)
    row.shard = f"traces/{name}"
    row.cwm_shard = f"cwm/{name}" if options.cwm else None
    return len(seen)


def _write_records(task: Task, raw: Iterator[RawTrace], corpus: _Corpus, row: TaskCorpus, shard, cwm) -> set[str]:
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
            blocks, dropped = context_blocks(trace, item.sources, options.repository_context_bytes) if level == "repository" else (None, 0)
            record = CorpusTrace(
                **{name: getattr(trace, name) for name in Trace.model_fields},
                level=level,
                test_id=item.test_id,
                parent_trace_id=base.trace_id if level == "function" else None,
                content_hash=content_hash(trace.entry, trace.events, blocks),
                context=blocks,
                context_dropped=dropped,
            )
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
            reason = cut_reason(record)
            if reason:
                cut[reason] += 1
            if options.cwm:
                cwm.write(
                    (json.dumps({**rendered, "level": level, "test_id": item.test_id, "tokens": record.tokens}, ensure_ascii=False) + "\n").encode()
                )
    row.cut = dict(cut)
    return traced_tests


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


def trace_corpus(
    tasks: list[Task],
    out: str | Path,
    options: CorpusOptions | None = None,
    *,
    workers: int = 1,
    builder: ImageBuilder | None = None,
    restart: bool = False,
    on_start: Callable[[Task], None] | None = None,
    on_task: Callable[[TaskCorpus], None] | None = None,
) -> CorpusManifest:
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
            row = TaskCorpus(
                task_id=task.id, shard_index=index, shards=options.shards, status="failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0]
            )
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
