"""What grading costs on top of the tests themselves, and how `evaluate` scales with workers.

Per bundled task: the grader's whole run (fresh container, patch, restore, test patch, tests,
report, removal) against the same test command inside a container that is already running
with the test patch applied (the baseline). Then `evaluate` of the gold patches of every task
with 1 worker and with 4 workers. Prints medians and ratios; asserts nothing.

    python bench/grade_overhead.py [--repeat 5] [--warmup 1] [--tasks tasks]
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from _timing import (check_no_leftovers, cpu_busy_seconds, header, measure_interleaved, median, parse_args,
                     percentile, resolve_tasks, sigterm_as_exit)

from swe_env.run.evaluate import evaluate
from swe_env.grading.grader import Grader
from swe_env.build.images import ImageBuilder
from swe_env.runtime.sandbox import Sandbox
from swe_env.data.task import load_tasks


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], default_repeat=5, extra=lambda p: p.add_argument(
        "--eval-repeat", type=int, default=1, help="timed evaluate runs per worker count (default 1; 0: the grading overhead only)"))
    sigterm_as_exit()
    header("grade_overhead: grader vs. the bare test command; evaluate with 1 vs 4 workers", args)
    tasks = load_tasks(resolve_tasks(args.tasks))
    builder = ImageBuilder()
    images = {task.id: builder.ensure(task) for task in tasks}
    grader = Grader(builder=builder)
    overheads, rows = [], []
    try:
        for task in tasks:
            with Sandbox(images[task.id], task.limits, task.environment.workdir, task.environment.env) as box:
                box.write_file("/tmp/test.patch", task.tests.test_patch.encode())
                box.write_file("/tmp/gold.patch", (task.gold_patch or "").encode())
                prepared = box.exec("git apply /tmp/gold.patch && git apply /tmp/test.patch")
                if prepared.exit_code != 0:
                    print(f"{task.id}: cannot prepare the baseline container: {prepared.output[-200:]}")
                    continue

                def bare(box=box, task=task):
                    box.exec(["bash", "-c", task.tests.command], timeout=task.limits.grading_timeout)

                def graded(task=task):
                    report = grader.grade(task, task.gold_patch, image=images[task.id])
                    if not report.resolved:
                        raise RuntimeError(f"{task.id}: gold did not resolve ({report.status}: {report.error})")

                samples = measure_interleaved({"bare": bare, "grade": graded}, args.repeat, args.warmup)
            overhead = median(samples["grade"]) - median(samples["bare"])
            overheads.append(overhead)
            rows.append((task.id, median(samples["bare"]), median(samples["grade"]), overhead))
        width = max(len(row[0]) for row in rows)
        print(f"  {'task':<{width}}  {'tests p50':>10}  {'grade p50':>10}  {'overhead':>9}")
        for task_id, bare_p50, grade_p50, overhead in rows:
            print(f"  {task_id:<{width}}  {bare_p50:>9.3f}s  {grade_p50:>9.3f}s  {overhead:>8.3f}s")
        print(f"\ngrading overhead over the bare test command: p50 {median(overheads):.3f} s, "
              f"p90 {percentile(overheads, 90):.3f} s (goal: p50 <= 1.0 s)\n")

        cores = os.cpu_count() or 1
        walls: dict[int, list[float]] = {1: [], 4: []}
        busy: dict[int, list[float]] = {1: [], 4: []}
        for _ in range(args.eval_repeat):
            for workers in (1, 4):
                folder = tempfile.mkdtemp(prefix="swe-env-bench-eval-")
                try:
                    cpu_before, started = cpu_busy_seconds(), time.perf_counter()
                    result = evaluate(tasks, "gold", f"bench-{workers}", max_workers=workers, report_dir=folder,
                                      grader=Grader(builder=builder))
                    walls[workers].append(time.perf_counter() - started)
                    cpu_after = cpu_busy_seconds()
                    if cpu_before is not None and cpu_after is not None:
                        busy[workers].append(cpu_after - cpu_before)
                    resolved = result.reports["gold"]["resolved_instances"]
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
                cpu = (f", machine busy {busy[workers][-1]:.1f} core-s = "
                       f"{busy[workers][-1] / walls[workers][-1] / cores:.0%} of {cores} cores" if busy[workers] else "")
                print(f"  evaluate gold, {len(tasks)} tasks, --max-workers {workers}: "
                      f"{walls[workers][-1]:.2f} s ({resolved} resolved){cpu}")
        if walls[1]:  # --eval-repeat 0: the overhead only
            one, four = median(walls[1]), median(walls[4])
            print(f"\nevaluate speed-up with 4 workers over 1: {one / four:.2f}x (goal: >= 2.5x on 2 cores)")
            if busy[1]:
                # However the work is spread, it cannot finish before the machine has done it.
                ceiling = one / (median(busy[1]) / cores)
                print(f"ceiling set by CPU: the 1-worker run needs {median(busy[1]):.1f} core-s of work, "
                      f"so {cores} cores cannot run it more than {ceiling:.2f}x faster")
            print()
    finally:
        left = check_no_leftovers()
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
