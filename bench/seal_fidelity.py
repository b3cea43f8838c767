"""Seal fidelity: does the sealed grading change what a real SWE-bench test suite does?

For each instance (dataset files and `owner__name` mirrors, as `calibrate_gold.py` takes them), on the
instance's image, for each tree (`base`: base_commit with the test patch, `gold`: the gold patch and the
test patch), the script runs the task's test command twice in fresh grading-like containers (root, the
task's environment, stdin `/dev/null`, stderr into stdout, the same exec path as the grader):

- raw: the command as SWE-bench runs it, with nothing of ours in the container;
- sealed: `Grader.grade` (the start-up module, the plugin, the native seal, the environment they need),
  with every test the raw run reported listed, so the seal's verdict on each is in `test_results`.

Per test it compares the raw run's `-rA` summary with the sealed run's own `-rA` summary (what the tests
did under the seal) and with the sealed records (what the grader believed), and prints every test whose
outcome differs. Statuses are compared as passed / failed (failed or error) / skipped, an expected failure
passing (as SWE-bench and the seal count it);
a test one run reports and the other does not is `missing` there. Only pytest-run instances are compared
test by test (the `-rA` summary names each test); others get the listed tests' verdicts only.

Images it builds are removed once their instances are measured (instance images) and at the end (env
images); images that existed are kept. One JSON line per (instance, tree) goes to `--out`; a re-run skips
what is there.

    nice -n 10 python bench/seal_fidelity.py --dataset /work/data/SWE-bench_Verified-test.parquet \\
        --repo-mirror DIR [--repo pytest-dev/pytest] [--instances ID ...] [--limit N] [--deadline HH:MM]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _timing import check_no_leftovers, machine_line, sigterm_as_exit
from calibrate_gold import build, deadline_of, load_tasks, order, reachable_requirements, read_done

from swe_env.build.images import ImageBuilder
from swe_env.data.task import Task
from swe_env.grading import testlogs
from swe_env.grading.grader import Grader, GradingReport
from swe_env.grading.verdict import OUTPUT_LIMIT
from swe_env.run import validation
from swe_env.runtime import engine
from swe_env.runtime.sandbox import Sandbox

_COARSE = {
    "passed": "passed",
    "xpassed": "passed",
    "failed": "failed",
    "error": "failed",
    "skipped": "skipped",
    "xfailed": "skipped",
    "missing": "missing",
    "ignored": "missing",
}
_APPLY_TIMEOUT = 300


def coarse(status: str | None) -> str:
    return _COARSE.get(status or "missing", status or "missing")


def from_log(status: str | None) -> str:
    """A `-rA` summary's status, coarse, as SWE-bench and the seal count it: `-rA` names a skipped test by id only
    as XFAIL (`testlogs.parse_pytest_summary` reads it as skipped), and an expected failure passes."""
    found = coarse(status)
    return "passed" if found == "skipped" else found


def raw_run(task: Task, image: str, patch: str) -> tuple[int, str, float]:
    """The task's test command on `image` with `patch` and the test patch applied, nothing of the grader's in
    the container: (exit code, output, seconds). Same user (root), environment, stdin and exec path as a grading."""
    box = Sandbox.for_task(task, image, "fidelity", user=None).start()
    try:
        for name, text in (("model.patch", patch), ("test.patch", task.tests.test_patch)):
            if not text.strip():
                continue
            box.write_file(f"/tmp/fidelity/{name}", text.encode("utf-8", errors="surrogateescape"))
            applied = box.run(
                f"git apply --whitespace=nowarn /tmp/fidelity/{name} || patch --batch --fuzz=5 -p1 -i /tmp/fidelity/{name}", timeout=_APPLY_TIMEOUT
            )
            if applied.exit_code != 0:
                raise RuntimeError(f"{name} does not apply: {applied.output[-300:]}")
        box.run("rm -rf /tmp/fidelity", timeout=60)
        started = time.monotonic()
        run = box.exec_to_end(
            ["/bin/bash", "-c", "exec 2>&1 </dev/null\n" + task.tests.command],
            timeout=task.limits.grading_timeout,
            max_stdout=OUTPUT_LIMIT,
            max_stderr=1 << 16,
        )
        seconds = time.monotonic() - started
        return run.exit_code, run.stdout.data.decode("utf-8", errors="replace")[-OUTPUT_LIMIT:], seconds
    finally:
        box.close()


def listing_everything(task: Task, ids: set[str]) -> Task:
    """`task` with every test in `ids` listed (PASS_TO_PASS), so the grading's verdict names each."""
    listed = set(task.tests.fail_to_pass) | set(task.tests.pass_to_pass)
    extra = sorted(ids - listed)
    return task.model_copy(update={"tests": task.tests.model_copy(update={"pass_to_pass": [*task.tests.pass_to_pass, *extra]})})


def compare(raw_log: dict[str, str], sealed_log: dict[str, str], sealed_records: dict[str, str], listed: list[str]) -> list[dict[str, str]]:
    """Every test whose coarse outcome differs between the raw run and the sealed run: what the sealed run's own
    `-rA` summary says (behaviour), or what the seal recorded (`sealed_records`), for a test of the run.

    `-rA` names no skipped test, and its lines also come from output the tests print (pytest's own tests print
    their inner runs' summaries): a record the seal does not have counts only for a test the task lists
    (`listed`), and a test the raw summary does not name only when the seal says it passed or failed."""
    differences = []
    for test_id in sorted(set(raw_log) | set(sealed_log) | set(listed)):
        raw = from_log(raw_log.get(test_id))
        under_seal = from_log(sealed_log.get(test_id))
        recorded = coarse(sealed_records.get(test_id)) if test_id in sealed_records else None
        if raw != "missing":
            recording = recorded is not None and recorded != raw and (recorded != "missing" or test_id in listed)
        else:
            recording = recorded in ("passed", "failed")
        if raw != under_seal or recording:
            differences.append({"test": test_id, "raw": raw, "sealed_log": under_seal, "sealed_record": recorded or "-"})
    return differences


def measure(task: Task, image: str, tree: str, grader: Grader) -> dict[str, Any]:
    patch = task.gold_patch if tree == "gold" else ""
    line: dict[str, Any] = {
        "instance_id": task.id,
        "tree": tree,
        "repo": validation.repo_of(task),
        "runner": task.tests.runner,
        "load": round(os.getloadavg()[0], 1),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        exit_code, output, seconds = raw_run(task, image, patch)
    except Exception as exc:  # noqa: BLE001 - one instance's failure must not end the run
        return {**line, "outcome": "not_run", "cause": f"raw run: {type(exc).__name__}: {str(exc)[:300]}"}
    pytest_run = task.tests.runner == "pytest"
    raw_log = testlogs.parse_pytest_summary(output) if pytest_run else {}
    graded = listing_everything(task, set(raw_log)) if pytest_run else task
    report: GradingReport = grader.grade(graded, patch, image=image)
    sealed_log = testlogs.parse_pytest_summary(report.output) if pytest_run else {}
    listed = [*task.tests.fail_to_pass, *task.tests.pass_to_pass]
    differences = compare(raw_log, sealed_log, report.test_results, listed)
    line.update(
        {
            "outcome": "measured" if report.status == "graded" else "not_run",
            "status": report.status,
            "error": report.error,
            "seal": report.seal,
            "report_source": report.report_source,
            "flags": list(report.tampering),
            "resolved": report.resolved,
            "raw_exit": exit_code,
            "sealed_exit": report.test_exit_code,
            "raw_seconds": round(seconds, 2),
            "sealed_seconds": report.test_run_seconds,
            "tests_raw": len(raw_log),
            "tests_sealed": len(sealed_log),
            "differences": differences,
            "raw_log": raw_log,
            "sealed_log": sealed_log,
            "records": report.test_results,
            "listed": listed,
        }
    )
    if differences:
        line["raw_tail"], line["sealed_tail"] = output[-2000:], report.output[-2000:]
    return line


def run(tasks: list[Task], out: Path, trees: list[str], deadline: float | None) -> None:
    builder = ImageBuilder()
    grader = Grader(builder=builder)
    built_envs: set[str] = set()
    try:
        for index, task in enumerate(tasks):
            if deadline is not None and time.time() >= deadline:
                print(f"# deadline passed: {len(tasks) - index} instance(s) not started", file=sys.stderr, flush=True)
                break
            made = build(task, builder)
            if "image" in made and not made.get("env_cached"):
                built_envs.add(builder.env_tag(task.environment, builder.requirements_for(task)))
            lines = []
            for tree in trees:
                line = (
                    {"instance_id": task.id, "tree": tree, "repo": validation.repo_of(task), "outcome": "not_run", "cause": made["cause"]}
                    if "image" not in made
                    else measure(task, made["image"], tree, grader)
                )
                lines.append(line)
                with out.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(line) + "\n")
                what = line.get("cause") or f"{len(line['differences'])} difference(s), {line['tests_raw']} tests"
                print(f"[{index + 1}/{len(tasks)}] {task.id} {tree}: {line['outcome']}: {what}", file=sys.stderr, flush=True)
            if "image" in made and not made.get("instance_cached"):
                _remove(made["image"])
    finally:
        for tag in built_envs:
            _remove(tag)


def _remove(tag: str) -> None:
    try:
        engine.client().images.remove(tag, noprune=False)
    except Exception as exc:  # noqa: BLE001 - an image in use elsewhere stays
        print(f"  kept {tag}: {type(exc).__name__}", file=sys.stderr)


def summarize(lines: list[dict[str, Any]]) -> None:
    measured = [x for x in lines if x["outcome"] == "measured"]
    for x in measured:  # the current rule, on what each line kept
        if "raw_log" in x:
            x["differences"] = compare(x["raw_log"], x["sealed_log"], x["records"], x["listed"])
    print(
        f"\n# seal_fidelity: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine_line()}; "
        f"load average now {' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    loads = [x["load"] for x in lines if "load" in x]
    if loads:
        print(f"load average (1 min) while measured: {min(loads):.1f}-{max(loads):.1f}")
    instances = {x["instance_id"] for x in measured}
    tests = sum(x["tests_raw"] for x in measured)
    differing = [x for x in measured if x["differences"]]
    print(
        f"{len(instances)} instance(s), {len(measured)} tree(s) measured ({tests} test outcomes of raw runs compared), "
        f"{len(differing)} tree(s) with a difference, "
        f"{sum(len(x['differences']) for x in measured)} differing test outcome(s); "
        f"{sum(1 for x in lines if x['outcome'] != 'measured')} not run"
    )
    by_repo = Counter(x["repo"] for x in measured)
    print("by repository: " + ", ".join(f"{repo} {count}" for repo, count in sorted(by_repo.items())))
    seals = Counter(x.get("seal") for x in measured)
    print("seal: " + ", ".join(f"{k} {v}" for k, v in seals.items()) + f"; flagged trees: {sum(1 for x in measured if x['flags'])}")
    for x in differing:
        for d in x["differences"]:
            print(f"  {x['instance_id']} [{x['tree']}] {d['test']}: raw {d['raw']}, under the seal {d['sealed_log']}, recorded {d['sealed_record']}")
    for x in lines:
        if x["outcome"] != "measured":
            print(f"  not run: {x['instance_id']} [{x['tree']}]: {x.get('cause') or x.get('error')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", required=True, help="a SWE-bench file (repeatable)")
    parser.add_argument("--repo-mirror", required=True, help="folder of owner__name mirrors")
    parser.add_argument("--out", default="runs/bench/seal_fidelity.jsonl", help="results, one JSON line per instance and tree")
    parser.add_argument("--repo", action="append", default=[], help="only these repositories, in this order (repeatable)")
    parser.add_argument("--instances", nargs="*", help="only these instance ids")
    parser.add_argument("--trees", default="base,gold", help="which trees: base (test patch only), gold (and the gold patch)")
    parser.add_argument("--limit", type=int, default=0, help="at most N instances this run (0: all)")
    parser.add_argument("--deadline", metavar="HH:MM", help="start no instance after this UTC time today")
    parser.add_argument("--summary-only", action="store_true", help="print the summary of --out and stop")
    args = parser.parse_args()
    sigterm_as_exit()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    trees = [t for t in args.trees.split(",") if t]
    if set(trees) - {"base", "gold"}:
        parser.error("--trees takes base and gold")

    def everything() -> list[dict[str, Any]]:
        lines = []
        if out.exists():
            for raw in out.read_text(encoding="utf-8").splitlines():
                try:
                    lines.append(json.loads(raw))
                except json.JSONDecodeError:
                    continue
        return lines

    if args.summary_only:
        summarize(everything())
        return 0
    done = read_done(out)
    tasks, _names, _skipped = load_tasks(args.dataset, Path(args.repo_mirror))
    chosen = [
        t
        for t in tasks
        if t.id not in done and (not args.instances or t.id in args.instances) and (not args.repo or validation.repo_of(t) in args.repo)
    ]
    chosen, notes = reachable_requirements(chosen)
    chosen = order(chosen, ImageBuilder(), notes)
    if args.repo:  # the repositories in the order given (pytest's own first), each cheapest group first
        chosen.sort(key=lambda t: args.repo.index(validation.repo_of(t)))
    if args.limit:
        chosen = chosen[: args.limit]
    print(f"# seal_fidelity: {len(chosen)} instance(s) to measure, {len(done)} already in {out}; {machine_line()}", flush=True)
    try:
        run(chosen, out, trees, deadline_of(args.deadline))
    finally:
        check_no_leftovers()
        summarize(everything())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
