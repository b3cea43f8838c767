"""What grading costs on top of the tests themselves, and how `evaluate` scales with workers.

Per bundled task: the grader's whole run (fresh container, patch, restore, test patch, tests,
report, removal) against the same test command inside a container that is already running
with the test patch applied (the baseline). The overhead of a round is its grading's seconds
less its bare run's (mean, p50, p90, p99, max over every round of every task, with the 1-minute
load average beside it). With `--compare`, the grader's steps before the test run as one
`docker exec` each (`prepare.STEPS_IN_SHELL` off, the path before 7 December) are measured in
the same rounds, and with `--compare-setup` the setup before 7 December, afternoon (`setup_before`: the
recorder's files and key written one by one). With `--profile`, where each grading's own time goes (`Phases`: the container's
start, the private shell's start, the steps, the writes, the run's end, the removal ...). Then
`evaluate` of the gold patches of every task with 1 worker and with 4 workers. Asserts nothing.

    python bench/grade_overhead.py [--repeat 5] [--warmup 1] [--tasks tasks] [--task ID ...] [--compare]
                                   [--warm-pool N] [--compare-setup] [--profile] [--eval-warm-pool N]
                                   [--dataset FILE --repo-mirror DIR --instances ID ...]

With `--dataset` the tasks are those SWE-bench instances (real repositories) whose instance image is
already built here (none is built: `swebench_validate.py` or `calibrate_gold.py` build them).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import shutil
import tempfile
import threading
import time

from _timing import (
    check_no_leftovers,
    cpu_busy_seconds,
    header,
    load_selected_tasks,
    mean,
    median,
    parse_args,
    percentile,
    sigterm_as_exit,
    table,
    time_call,
)

from swe_env.build.images import ImageBuilder
from swe_env.grading import grader as grader_module
from swe_env.grading import prepare, testrun
from swe_env.grading.grader import Grader
from swe_env.run.evaluate import evaluate
from swe_env.runtime import disk, execute, files, lifecycle, shell
from swe_env.runtime.sandbox import Sandbox

# What `--profile` times, by name: (owner, attribute). Times are inclusive: "test run" holds "stop after the run".
PHASES = {
    "container start": (Sandbox, "start"),
    "private shell start": (shell.ShellSession, "start"),
    "steps through the private shell": (prepare, "_step"),
    "file writes": (files.Files, "write"),
    "file writes in one archive": (files.Files, "write_many"),
    "changed lines (git diff)": (prepare, "changed_lines"),
    "test run (exec to its end)": (execute.Executor, "exec_to_end"),
    "private shell's end (closed, exec ended)": (files.Files, "close_shell"),
    "stop after the run (the engine's top)": (lifecycle.Lifecycle, "stop_all_processes"),
    "disk watch's end": (disk.DiskWatch, "__exit__"),
    "disk check after the run": (disk.DiskWatch, "reckon"),
    "alive after the run": (Sandbox, "alive"),
    "read the sealed results": (testrun, "read_results"),
    "suspicion": (grader_module.suspicion, "flags"),
    "reward": (grader_module, "compute_reward"),
    "removal": (Sandbox, "close"),
}


@contextlib.contextmanager
def setup_before():
    """The grading's setup as it was before 7 December, afternoon: the recorder's files and the key written one by one
    (an archive and a step each past the inline limit, a step each under it), the user's ids asked of the container."""
    write_many, user_ids = files.Files.write_many, files.Files._user_ids

    def one_by_one(self, written):
        for path, data in written.items():
            self.write(path, data)

    def asked(self):
        if self._shell.ids is None:
            out = files.Files(self._shell)._run("id -u; id -g", "id").split()
            self._shell.ids = (int(out[0]), int(out[1]))
        return self._shell.ids

    files.Files.write_many, files.Files._user_ids = one_by_one, asked
    try:
        yield
    finally:
        files.Files.write_many, files.Files._user_ids = write_many, user_ids


class Phases:
    """Wraps `PHASES` for the duration of a `with`: per grading (`grading()` starts one), the seconds and calls
    of each, on the calling thread only (a warm pool's opener runs on its own thread: off the path)."""

    def __init__(self):
        self.per_grading: list[tuple[str, dict[str, list[float]]]] = []
        self._thread = threading.get_ident()
        self._saved: list[tuple[object, str, object]] = []

    def __enter__(self) -> Phases:
        for name, (owner, attribute) in PHASES.items():
            original = owner.__dict__[attribute] if isinstance(owner, type) else getattr(owner, attribute)
            self._saved.append((owner, attribute, original))
            setattr(owner, attribute, self._timed(name, original))
        return self

    def __exit__(self, *exc_info) -> None:
        for owner, attribute, original in reversed(self._saved):
            setattr(owner, attribute, original)

    def _timed(self, name: str, original):
        phases = self

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if threading.get_ident() != phases._thread or not phases.per_grading:
                return original(*args, **kwargs)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                phases.per_grading[-1][1][name].append(time.perf_counter() - started)

        return timed

    def grading(self, variant: str) -> None:
        """A grading of `variant` starts now."""
        self.per_grading.append((variant, collections.defaultdict(list)))

    def print(self, variant: str, own: list[float]) -> None:
        """Each phase's seconds per grading of `variant` (mean, p50 and p90 over them, calls per grading), beside
        the grader's own time (`own`)."""
        gradings = [phases for name, phases in self.per_grading if name == variant and phases]
        if not gradings:
            return
        print(f"where the time of a grading goes, {variant} ({len(gradings)} gradings; inclusive):")
        print(f"  {'phase':<40} {'calls':>6} {'mean ms':>9} {'p50 ms':>9} {'p90 ms':>9}")
        for name in PHASES:
            sums = [sum(phases.get(name, [])) for phases in gradings]
            calls = sum(len(phases.get(name, [])) for phases in gradings) / len(gradings)
            if calls:
                print(f"  {name:<40} {calls:>6.1f} {mean(sums) * 1000:>9.1f} {median(sums) * 1000:>9.1f} {percentile(sums, 90) * 1000:>9.1f}")
        if own:
            print(
                f"  {'own time (seconds less the test run)':<40} {'':>6} {mean(own) * 1000:>9.1f} "
                f"{median(own) * 1000:>9.1f} {percentile(own, 90) * 1000:>9.1f}"
            )
        print()


def real_instances(args, builder: ImageBuilder) -> tuple[list, dict[str, str]]:
    """The chosen SWE-bench instances whose instance image is built here, and their images (none is built)."""
    from pathlib import Path  # noqa: PLC0415 - only with --dataset

    from swe_env.build.images import image_exists  # noqa: PLC0415
    from swe_env.importers import swebench  # noqa: PLC0415

    table = swebench.load_recipes(args.recipes)
    chosen = set(args.instances)
    tasks, images = [], {}
    for record in swebench.read_records(args.dataset):
        if chosen and record["instance_id"] not in chosen:
            continue
        task = swebench.instance_to_task(record, table, repo_mirror=Path(args.repo_mirror) if args.repo_mirror else None)
        tag = builder.instance_tag(task)
        if image_exists(tag):
            tasks.append(task)
            images[task.id] = tag
        else:
            print(f"{task.id}: its instance image is not built here; left out")
    return tasks, images


def evaluate_with_warm_pool(tasks: list, builder: ImageBuilder, size: int, repeat: int) -> None:
    """`evaluate` of the gold patches with 1 worker, by a default grader and by one with a warm pool of `size`, in
    turn (`repeat` rounds): each wall time and the machine's busy core-seconds, the pool's hits and misses. An
    evaluation grades each instance once, so every take from the pool is a miss (started on the grading's path)
    and each kept container is started for nothing: what a pool by default would cost `evaluate`."""
    rows: dict[str, list[tuple[float, float]]] = {"default grader": [], f"warm pool of {size}": []}
    for _ in range(max(repeat, 1)):
        for name in rows:
            grader = Grader(builder=builder, warm_pool=size if name != "default grader" else 0)
            folder = tempfile.mkdtemp(prefix="swe-env-bench-eval-")
            try:
                cpu_before, started = cpu_busy_seconds(), time.perf_counter()
                evaluate(tasks, "gold", f"bench-pool-{size}", max_workers=1, report_dir=folder, grader=grader)
                grader.close()  # the kept containers' removal is part of the cost
                wall = time.perf_counter() - started
                rows[name].append((wall, (cpu_busy_seconds() or 0.0) - (cpu_before or 0.0)))
                pool = grader._pool
                hits = f", pool hits {pool.hits}, misses {pool.misses}" if pool is not None else ""
                print(f"  evaluate gold, {len(tasks)} tasks, 1 worker, {name}: {wall:.2f} s, machine busy {rows[name][-1][1]:.1f} core-s{hits}")
            finally:
                grader.close()
                shutil.rmtree(folder, ignore_errors=True)
    for name, values in rows.items():
        print(f"  {name}: wall p50 {median(v[0] for v in values):.2f} s, busy p50 {median(v[1] for v in values):.1f} core-s")
    print()


def main() -> int:
    def extra(parser):
        parser.add_argument(
            "--eval-repeat", type=int, default=1, help="timed evaluate runs per worker count (default 1; 0: the grading overhead only)"
        )
        parser.add_argument("--task", action="append", default=[], help="only this task (repeatable)")
        parser.add_argument(
            "--compare", action="store_true", help="also grade with one docker exec per step before the tests (the path before), same rounds"
        )
        parser.add_argument(
            "--warm-pool", type=int, default=0, help="also grade with a grader keeping this many containers started ahead, same rounds"
        )
        parser.add_argument(
            "--eval-warm-pool",
            type=int,
            default=0,
            metavar="N",
            help="also evaluate the gold patches (1 worker) by a grader with a warm pool of N against "
            "the default grader, in turn (--eval-repeat rounds)",
        )
        parser.add_argument(
            "--compare-setup",
            action="store_true",
            help="also grade with the recorder's files and key written one by one (the setup before 7 December, afternoon), same rounds",
        )
        parser.add_argument("--profile", action="store_true", help="print where each grading's time goes, phase by phase (the timed rounds only)")
        parser.add_argument("--dataset", help="a SWE-bench file: grade these real instances instead of --tasks")
        parser.add_argument("--repo-mirror", help="folder of owner__name mirrors (with --dataset)")
        parser.add_argument("--recipes", help="a recipe file laid over the built-in ones (with --dataset)")
        parser.add_argument("--instances", nargs="*", default=[], help="these instance ids (with --dataset)")

    args = parse_args(__doc__.splitlines()[0], default_repeat=5, extra=extra)
    sigterm_as_exit()
    header("grade_overhead: grader vs. the bare test command; evaluate with 1 vs 4 workers", args)
    builder = ImageBuilder()
    if args.dataset:
        tasks, images = real_instances(args, builder)
    else:
        tasks = load_selected_tasks(args)
        images = {task.id: builder.ensure(task) for task in tasks}
    grader = Grader(builder=builder)
    warm = Grader(builder=builder, warm_pool=args.warm_pool) if args.warm_pool else None
    variants = {"grade": (grader, True, True)}
    if warm is not None:
        variants[f"grade, warm pool of {args.warm_pool}"] = (warm, True, True)
    if args.compare:
        variants["grade, exec per step"] = (grader, False, True)
    if args.compare_setup:
        variants["grade, files one by one"] = (grader, True, False)
    overheads: dict[str, list[float]] = {name: [] for name in variants}
    own: dict[str, list[float]] = {name: [] for name in variants}
    """Each grading's seconds less its own test run's (`test_run_seconds`): the grader's work alone, free of the
    bare run's own variance (a loaded machine makes the test runs themselves vary by seconds)."""
    loads: list[float] = []
    rows = []
    phases = Phases() if args.profile else None
    try:
        if phases is not None:
            phases.__enter__()
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

                def graded(variant: tuple[Grader, bool, bool], task=task, name: str | None = None):
                    if phases is not None:
                        phases.grading(name or "warm-up")  # a warm-up's phases are kept apart (not printed)
                    prepare.STEPS_IN_SHELL = variant[1]
                    try:
                        with contextlib.nullcontext() if variant[2] else setup_before():
                            report = variant[0].grade(task, task.gold_patch, image=images[task.id])
                    finally:
                        prepare.STEPS_IN_SHELL = True
                    if not report.resolved:
                        raise RuntimeError(f"{task.id}: gold did not resolve ({report.status}: {report.error})")
                    if name is not None:
                        own[name].append(report.seconds - (report.test_run_seconds or 0.0))

                for _ in range(args.warmup):
                    bare()
                    for variant in variants.values():
                        graded(variant)
                samples: dict[str, list[float]] = {"bare": [], **{name: [] for name in variants}}
                for _ in range(args.repeat):  # alternating, so other load on the machine affects each alike
                    loads.append(os.getloadavg()[0])
                    samples["bare"].append(time_call(bare))
                    for name, variant in variants.items():
                        samples[name].append(time_call(functools.partial(graded, variant, name=name)))
                        overheads[name].append(samples[name][-1] - samples["bare"][-1])
            rows.append((task.id, samples))
        for task_id, samples in rows:
            table([(name, values) for name, values in samples.items()], f"{task_id}:")
        table(
            [(f"overhead: {name} - bare (same round)", values) for name, values in overheads.items()],
            f"grading overhead over the bare test command, every round of {len(rows)} task(s) "
            f"(goal: p50 and p90 <= 1000 ms); 1-minute load average {min(loads):.1f}-{max(loads):.1f}, "
            f"median {median(loads):.1f}:",
        )
        for name, values in overheads.items():
            print(f"  {name}: overhead p50 {median(values):.3f} s, p90 {percentile(values, 90):.3f} s, p99 {percentile(values, 99):.3f} s")
        print()
        table(
            [(f"grader's own: {name}", values) for name, values in own.items()],
            "the grader's own time, each grading's seconds less its test run's (report.seconds - test_run_seconds):",
        )
        if phases is not None:
            profile, phases = phases, None
            profile.__exit__(None, None, None)
            for name in variants:
                profile.print(name, own[name])

        cores = os.cpu_count() or 1
        walls: dict[int, list[float]] = {1: [], 4: []}
        busy: dict[int, list[float]] = {1: [], 4: []}
        for _ in range(args.eval_repeat):
            for workers in (1, 4):
                folder = tempfile.mkdtemp(prefix="swe-env-bench-eval-")
                try:
                    cpu_before, started = cpu_busy_seconds(), time.perf_counter()
                    result = evaluate(tasks, "gold", f"bench-{workers}", max_workers=workers, report_dir=folder, grader=Grader(builder=builder))
                    walls[workers].append(time.perf_counter() - started)
                    cpu_after = cpu_busy_seconds()
                    if cpu_before is not None and cpu_after is not None:
                        busy[workers].append(cpu_after - cpu_before)
                    resolved = result.reports["gold"]["resolved_instances"]
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
                cpu = (
                    f", machine busy {busy[workers][-1]:.1f} core-s = {busy[workers][-1] / walls[workers][-1] / cores:.0%} of {cores} cores"
                    if busy[workers]
                    else ""
                )
                print(f"  evaluate gold, {len(tasks)} tasks, --max-workers {workers}: {walls[workers][-1]:.2f} s ({resolved} resolved){cpu}")
        if args.eval_warm_pool:
            evaluate_with_warm_pool(tasks, builder, args.eval_warm_pool, args.eval_repeat)
        if walls[1]:  # --eval-repeat 0: the overhead only
            one, four = median(walls[1]), median(walls[4])
            print(f"\nevaluate speed-up with 4 workers over 1: {one / four:.2f}x (goal: >= 2.5x on 2 cores)")
            if busy[1]:
                # However the work is spread, it cannot finish before the machine has done it.
                ceiling = one / (median(busy[1]) / cores)
                print(
                    f"ceiling set by CPU: the 1-worker run needs {median(busy[1]):.1f} core-s of work, "
                    f"so {cores} cores cannot run it more than {ceiling:.2f}x faster"
                )
            print()
    finally:
        if phases is not None:
            phases.__exit__(None, None, None)
        if warm is not None:
            warm.close()
        left = check_no_leftovers()
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
