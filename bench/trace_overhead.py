"""Slowdown of a traced test run against the untraced run, per bundled task.

    python3 bench/trace_overhead.py [--repeat 5] [--warmup 1] [--tasks tasks] [--task ID]
                                    [--python 3.13] [--backend settrace --backend monitoring]

For each task, one container runs the task's test command (`tests.command`, the suite at
`base_commit`) alternately without and with the tracer (repository-only scoping, default
caps), both as one-off processes (`docker exec`), so process start and exec costs are in
both figures. The traced run is measured twice: `run_traced` as `swe-env trace` calls it
(the tracer script and its config copied in, the program run in the sandbox's shell, the
traces file read back and parsed on the host), and the tracer's process alone (`docker exec`
of the tracer with that config, as the untraced run is executed): the tracer's own overhead.
Printed: medians, the ratios, and the events recorded per second of traced run. `--python VER` runs every task with that Python (its image for it:
3.13 is the trixie one), `--backend` (repeatable; default: the tracer's own choice, "auto")
measures each backend against the same untraced runs, interleaved. Never asserts.
"""

from __future__ import annotations

import json
import shlex
import sys

import _timing as T

from swe_env.build.images import ImageBuilder
from swe_env.grading.testlogs import parse_pytest_summary
from swe_env.runtime.sandbox import Sandbox
from swe_env.traces import host as traces
from swe_env.traces import tracer
from swe_env.traces.host import TraceOptions, tracer_dir


def add_trace_selection(parser) -> None:
    """--task, --python and --backend (shared with bench/corpus_throughput.py)."""
    parser.add_argument("--task", action="append", default=None, help="task id (repeatable; default all)")
    parser.add_argument("--python", default=None, help="run the tasks with this Python (3.9, 3.11, 3.13: its base image)")
    parser.add_argument(
        "--backend",
        action="append",
        choices=["auto", "settrace", "monitoring"],
        default=None,
        help="tracer backend (repeatable; default auto: monitoring on 3.12+, else settrace)",
    )


def with_python(tasks: list, python: str | None) -> list:
    """The tasks, each with `environment.python` set to `python` (and no fixed base image) when given."""
    if python is None:
        return tasks
    return [task.model_copy(update={"environment": task.environment.model_copy(update={"python": python, "base_image": None})}) for task in tasks]


def main(argv: list[str] | None = None) -> int:
    args = T.parse_args(
        "trace overhead: traced vs untraced test runs",
        default_repeat=5,
        argv=argv,
        extra=add_trace_selection,
    )
    T.sigterm_as_exit()
    found = with_python(T.load_selected_tasks(args), args.python)
    backends = args.backend or ["auto"]
    T.header("bench/trace_overhead.py", args)
    builder = ImageBuilder()
    rows: dict[str, list] = {b: [] for b in backends}
    print(
        f"  {'task':<34} {'backend':<10} {'untraced p50':>13} {'run_traced p50':>15} {'ratio':>7} "
        f"{'tracer p50':>11} {'ratio':>7} {'traces':>7} {'events':>7} {'events/s':>9}  same outcome"
    )
    for task in found:
        image = builder.ensure(task)
        argv_ = shlex.split(task.tests.command)
        with Sandbox(image, task.limits, task.environment.workdir, task.environment.env, kind="bench", labels={"task": task.id}) as box:
            last: dict[str, object] = {}

            def untraced(box=box, argv_=argv_, last=last):
                last["plain"] = box.exec(argv_, timeout=600)

            def traced(backend, box=box, argv_=argv_, last=last):
                def call():
                    last[backend] = traces.run_traced(box, argv_, options=TraceOptions(backend=backend), timeout=600)

                return call

            # The tracer's process alone: its own copy and config, run by `docker exec` as the untraced suite is.
            folder = tracer_dir(box) + "/bench"
            box.write_file(f"{folder}/swe_env_tracer.py", tracer.runner_source())
            for backend in backends:
                config = {
                    "argv": argv_,
                    "function": None,
                    "args": None,
                    "out": f"{folder}/traces-{backend}.jsonl",
                    "workdir": box.workdir,
                    **TraceOptions(backend=backend).model_dump(),
                }
                box.write_file(f"{folder}/config-{backend}.json", json.dumps(config).encode())

            def process(backend, box=box, folder=folder):
                command = 'rm -f -- "$1/traces-$2.jsonl" && exec python "$1/swe_env_tracer.py" "$1/config-$2.json"'

                def call():
                    box.exec(["/bin/bash", "-c", command, "bench", folder, backend], timeout=600)

                return call

            samples = T.measure_interleaved(
                {"untraced": untraced, **{b: traced(b) for b in backends}, **{f"{b}:process": process(b) for b in backends}}, args.repeat, args.warmup
            )
        plain = last["plain"]
        base = T.median(samples["untraced"])
        for backend in backends:
            run, cand = last[backend], T.median(samples[backend])
            alone = T.median(samples[f"{backend}:process"])
            same = plain.exit_code == run.exit_code and parse_pytest_summary(plain.output) == parse_pytest_summary(run.output)
            rate = run.event_count / alone if alone > 0 else 0.0
            rows[backend].append((task.id, base, cand, alone))
            print(
                f"  {task.id:<34} {backend:<10} {T.ms(base):>13} {T.ms(cand):>15} {cand / base:>6.2f}x "
                f"{T.ms(alone):>11} {alone / base:>6.2f}x {len(run.traces):>7} {run.event_count:>7} {rate:>9.0f}  "
                f"{'yes' if same else 'NO'}"
            )
    print()
    for backend, found_rows in rows.items():
        if found_rows:
            for label, column in (("run_traced", 2), ("tracer process", 3)):
                ratios = sorted(row[column] / row[1] for row in found_rows)
                print(
                    f"{backend}, {label}: median ratio over {len(found_rows)} task(s): {T.median(ratios):.2f}x "
                    f"(best {ratios[0]:.2f}x, worst {ratios[-1]:.2f}x; goal <= 2x with monitoring)"
                )
    return 1 if T.check_no_leftovers() else 0


if __name__ == "__main__":
    sys.exit(main())
