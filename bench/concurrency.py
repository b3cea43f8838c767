"""Throughput of whole episodes at 1, 4 and 16 at a time, against 1 at a time as the baseline.

    python3 bench/concurrency.py [--levels 1,4,16] [--tasks tasks]

Each level runs `max(level, 4)` episodes of the scripted `oracle` agent (it replays a task's
gold patch through the edit tool, then submits; grading in a fresh container included) over
the bundled tasks with `rollout(workers=level)`, and prints episodes per minute, the ratio
to level 1, and failures (any episode not resolved, or ended by an error). `--repeat` runs
every level that many times and reports the median.
"""

from __future__ import annotations

import math
import sys
import time

import _timing as T

from swe_env import load_tasks
from swe_env.build.images import ImageBuilder
from swe_env.run.rollout import rollout


def main(argv: list[str] | None = None) -> int:
    args = T.parse_args(
        "concurrency: episodes per minute at 1, 4, 16 concurrent episodes",
        default_repeat=1,
        argv=argv,
        default_warmup=0,
        extra=lambda p: p.add_argument("--levels", default="1,4,16", help="comma-separated concurrency levels"),
    )
    T.sigterm_as_exit()
    levels = [int(level) for level in args.levels.split(",")]
    tasks = load_tasks(T.resolve_tasks(args.tasks))
    T.header("bench/concurrency.py", args)
    builder = ImageBuilder()
    for task in tasks:
        builder.ensure(task)  # builds missing images, untimed

    rates: dict[int, list[float]] = {level: [] for level in levels}
    failures: dict[int, int] = {level: 0 for level in levels}
    counts: dict[int, int] = {}
    for _ in range(args.repeat):
        for level in levels:  # interleaved rounds, so drift affects every level alike
            episodes = max(level, 4)
            per_task = math.ceil(episodes / len(tasks))
            chosen = tasks if episodes > len(tasks) else tasks[:episodes]
            started = time.perf_counter()
            results = rollout(chosen, "oracle", episodes_per_task=per_task, workers=level)
            elapsed = time.perf_counter() - started
            counts[level] = len(results)
            rates[level].append(len(results) / elapsed * 60)
            failures[level] += sum(1 for t in results if not t.resolved or t.error)

    print(f"  {'concurrent':>10}  {'episodes':>8}  {'episodes/min':>12}  {'vs 1 at a time':>14}  {'failures':>8}")
    base = T.median(rates[levels[0]])
    for level in levels:
        rate = T.median(rates[level])
        print(f"  {level:>10}  {counts[level]:>8}  {rate:>12.1f}  {rate / base:>13.2f}x  {failures[level]:>8}")
    print()
    top = levels[-1]
    print(
        f"throughput at {top}: {T.median(rates[top]) / base:.2f}x that at {levels[0]}; "
        f"failures: {sum(failures.values())} of {sum(counts.values()) * args.repeat} episodes"
    )
    return 1 if T.check_no_leftovers() or sum(failures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
