"""Task synthesis throughput: candidates per minute, validated tasks and acceptance per method, per repository.

    python3 bench/synthesize.py [--repo tasks/repos/slugkit.bundle ...] [--max-tasks 100] [--workers 2]
                                [--environment FILE | --recipe REPO@VERSION [--recipes FILE]] [--validate-sample 5]
                                [--minutes 30] [--methods M ...] [--learn-timeout S]

Each repository is synthesized into a fresh folder under runs/bench/synthesize/ (figures are of a cold run:
the image's env layer may be cached, the learning and every candidate are not); then a sample of its
tasks goes through `swe-env validate`'s rule and one oracle rollout each. The baseline is one run of
the whole suite in the same image (`Worker.run_tests`), measured in the same run: a candidate costs
two runs of the tests that reach it plus a git reset. It prints where the time went (seconds per
phase summed over workers: image, learning, applying, first and second test runs, resets, writing)
and how many tasks there were after 10, 20 and 30 minutes. A repository whose run stops with a one-line reason
(a suite that cannot be learned in time) is printed so, and the others go on; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import ROOT, check_no_leftovers, machine_line, other_managed_containers, sigterm_as_exit  # noqa: E402

from swe_env.build.images import ImageBuilder  # noqa: E402
from swe_env.data.task import Environment, load_environment, load_tasks  # noqa: E402
from swe_env.grading.grader import Grader  # noqa: E402
from swe_env.run import validation  # noqa: E402
from swe_env.run.rollout import rollout  # noqa: E402
from swe_env.synth import pipeline  # noqa: E402
from swe_env.synth.suite import Worker  # noqa: E402

BUNDLED = ["tasks/repos/slugkit.bundle", "tasks/repos/ledger.bundle", "tasks/repos/minicsv.bundle"]


def main() -> int:
    sigterm_as_exit()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", action="append", help="repository (folder, bare, bundle); repeatable; default the bundled three")
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--name", help="the repository's name in task ids (one --repo only)")
    parser.add_argument("--environment", type=Path, help="environment YAML (default: pytest 8.3.5 only, as the bundled tasks)")
    parser.add_argument("--recipe", help="REPO@VERSION: the image from that SWE-bench recipe instead (synthesize --recipe)")
    parser.add_argument("--recipes", type=Path, help="recipes file laid over the built-in ones (with --recipe)")
    parser.add_argument("--max-tasks", type=int, default=100)
    parser.add_argument("--max-candidates", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--validate-sample", type=int, default=5, help="tasks per repository validated and rolled out (0: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs/bench/synthesize")
    parser.add_argument("--minutes", type=float, default=None, help="stop starting candidates after this many minutes")
    parser.add_argument("--methods", action="append", help="methods (repeatable; default synthesize's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--learn-timeout", type=float, default=None, help="seconds each learning run may take (synthesize --learn-timeout; default scaled)"
    )
    args = parser.parse_args()
    environment = load_environment(args.environment) if args.environment else None
    if environment is None and not args.recipe:
        environment = Environment(pip_packages=["pytest==8.3.5"])
    print(f"# task synthesis; {machine_line()}; other swe-env containers at start: {other_managed_containers()}")
    builder = ImageBuilder()
    rows = []
    failed: list[str] = []
    for repo in args.repo or [str(ROOT / path) for path in BUNDLED]:
        name = args.name or Path(repo).name.removesuffix(".bundle").removesuffix(".git")
        out = args.out / name
        shutil.rmtree(out, ignore_errors=True)
        config = pipeline.SynthConfig(
            repo=repo,
            commit=args.commit,
            name=name,
            environment=environment,
            recipe=args.recipe,
            recipes=args.recipes,
            out=out,
            max_tasks=args.max_tasks,
            max_candidates=args.max_candidates,
            workers=args.workers,
            max_minutes=args.minutes,
            methods=args.methods,
            seed=args.seed,
            learn_timeout=args.learn_timeout,
        )
        started = time.monotonic()
        reached: list[tuple[float, int]] = []

        def progress(summary: pipeline.Summary, reached: list[tuple[float, int]] = reached, started: float = started) -> None:
            if not reached or reached[-1][1] != summary.validated:
                reached.append((time.monotonic() - started, summary.validated))

        try:
            summary = pipeline.synthesize(config, builder=builder, on_progress=progress)
        except pipeline.SynthesisError as exc:  # the run's own one-line reason (a suite that cannot be learned in time)
            print(f"{name}: error after {(time.monotonic() - started) / 60:.1f} min: {exc}")
            failed.append(name)
            continue
        minutes = (time.monotonic() - started) / 60
        suite_seconds = _suite_run(config, builder)
        rate = summary.candidates / minutes if minutes else 0.0
        print(
            f"{name}: {summary.validated} tasks from {summary.candidates} candidates in {minutes:.1f} min "
            f"({rate:.1f} candidates/min, {summary.validated / minutes:.1f} tasks/min); "
            f"{summary.passing_tests} passing tests learned, flaky {len(summary.flaky_tests)}; "
            f"one suite run {suite_seconds:.2f} s (median of 3)"
        )
        for method, counts in sorted(summary.per_method.items()):
            share = counts["validated"] / counts["candidates"] if counts["candidates"] else 0.0
            why = ", ".join(f"{r} {n}" for r, n in counts.most_common() if r not in ("candidates", "validated"))
            print(
                f"  {method}: {counts['candidates']} candidates, {counts['validated']} validated ({share:.0%})"
                + (f"; rejected: {why}" if why else "")
            )
        print("  rejected: " + (", ".join(f"{r} {n}" for r, n in summary.rejected.most_common()) or "none"))
        spent = sum(summary.timings.values()) or 1.0
        print(
            "  time by phase (s, summed over workers): "
            + ", ".join(
                f"{phase} {seconds:.0f} ({seconds / spent:.0%})" for phase, seconds in sorted(summary.timings.items(), key=lambda item: -item[1])
            )
        )
        print("  tasks after " + ", ".join(f"{mark} min: {max([n for at, n in reached if at <= mark * 60] or [0])}" for mark in (5, 10, 20, 30)))
        if args.validate_sample and summary.total_tasks:
            sample = validation.sample_tasks(load_tasks(out), args.validate_sample, seed=0)
            results = validation.validate_tasks(sample, workers=args.workers, builder=builder, grader=Grader(builder=builder))
            valid = sum(r.verdict == "valid" for r in results)
            trajectories = rollout(sample, "oracle", workers=args.workers, out=out / "oracle.jsonl")
            resolved = sum(t.resolved for t in trajectories)
            print(f"  sample of {len(sample)}: validate {valid}/{len(sample)} valid; oracle resolved {resolved}/{len(sample)}")
            for result in results:
                if result.verdict != "valid":
                    print(f"    {result.task_id}: {result.verdict}: {result.cause}")
        rows.append((name, summary, minutes))
    total = sum(s.validated for _, s, _ in rows)
    minutes = sum(m for _, _, m in rows)
    print(
        f"total: {total} tasks in {minutes:.1f} min; median acceptance "
        f"{statistics.median([s.validated / s.candidates for _, s, _ in rows if s.candidates] or [0]):.0%}"
    )
    if failed:
        print(f"no task from: {', '.join(failed)} (see the error above)")
    return 1 if check_no_leftovers() or failed else 0


def _suite_run(config: pipeline.SynthConfig, builder: ImageBuilder) -> float:
    """Median seconds of one whole-suite run in a worker's container (the baseline a candidate's cost compares to)."""
    base, _git_dir, _name = pipeline.base_task(config)
    with Worker(base, builder.ensure(base)) as worker:
        times = []
        for _ in range(3):
            started = time.monotonic()
            worker.run_tests()
            times.append(time.monotonic() - started)
    return statistics.median(times)


if __name__ == "__main__":
    raise SystemExit(main())
