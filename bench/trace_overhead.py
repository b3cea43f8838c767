"""Slowdown of a traced test run against the untraced run, per bundled task.

    python3 bench/trace_overhead.py [--repeat 5] [--warmup 1] [--tasks tasks] [--task ID]

For each task, one container runs the task's test command (`tests.command`, the suite at
`base_commit`) alternately without and with the tracer (repository-only scoping, default
caps), both as one-off processes (`docker exec`), so process start and exec costs are in
both figures. Printed: medians, the ratio (goal: at most 10x), and the events recorded
per second of traced run. Never asserts.
"""

from __future__ import annotations

import shlex
import sys

import _timing as T

from swe_env import traces
from swe_env.images import ImageBuilder
from swe_env.sandbox import Sandbox
from swe_env.testlogs import parse_pytest_summary


def main(argv: list[str] | None = None) -> int:
    args = T.parse_args(
        "trace overhead: traced vs untraced test runs",
        default_repeat=5,
        argv=argv,
        extra=lambda p: p.add_argument("--task", action="append", default=None, help="task id (repeatable; default all)"),
    )
    T.sigterm_as_exit()
    found = T.load_selected_tasks(args)
    T.header("bench/trace_overhead.py", args)
    builder = ImageBuilder()
    rows = []
    print(f"  {'task':<34} {'untraced p50':>13} {'traced p50':>11} {'ratio':>7} {'traces':>7} {'events':>7} {'events/s':>9}  same outcome")
    for task in found:
        image = builder.ensure(task)
        argv_ = shlex.split(task.tests.command)
        with Sandbox(image, task.limits, task.environment.workdir, task.environment.env, kind="bench",
                     labels={"task": task.id}) as box:
            last: dict[str, object] = {}

            def untraced():
                last["plain"] = box.exec(argv_, timeout=600)

            def traced():
                last["traced"] = traces.run_traced(box, argv_, timeout=600)

            samples = T.measure_interleaved({"untraced": untraced, "traced": traced}, args.repeat, args.warmup)
        plain, run = last["plain"], last["traced"]
        same = (plain.exit_code == run.exit_code
                and parse_pytest_summary(plain.output) == parse_pytest_summary(run.output))
        base, cand = T.median(samples["untraced"]), T.median(samples["traced"])
        rate = run.event_count / cand if cand > 0 else 0.0
        rows.append((task.id, base, cand))
        print(f"  {task.id:<34} {T.ms(base):>13} {T.ms(cand):>11} {cand / base:>6.1f}x {len(run.traces):>7} "
              f"{run.event_count:>7} {rate:>9.0f}  {'yes' if same else 'NO'}")
    if rows:
        ratios = sorted(cand / base for _id, base, cand in rows)
        print()
        print(f"median ratio over {len(rows)} task(s): {T.median(ratios):.1f}x (worst {ratios[-1]:.1f}x; goal <= 10x)")
    return 1 if T.check_no_leftovers() else 0


if __name__ == "__main__":
    sys.exit(main())
