"""Execution traces: `swe-env trace` (one program) and `swe-env trace-corpus` (whole suites, or before/after pairs)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any, cast

import typer
from rich.markup import escape as _e

from .common import (
    DatasetOption,
    ImagesOption,
    RecipesOption,
    RepoMirrorOption,
    TasksOption,
    console,
    dataset_tasks,
    err,
    friendly_errors,
    images_choice,
    one_of,
    only,
)


def trace(
    command: list[str] | None = typer.Argument(None, help="After `--`: pytest ..., python script.py, python -m mod ..."),
    task_id: str = typer.Option(..., "--task", help="The task whose container runs the program."),
    tasks: Path = TasksOption,
    patch: Path | None = typer.Option(None, "--patch", help="A diff applied with `git apply` before running."),
    function: str | None = typer.Option(None, "--function", help="Call module:qualname instead of running a command."),
    args: str = typer.Option("[]", "--args", help="JSON arguments for --function: a list, an object, or {args, kwargs}."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (default runs/traces/<task>.jsonl)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (the trace schema) or cwm (CWM prompt format, one JSON line per trace)."),
    include: list[str] = typer.Option([], "--include", help="More path prefixes in scope (repeatable)."),
    depth: int = typer.Option(0, "--depth", min=0, help="Follow calls out of scope this many levels."),
    max_events: int = typer.Option(10_000, "--max-events", min=1),
    max_bytes: int = typer.Option(1_000_000, "--max-bytes", min=1),
    repr_cap: int = typer.Option(200, "--repr-cap", min=8),
    full_locals: bool = typer.Option(False, "--full-locals", help='Every local at every event, no ".." for unchanged ones.'),
    trace_modules: bool = typer.Option(False, "--trace-modules", help="Also trace module and class bodies."),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds before the program is killed (default: the task's limit)."),
) -> None:
    """Run a Python command (or function) in a task's container under the tracer and write its traces."""
    with friendly_errors():
        from ..data.task import load_tasks
        from ..traces import host as tracing

        trace_format = one_of(fmt, tracing.TRACE_FORMATS, f"--format must be one of {', '.join(tracing.TRACE_FORMATS)}, not {fmt!r}")
        found = {task.id: task for task in load_tasks(tasks)}
        if task_id not in found:
            raise KeyError(f"unknown task {task_id!r}; known: {', '.join(sorted(found))}")
        options = tracing.TraceOptions(
            include=include,
            follow_depth=depth,
            max_events=max_events,
            max_bytes=max_bytes,
            repr_cap=repr_cap,
            full_locals=full_locals,
            trace_modules=trace_modules,
        )
        run = tracing.trace_task(
            found[task_id],
            argv=command or None,
            function=function,
            args=json.loads(args) if function else None,
            patch=patch.read_text() if patch else None,
            options=options,
            timeout=timeout,
        )
        path = tracing.write_jsonl(run.traces, out or tracing.default_out(task_id, trace_format), trace_format)
    sys.stdout.write(run.output)
    cut = sum(1 for t in run.traces if t.cut)
    console.print(
        f"program exit code {run.exit_code}; {len(run.traces)} trace(s), {run.event_count} events"
        f"{f', {cut} cut at a cap' if cut else ''}; written to {path}",
        highlight=False,
        markup=False,
    )


def trace_corpus(
    out: Path = typer.Option(..., "--out", "-o", help="Corpus folder: manifest.json, traces/<task>.jsonl, cwm/<task>.jsonl."),
    tasks: Path = TasksOption,
    task_ids: list[str] | None = typer.Option(None, "--task", help="Only these task ids (repeatable; default all)."),
    dataset: Path | None = DatasetOption,
    repo_mirror: Path | None = RepoMirrorOption,
    recipes: Path | None = RecipesOption,
    select: list[str] | None = typer.Option(
        None,
        "--select",
        help="pytest selection instead of the task's test command (repeatable; each is split like a shell word list): tests/, a node id, -k EXPR.",
    ),
    suite: str = typer.Option(
        "whole",
        "--suite",
        help="whole: the task's runner over the repository's whole suite; task: the task's test command as written (only the tests it names).",
    ),
    shards: int = typer.Option(
        1,
        "--shards",
        min=1,
        help="Split each suite into this many shards, one container each (pytest: by test file; sympy: --split); shards spread over the workers.",
    ),
    tokenizer: str = typer.Option(
        "bytes",
        "--tokenizer",
        help="What `tokens` counts over each record's CWM text: bytes (byte-level) or a tokenizer.json file (needs the tokenizers package).",
    ),
    with_test_patch: bool = typer.Option(
        False, "--with-test-patch", help="Apply the task's hidden test patch first (default: the repository's own tests at base_commit)."
    ),
    function_traces: bool = typer.Option(
        True, "--function-traces/--no-function-traces", help="Also a function-level trace per repository function a test calls."
    ),
    max_function_traces: int = typer.Option(100, "--max-function-traces", min=0, help="Function-level traces kept per test."),
    levels: str = typer.Option(
        "function",
        "--levels",
        help="function: test and function-level records; repository: each "
        "test's whole trace with the source of every repository function it reached as context "
        "(CWM's repository-level traces); both.",
    ),
    context_bytes: int = typer.Option(
        64_000, "--context-bytes", min=1_000, help="Bytes of source context per repository-level record (functions past it are left out and counted)."
    ),
    max_repository_traces: int | None = typer.Option(None, "--max-repository-traces", min=1, help="Repository-level records in the whole corpus."),
    before_after: bool = typer.Option(
        False,
        "--before-after",
        help="Instead of suites: trace each task's FAIL_TO_PASS "
        "tests on the buggy tree and with its gold patch applied (a synthesized task's bug "
        "and fix); pairs.json and pairs/<task>.jsonl: both traces, the first divergence, "
        "the functions whose traces differ.",
    ),
    dedupe: bool = typer.Option(True, "--dedupe/--no-dedupe", help="Drop traces whose content the corpus already holds."),
    check: bool = typer.Option(True, "--check/--no-check", help="Run each suite untraced first and compare every test's outcome."),
    max_events: int = typer.Option(10_000, "--max-events", min=1, help="Events per test trace (cut and marked past it)."),
    max_bytes: int = typer.Option(1_000_000, "--max-bytes", min=1, help="Bytes of events per test trace (cut and marked past it)."),
    repr_cap: int = typer.Option(200, "--repr-cap", min=8),
    max_traces: int | None = typer.Option(None, "--max-traces", min=1, help="Records in the whole corpus."),
    max_total_bytes: int | None = typer.Option(None, "--max-total-bytes", min=1, help="Bytes of JSONL records in the whole corpus."),
    max_seconds: float | None = typer.Option(None, "--max-seconds", min=1, help="Wall time of this run (tasks not reached are left for a re-run)."),
    timeout: float | None = typer.Option(None, "--timeout", min=1, help="Seconds per suite run (default: the task's grading_timeout)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (records only) or cwm (records and their CWM rendering)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Tasks traced at once, each in its own container."),
    restart: bool = typer.Option(False, "--restart", help="Start the corpus afresh (default: resume, skipping finished tasks)."),
    image_mode: str = ImagesOption,
) -> None:
    """Trace every test of each task's suite (one trace per test function, plus function-level traces) into a corpus."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    with friendly_errors():
        from ..build import images
        from ..traces import corpus as corpora
        from ..traces import host as tracing

        one_of(fmt, tracing.TRACE_FORMATS, f"--format must be one of {', '.join(tracing.TRACE_FORMATS)}, not {fmt!r}")
        if suite not in ("whole", "task"):
            raise ValueError(f"--suite must be whole or task, not {suite!r}")
        if levels not in ("function", "repository", "both"):
            raise ValueError(f"--levels must be function, repository or both, not {levels!r}")
        found = dataset_tasks(tasks, dataset, repo_mirror, recipes)
        found = only(found, task_ids, "--task")
        selection = [word for item in (select or []) for word in shlex.split(item)]
        options = corpora.CorpusOptions(
            trace=tracing.TraceOptions(max_events=max_events, max_bytes=max_bytes, repr_cap=repr_cap),
            select=selection,
            suite="task" if suite == "task" else "whole",
            shards=shards,
            tokenizer=tokenizer,
            with_test_patch=with_test_patch,
            function_traces=function_traces,
            max_function_traces_per_test=max_function_traces,
            levels=cast(Any, levels),
            repository_context_bytes=context_bytes,
            max_repository_traces=max_repository_traces,
            dedupe=dedupe,
            check_outcomes=check,
            max_traces=max_traces,
            max_bytes=max_total_bytes,
            max_seconds=max_seconds,
            timeout=timeout,
            cwm=fmt == "cwm",
        )
        builder = images.ImageBuilder(images=images_choice(image_mode))
        if before_after:
            _before_after(found, out, options, workers, builder)
            return
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("traces {task.fields[traces]}, failed {task.fields[failed]}"),
            TimeElapsedColumn(),
            console=err,
        ) as progress:
            bar = progress.add_task("tracing suites", total=len(found) * shards, traces=0, failed=0)
            counts = {"traces": 0, "failed": 0}

            def finished(row) -> None:
                counts["traces"] += row.test_traces + row.function_traces + row.repository_traces
                counts["failed"] += row.status == "failed"
                progress.update(bar, advance=1, traces=counts["traces"], failed=counts["failed"], description=f"last {_e(row.task_id)}")

            manifest = corpora.trace_corpus(found, out, options, workers=workers, builder=builder, restart=restart, on_task=finished)
    table = Table(title=_e(f"trace corpus in {out}"))
    for column in (
        "task",
        "status",
        "tests",
        "failed tests",
        "test traces",
        "function traces",
        "repository traces",
        "duplicates",
        "cut",
        "MB",
        "tokens",
        "outcomes",
    ):
        table.add_column(column)
    for row in manifest.tasks.values():
        status = (
            "[green]done[/]"
            if row.status == "done"
            else (f"[yellow]stopped: {_e(row.stopped_by or '')}[/]" if row.status == "stopped" else "[red]failed[/]")
        )
        same = (
            "-"
            if not row.outcomes_checked or row.status == "failed"
            else ("[green]unchanged[/]" if row.outcomes_unchanged else f"[red]{len(row.outcome_changes)} changed[/]")
        )
        table.add_row(
            _e(row.key),
            status,
            str(row.tests),
            str(len(row.failed_tests)),
            str(row.test_traces),
            str(row.function_traces),
            str(row.repository_traces),
            str(row.duplicates),
            str(sum(row.cut.values())),
            f"{row.bytes / 1e6:.1f}",
            str(row.tokens),
            same,
        )
    console.print(table)
    for row in manifest.tasks.values():
        if row.error:
            err.print(f"{row.key}: {row.error}", highlight=False, markup=False, soft_wrap=True)
        for change in row.outcome_changes:
            err.print(
                f"{row.task_id}: {change.test_id}: {change.untraced} untraced, {change.traced} traced", highlight=False, markup=False, soft_wrap=True
            )
    if manifest.not_reached:
        err.print(f"{len(manifest.not_reached)} task(s) not reached in --max-seconds; run again to continue", highlight=False, markup=False)
    totals = manifest.totals
    console.print(
        f"{totals['test_traces']} test and {totals['function_traces']} function trace(s), "
        f"{totals['repository_traces']} repository-level trace(s), "
        f"{totals['duplicates']} duplicate(s) dropped, {totals['bytes']} bytes, {totals['tokens']} tokens; manifest: {out / 'manifest.json'}",
        highlight=False,
        markup=False,
    )
    if totals["failed_tasks"] or totals["outcome_changes"]:
        raise typer.Exit(1)


def _before_after(found: list, out: Path, options: Any, workers: int, builder: Any) -> None:
    """`trace-corpus --before-after`: the deciding tests traced on the buggy and the fixed tree."""
    from rich.table import Table

    from ..traces import pairs

    manifest = pairs.trace_before_after(found, out, options, workers=workers, builder=builder)
    table = Table(title=_e(f"before/after traces in {out}"))
    for column in ("task", "status", "method", "kind", "function", "tests", "pairs", "diverged", "tokens"):
        table.add_column(column)
    for row in manifest.tasks.values():
        meta: dict[str, str] = next((task.meta for task in found if task.id == row.task_id), {})
        table.add_row(
            _e(row.task_id),
            "[green]done[/]" if row.status == "done" else "[red]failed[/]",
            _e(meta.get("method", "-")),
            _e(meta.get("kind", "-")),
            _e(meta.get("function", "-")),
            str(len(row.tests)),
            str(row.pairs),
            str(row.diverged),
            str(row.tokens),
        )
    console.print(table)
    for row in manifest.tasks.values():
        if row.error:
            err.print(f"{row.task_id}: {row.error}", highlight=False, markup=False, soft_wrap=True)
    totals = manifest.totals
    console.print(
        f"{totals['pairs']} pair(s) of {totals['tests']} test(s), {totals['diverged']} diverged, "
        f"{totals['tokens']} tokens; manifest: {out / 'pairs.json'}",
        highlight=False,
        markup=False,
    )
    if totals["failed_tasks"]:
        raise typer.Exit(1)
