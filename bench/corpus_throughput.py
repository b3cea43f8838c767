"""Trace corpora: the corpus tracer's overhead per suite, and the throughput of `trace_corpus`.

    python3 bench/corpus_throughput.py [--repeat 3] [--warmup 1] [--tasks tasks] [--task ID] [--workers 2]
                                       [--python 3.13] [--backend settrace --backend monitoring] [--no-overhead]

1. Overhead. For each task, one container runs the task's test command (the suite at
   base_commit) alternately untraced and under the tracer in corpus mode (one trace per
   test function, sources for function-level traces, default caps), both through the
   sandbox's shell (`Sandbox.run`) as `trace_corpus` runs them. Printed: medians and the
   ratio traced/untraced (the baseline is measured in the same run, same container).
2. Throughput. `trace_corpus` over the tasks (`--workers` at once, outcome check on, dedup
   off so every trace the suites produce is counted, then on): wall time, test-level and
   function-level traces, traces per second, function-level traces per minute, bytes per
   record; the baseline is the sum of the untraced suite runs the outcome check made.
`--python VER` runs the tasks with that Python (3.13: the trixie image); `--backend` (repeatable;
default "auto") measures the overhead of each backend against the same untraced runs, and the
throughput with each. Never asserts.

Real instances (`--swebench PARQUET --repo-mirror DIR --instance ID ...`; the mirror folder holds
`owner__name` clones, e.g. links to fetched snapshots): each instance's image is built from our
recipe (untimed), then `trace_corpus` traces its suite once (`--suite whole` by default: the
whole suite with the task's runner; `--max-seconds`/`--timeout` bound it) and a row per image
is printed: status, tests, tests/min, function traces/min, tokens/min (byte-level), bytes per
image, the traced run over the untraced one (both from the outcome check), outcomes unchanged.
`--levels function --levels repository` traces each image once per level (function: test- and
function-level records; repository: one repository-level record per test, its context the
sources the test reached) and prints the rows side by side: tests/min, records/min, tokens/min
and bytes per image for each. `--select-for ID=ARGS` gives one instance a pytest selection
(its own `trace_corpus` run; the others share one), `--no-check` skips the untraced run.
"""

from __future__ import annotations

import concurrent.futures
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _timing as T
from trace_overhead import add_trace_selection, with_python

from swe_env.build.images import ImageBuilder
from swe_env.runtime.sandbox import Sandbox
from swe_env.traces import corpus, suite_run, tracer
from swe_env.traces.corpus import CorpusOptions
from swe_env.traces.host import TraceOptions, tracer_dir


def overhead(found, builder, args, backend: str) -> None:
    print(f"  backend {backend}")
    print(f"  {'task':<34} {'untraced p50':>13} {'corpus-traced p50':>18} {'ratio':>7} {'tests':>6}")
    ratios = []
    options = CorpusOptions(trace=TraceOptions(backend=backend))
    for task in found:
        image = builder.ensure(task)
        run = corpus.corpus_command(task, options)
        with Sandbox(
            image, task.limits, task.environment.workdir, task.environment.env, kind="bench", labels={"task": task.id}, user=task.environment.user
        ) as box:
            folder = tracer_dir(box)
            box.write_file(f"{folder}/swe_env_tracer.py", tracer.runner_source())
            command = f"cd -- {shlex.quote(box.workdir)} && {shlex.join(run.argv)} >/dev/null 2>&1"

            def untraced(box=box, command=command):
                box.run(f"({command})", timeout=600)

            def traced(box=box, run=run, folder=folder):
                suite_run.run_suite(box, run, options, folder, True, 600, {}, (0, 1))

            samples = T.measure_interleaved({"untraced": untraced, "traced": traced}, args.repeat, args.warmup)
            tests = len(suite_run.read_outcomes(box, folder))
        base, cand = T.median(samples["untraced"]), T.median(samples["traced"])
        ratios.append(cand / base)
        print(f"  {task.id:<34} {T.ms(base):>13} {T.ms(cand):>18} {cand / base:>6.2f}x {tests:>6}")
    if ratios:
        print(f"\n  median ratio over {len(ratios)} task(s): {T.median(ratios):.2f}x (worst {max(ratios):.2f}x)\n")


def throughput(found, builder, args, dedupe: bool, backend: str) -> None:
    with tempfile.TemporaryDirectory(prefix="corpus-bench-") as out:
        started = time.perf_counter()
        options = CorpusOptions(dedupe=dedupe, cwm=True, trace=TraceOptions(backend=backend))
        manifest = corpus.trace_corpus(found, out, options, workers=args.workers, builder=builder, restart=True)
        wall = time.perf_counter() - started
        records = corpus.read_corpus(out)
        sizes = [len(r.model_dump_json()) + 1 for r in records]
        cwm_bytes = sum(path.stat().st_size for path in Path(out, "cwm").glob("*.jsonl"))
    rows = manifest.tasks.values()
    totals = manifest.totals
    untraced = sum(r.untraced_seconds or 0 for r in rows)
    traced = sum(r.traced_seconds or 0 for r in rows)
    n = len(records)
    changed = totals["outcome_changes"]
    print(
        f"  {backend}, dedupe {'on ' if dedupe else 'off'}: {len(rows)} task(s), {args.workers} worker(s), wall {wall:.1f} s; "
        f"{totals['tests']} tests, {totals['test_traces']} test-level + {totals['function_traces']} function-level "
        f"traces ({totals['duplicates']} duplicates dropped)"
    )
    print(
        f"    {n / wall:.1f} traces/s, {totals['function_traces'] / wall * 60:.0f} function-level traces/min, "
        f"{totals['test_traces'] / wall * 60:.0f} test traces/min"
    )
    if sizes:
        print(
            f"    bytes per record: median {statistics.median(sizes):.0f}, mean {statistics.mean(sizes):.0f}; "
            f"CWM text {cwm_bytes / n:.0f} bytes per record"
        )
    print(
        f"    baseline: untraced suite runs {untraced:.1f} s in total, traced runs {traced:.1f} s "
        f"({T.times(traced, untraced)}); outcomes changed by tracing: {changed}; "
        f"cut: {', '.join(f'{k}={v}' for k, v in totals.items() if k.startswith('cut_')) or 'none'}"
    )
    print()


def real_instances(args) -> int:
    from swe_env.importers import swebench

    records = {r["instance_id"]: r for r in swebench.read_records(args.swebench)}
    unknown = [i for i in args.instance if i not in records]
    if unknown:
        print(f"--instance: not in {args.swebench}: {', '.join(unknown)}", file=sys.stderr)
        return 2
    found = [swebench.instance_to_task(records[i], repo_mirror=args.repo_mirror) for i in args.instance]
    builder = ImageBuilder()
    built = {}
    for task in found:  # untimed
        started = time.perf_counter()
        try:
            built[task.id] = builder.ensure(task)
        except Exception as exc:  # noqa: BLE001 - report and go on with the others
            print(f"  {task.id}: image did not build: {str(exc).splitlines()[0][:200]}")
            continue
        print(f"  {task.id}: image ready in {time.perf_counter() - started:.0f} s", flush=True)
    found = [task for task in found if task.id in built]
    if args.levels:
        return by_level(found, builder, args)
    options = CorpusOptions(
        suite=args.suite,
        timeout=args.timeout,
        max_seconds=args.max_seconds,
        cwm=True,
        shards=args.shards,
        max_function_traces_per_test=args.max_function_traces,
    )
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="corpus-bench-"))
    print(
        f"throughput: trace_corpus over {len(found)} real instance(s), suite {args.suite}, {args.workers} worker(s), shards {args.shards}; out {out}",
        flush=True,
    )
    started = time.perf_counter()
    manifest = corpus.trace_corpus(
        found,
        out,
        options,
        workers=args.workers,
        builder=builder,
        restart=True,
        on_task=lambda row: print(f"    finished {row.key}: {row.status} {row.error or ''}", flush=True),
    )
    wall = time.perf_counter() - started
    print(
        f"  {'instance':<36} {'status':<8} {'runner':<7} {'tests':>6} {'tests/min':>9} {'fn tr/min':>9} "
        f"{'Mtok/min':>8} {'MB/image':>8} {'Mtok':>6} {'traced/untraced':>15} {'outcomes':>9}"
    )
    for row in manifest.tasks.values():
        seconds = row.seconds or 1.0
        ratio = f"{row.traced_seconds:.0f}/{row.untraced_seconds:.0f} s" if row.traced_seconds and row.untraced_seconds else "-"
        same = (
            "-" if not row.outcomes_checked or row.status == "failed" else ("same" if row.outcomes_unchanged else f"{len(row.outcome_changes)} chg")
        )
        print(
            f"  {row.key:<36} {row.status:<8} {row.runner:<7} {row.tests:>6} {row.tests / seconds * 60:>9.0f} "
            f"{row.function_traces / seconds * 60:>9.0f} {row.tokens / seconds * 60 / 1e6:>8.2f} "
            f"{row.bytes / 1e6:>8.1f} {row.tokens / 1e6:>6.2f} {ratio:>15} {same:>9}"
        )
        if row.error:
            print(f"      error: {row.error}")
        if row.stopped_by:
            print(f"      stopped by {row.stopped_by}")
    totals = manifest.totals
    print(
        f"  total: wall {wall:.0f} s; {totals['tests']} tests, {totals['test_traces']} test + "
        f"{totals['function_traces']} function traces, {totals['tokens'] / 1e6:.2f}M tokens (byte-level), "
        f"{totals['bytes'] / 1e6:.1f} MB; {totals['tests'] / wall * 60:.0f} tests/min, "
        f"{totals['function_traces'] / wall * 60:.0f} function traces/min, "
        f"{totals['tokens'] / wall * 60 / 1e6:.2f}M tokens/min; outcome changes {totals['outcome_changes']}, "
        f"failed tasks {totals['failed_tasks']}"
    )
    return 1 if T.check_no_leftovers() else 0


def by_level(found, builder, args) -> int:
    """Each image traced once per level (`--levels`), instances `--workers` at once; rows side by side."""
    selections = dict(item.split("=", 1) for item in args.select_for)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="corpus-bench-"))
    print(
        f"levels {', '.join(args.levels)}: {len(found)} instance(s), {args.workers} at once, outcome check "
        f"{'off' if args.no_check else 'on'}, timeout {args.timeout} s per suite run; out {out}",
        flush=True,
    )

    def one(task):
        rows = {}
        for level in args.levels:
            options = CorpusOptions(
                suite=args.suite,
                timeout=args.timeout,
                cwm=False,
                check_outcomes=not args.no_check,
                select=shlex.split(selections.get(task.id, "")),
                levels=level,
                max_function_traces_per_test=args.max_function_traces,
            )
            folder = out / f"{task.id}.{level}"
            started = time.perf_counter()
            manifest = corpus.trace_corpus([task], folder, options, builder=builder, restart=True)
            row = manifest.tasks[task.id]
            rows[level] = (row, time.perf_counter() - started)
            print(f"    finished {task.id} {level}: {row.status} {row.stopped_by or ''} {row.error or ''}", flush=True)
        return task.id, rows

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        results = dict(pool.map(one, found))
    print(
        f"  {'instance':<40} {'level':<10} {'status':<8} {'tests':>6} {'records':>8} {'tests/min':>9} "
        f"{'records/min':>11} {'Mtok/min':>8} {'Mtok':>7} {'MB/image':>8} {'B/record':>9} {'seconds':>7}"
    )
    totals: dict[str, list[float]] = {}
    for task_id, rows in results.items():
        for level, (row, seconds) in rows.items():
            records = row.test_traces + row.function_traces + row.repository_traces
            minutes = seconds / 60
            extra = (
                f"  (test {row.test_traces} + function {row.function_traces})"
                if level != "repository"
                else f"  (context cut {row.context_cut}, functions left out {row.context_dropped})"
            )
            print(
                f"  {task_id:<40} {level:<10} {row.status:<8} {row.tests:>6} {records:>8} {row.tests / minutes:>9.1f} "
                f"{records / minutes:>11.0f} {row.tokens / 1e6 / minutes:>8.2f} {row.tokens / 1e6:>7.2f} "
                f"{row.bytes / 1e6:>8.1f} {row.bytes / max(1, records):>9.0f} {seconds:>7.0f}{extra}"
            )
            if row.error or row.stopped_by:
                print(f"      {row.stopped_by or ''} {row.error or ''}")
            if row.cut:
                print(f"      cut: {', '.join(f'{k}={v}' for k, v in row.cut.items())}")
            sums = totals.setdefault(level, [0, 0, 0, 0, 0, 0])
            for index, value in enumerate((row.tests, records, row.tokens, row.bytes, seconds, 1)):
                sums[index] += value
    for level, (tests, records, tokens, size, seconds, images) in totals.items():
        print(
            f"  {level}: {images:.0f} image(s), {tests:.0f} tests, {records:.0f} records, {tokens / 1e6:.1f}M tokens, "
            f"{size / 1e6:.0f} MB in {seconds:.0f} s of rows; per image {seconds / images:.0f} s, "
            f"{tokens / images / 1e6:.1f}M tokens, {size / images / 1e6:.1f} MB"
        )
    return 1 if T.check_no_leftovers() else 0


def main(argv: list[str] | None = None) -> int:
    def extra(parser):
        add_trace_selection(parser)
        parser.add_argument("--no-overhead", action="store_true", help="skip part 1 (the per-suite overhead)")
        parser.add_argument("--workers", type=int, default=2, help="tasks traced at once (default 2)")
        parser.add_argument("--swebench", help="SWE-bench parquet/JSONL: trace real instances instead of --tasks")
        parser.add_argument("--repo-mirror", help="folder of owner__name mirrors (with --swebench)")
        parser.add_argument("--instance", action="append", default=[], help="instance id (repeatable; with --swebench)")
        parser.add_argument("--suite", choices=["whole", "task"], default="whole")
        parser.add_argument("--shards", type=int, default=1)
        parser.add_argument("--max-function-traces", type=int, default=100, help="function-level traces per test")
        parser.add_argument("--timeout", type=float, default=None, help="seconds per suite run")
        parser.add_argument("--max-seconds", type=float, default=None, help="wall time of the corpus run")
        parser.add_argument("--out", default=None, help="keep the corpus here (default: a temporary folder)")
        parser.add_argument(
            "--levels",
            action="append",
            default=[],
            choices=["function", "repository", "both"],
            help="with --swebench: trace each image once per level (repeatable), rows side by side",
        )
        parser.add_argument("--select-for", action="append", default=[], metavar="ID=ARGS", help="with --levels: a pytest selection for one instance")
        parser.add_argument("--no-check", action="store_true", help="with --levels: no untraced run")

    args = T.parse_args("trace corpora: corpus-tracer overhead and corpus throughput", default_repeat=3, default_warmup=1, argv=argv, extra=extra)
    T.sigterm_as_exit()
    if args.swebench:
        # Not T.header: it inspects every managed container, and one stuck in the shared engine hangs it.
        print(f"bench/corpus_throughput.py (real instances)\n{T.machine_line()}", flush=True)
        return real_instances(args)
    found = with_python(T.load_selected_tasks(args), args.python)
    backends = args.backend or ["auto"]
    T.header("bench/corpus_throughput.py", args)
    builder = ImageBuilder()
    for task in found:
        builder.ensure(task)  # untimed
    if not args.no_overhead:
        print("overhead: the suite untraced vs under the corpus tracer, same container")
        for backend in backends:
            overhead(found, builder, args, backend)
    print("throughput: trace_corpus over the tasks")
    for backend in backends:
        throughput(found, builder, args, dedupe=False, backend=backend)
        throughput(found, builder, args, dedupe=True, backend=backend)
    return 1 if T.check_no_leftovers() else 0


if __name__ == "__main__":
    sys.exit(main())
