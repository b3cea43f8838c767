"""Real SWE-bench instances: does the gold patch resolve and the empty patch not, per repository?

Draws a sample stratified by repository from SWE-bench dataset files (Verified, Lite, …),
over the repositories that have a local mirror in `--repo-mirror` (`owner__name` clones),
builds each instance's image with the built-in recipes, grades the gold and the empty patch,
and prints the per-repository table with the cause of every gold failure. Also: image build
times (first instance of a repository/version vs. later ones, whose env layer is shared), and
the grader's overhead over the raw test run measured in the same gradings (the baseline).
Writes every result to `--out` (JSON lines) so a long run can be read while it goes.

    python bench/swebench_validate.py --dataset SWE-bench_Verified.parquet --dataset SWE-bench_Lite.parquet \\
        --repo-mirror /srv/mirrors [--sample 40] [--seed 0] [--workers 2] [--exclude sympy/sympy]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _timing import check_no_leftovers, machine_line, sigterm_as_exit

from swe_env.build.images import ImageBuilder
from swe_env.importers import swebench
from swe_env.run import validation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", required=True, help="a SWE-bench file (repeatable)")
    parser.add_argument("--repo-mirror", required=True, help="folder of owner__name mirrors")
    parser.add_argument("--sample", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--exclude", action="append", default=[], help="repositories to leave out (repeatable)")
    parser.add_argument("--instances", nargs="*", help="these instance ids instead of a sample")
    parser.add_argument("--out", default="runs/bench/swebench_validate.jsonl")
    parser.add_argument(
        "--overhead",
        type=int,
        default=8,
        help="afterwards, grade the gold patch of up to N valid instances again, one at a time with "
        "nothing else running, for the grading overhead (0: skip)",
    )
    parser.add_argument("--overhead-only", action="store_true", help="only the overhead phase, on --instances (their images must build or exist)")
    args = parser.parse_args()
    sigterm_as_exit()

    mirror = Path(args.repo_mirror)
    records: dict[str, dict] = {}
    for path in args.dataset:
        for record in swebench.read_records(path):
            records.setdefault(record["instance_id"], record)
    repos = sorted({r["repo"] for r in records.values()})
    mirrored = [repo for repo in repos if (mirror / repo.replace("/", "__")).exists() and repo not in args.exclude]
    left_out = [repo for repo in repos if repo not in mirrored]
    tasks = [swebench.instance_to_task(r, repo_mirror=mirror) for r in records.values() if r["repo"] in mirrored]
    if args.instances:
        chosen = [t for t in tasks if t.id in set(args.instances)]
        unknown = sorted(set(args.instances) - {t.id for t in chosen})
        if unknown:
            parser.error(f"--instances: not in the mirrored instances of the datasets: {', '.join(unknown)}")
    else:
        chosen = validation.sample_tasks(tasks, args.sample, args.seed)
    print(
        f"# swebench_validate: {len(chosen)} instances of {len(tasks)} over {len(mirrored)} mirrored repositories "
        f"(seed {args.seed}); {time.strftime('%Y-%m-%d')}; {machine_line()}"
    )
    print(f"# repositories left out (no mirror or --exclude): {', '.join(left_out) or 'none'}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    builder = ImageBuilder()

    def record(result: validation.InstanceValidation) -> None:
        ran = _raw_seconds(result.gold)
        line = {
            "instance_id": result.task_id,
            "repo": result.repo,
            "version": result.version,
            "verdict": result.verdict,
            "cause": result.cause,
            "python_requested": result.python_requested,
            "python_used": result.python_used,
            "build_seconds": result.build_seconds,
            "env_cached": result.env_cached,
            "gold_seconds": result.gold_seconds,
            "gold_test_run_seconds": ran,
            "gold_status": result.gold.status if result.gold else None,
            "empty_status": result.empty.status if result.empty else None,
            "empty_resolved": bool(result.empty and result.empty.resolved),
        }
        with out.open("a") as handle:
            handle.write(json.dumps(line) + "\n")
        if result.gold is not None and not result.gold.resolved:  # kept for reading the cause later
            logs = out.with_suffix("")
            logs.mkdir(exist_ok=True)
            (logs / f"{result.task_id}.gold.txt").write_text("\n".join(result.gold.log) + "\n\n" + result.gold.output[-200_000:])
        print(f"[{time.monotonic() - started:7.0f} s] {result.task_id}: {result.verdict}" + (f": {result.cause}" if result.cause else ""), flush=True)

    try:
        if args.overhead_only:
            _overhead(chosen, builder, len(chosen))
            return 0
        results = validation.validate_tasks(chosen, workers=args.workers, builder=builder, on_result=record)
        _print_tables(results)
        valid = {r.task_id for r in results if r.verdict == "valid"}
        _overhead([t for t in chosen if t.id in valid], builder, args.overhead)
    finally:
        check_no_leftovers()
    return 0


def _overhead(tasks, builder: ImageBuilder, count: int) -> None:
    """The grader's whole run against the raw test command inside it, one grading at a time (quiet machine)."""
    if count <= 0 or not tasks:
        return
    picked, seen = [], set()
    for task in sorted(tasks, key=lambda t: (validation.repo_of(t) in seen, t.id)):  # one per repository first
        if len(picked) < count:
            picked.append(task)
            seen.add(validation.repo_of(task))
    grader = validation.Grader(builder=builder)
    rows = []
    for task in picked:
        report = grader.grade(task, task.gold_patch, image=builder.ensure(task))
        ran = _raw_seconds(report)
        if ran is not None:
            rows.append((task.id, report.seconds, ran))
    print("\n| instance | grading s | raw test run s | overhead s |\n|---|---|---|---|")
    for task_id, total, ran in rows:
        print(f"| {task_id} | {total:.2f} | {ran:.2f} | {total - ran:.2f} |")
    if rows:
        overheads = sorted(total - ran for _, total, ran in rows)
        print(
            f"\ngrading overhead, one grading at a time: median {statistics.median(overheads):.2f} s, "
            f"max {overheads[-1]:.2f} s over {len(rows)} instances (the baseline is the raw test run inside the same grading)"
        )


def _raw_seconds(report) -> float | None:
    return None if report is None else report.test_run_seconds


def _print_tables(results: list[validation.InstanceValidation]) -> None:
    print("\n| repository | instances | gold resolved | empty unresolved | env errors | other Python | build s (median) | gold grading s (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in validation.summarize(results):
        print(
            f"| {row.repo} | {row.instances} | {row.gold_resolved} | {row.empty_unresolved} | {row.env_errors} | "
            f"{row.other_python} | {_median(row.build_seconds)} | {_median(row.test_seconds)} |"
        )
    total = len(results)
    gold = sum(bool(r.gold and r.gold.resolved) for r in results)
    empty_resolved = sum(bool(r.empty and r.empty.resolved) for r in results)
    print(
        f"| **all** | {total} | {gold} ({100 * gold / max(total, 1):.0f}%) | {total - empty_resolved} | "
        f"{sum(r.verdict == 'env_error' for r in results)} | {sum(r.python_differs for r in results)} | | |"
    )
    later = [r.build_seconds for r in results if r.env_cached]
    first = [r.build_seconds for r in results if not r.env_cached and r.gold]
    print(
        f"\nimage build: {_median(first)} s median with a new env layer ({len(first)}), "
        f"{_median(later)} s median when the repository/version's env layer was already built ({len(later)}, max "
        f"{max(later) if later else '-'} s)"
    )
    overheads = [r.gold.seconds - ran for r in results if r.gold and (ran := _raw_seconds(r.gold)) is not None]
    if overheads:
        print(
            f"\ngrading overhead over the raw test run (same gradings): median {statistics.median(overheads):.2f} s, "
            f"max {max(overheads):.2f} s over {len(overheads)} gold gradings"
        )
    failures = [r for r in results if r.verdict != "valid"]
    if failures:
        print("\nnot valid:")
        for r in failures:
            print(f"- {r.task_id} ({r.repo} {r.version}, python {r.python_used}): {r.verdict}: {r.cause}")


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "-"


if __name__ == "__main__":
    raise SystemExit(main())
