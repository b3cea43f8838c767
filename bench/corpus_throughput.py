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
"""

from __future__ import annotations

import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _timing as T

from swe_env.traces import corpus, tracer
from swe_env.traces.corpus import CorpusOptions
from swe_env.build.images import ImageBuilder
from swe_env.runtime.sandbox import Sandbox
from swe_env.traces.host import TraceOptions, tracer_dir
from trace_overhead import add_trace_selection, with_python


def overhead(found, builder, args, backend: str) -> None:
    print(f"  backend {backend}")
    print(f"  {'task':<34} {'untraced p50':>13} {'corpus-traced p50':>18} {'ratio':>7} {'tests':>6}")
    ratios = []
    options = CorpusOptions(trace=TraceOptions(backend=backend))
    for task in found:
        image = builder.ensure(task)
        argv = corpus.corpus_command(task, options)
        with Sandbox(image, task.limits, task.environment.workdir, task.environment.env, kind="bench",
                     labels={"task": task.id}, user=task.environment.user) as box:
            folder = tracer_dir(box)
            box.write_file(f"{folder}/swe_env_tracer.py", tracer.runner_source())
            command = f"cd -- {shlex.quote(box.workdir)} && {shlex.join(argv)} >/dev/null 2>&1"

            def untraced():
                box.run(f"({command})", timeout=600)

            def traced():
                corpus._run_suite(box, argv, options, folder, True, 600, {})

            samples = T.measure_interleaved({"untraced": untraced, "traced": traced}, args.repeat, args.warmup)
            tests = len(corpus._read_outcomes(box, folder))
        base, cand = T.median(samples["untraced"]), T.median(samples["traced"])
        ratios.append(cand / base)
        print(f"  {task.id:<34} {T.ms(base):>13} {T.ms(cand):>18} {cand / base:>6.2f}x {tests:>6}")
    if ratios:
        print(f"\n  median ratio over {len(ratios)} task(s): {T.median(ratios):.2f}x (worst {max(ratios):.2f}x)\n")


def throughput(found, builder, args, dedupe: bool, backend: str) -> None:
    with tempfile.TemporaryDirectory(prefix="corpus-bench-") as out:
        started = time.perf_counter()
        options = CorpusOptions(dedupe=dedupe, cwm=True, trace=TraceOptions(backend=backend))
        manifest = corpus.trace_corpus(found, out, options, workers=args.workers,
                                       builder=builder, restart=True)
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
    print(f"  {backend}, dedupe {'on ' if dedupe else 'off'}: {len(rows)} task(s), {args.workers} worker(s), wall {wall:.1f} s; "
          f"{totals['tests']} tests, {totals['test_traces']} test-level + {totals['function_traces']} function-level "
          f"traces ({totals['duplicates']} duplicates dropped)")
    print(f"    {n / wall:.1f} traces/s, {totals['function_traces'] / wall * 60:.0f} function-level traces/min, "
          f"{totals['test_traces'] / wall * 60:.0f} test traces/min")
    if sizes:
        print(f"    bytes per record: median {statistics.median(sizes):.0f}, mean {statistics.mean(sizes):.0f}; "
              f"CWM text {cwm_bytes / n:.0f} bytes per record")
    print(f"    baseline: untraced suite runs {untraced:.1f} s in total, traced runs {traced:.1f} s "
          f"({T.times(traced, untraced)}); outcomes changed by tracing: {changed}; "
          f"cut: {', '.join(f'{k}={v}' for k, v in totals.items() if k.startswith('cut_')) or 'none'}")
    print()


def main(argv: list[str] | None = None) -> int:
    def extra(parser):
        add_trace_selection(parser)
        parser.add_argument("--no-overhead", action="store_true", help="skip part 1 (the per-suite overhead)")
        parser.add_argument("--workers", type=int, default=2, help="tasks traced at once (default 2)")

    args = T.parse_args("trace corpora: corpus-tracer overhead and corpus throughput", default_repeat=3,
                        default_warmup=1, argv=argv, extra=extra)
    T.sigterm_as_exit()
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
