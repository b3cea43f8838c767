"""Evaluating many predictions in parallel, with reports laid out like SWE-bench's harness.

    <report_dir>/logs/run_evaluation/<run_id>/<model>/<instance_id>/
        report.json  patch.diff  test_output.txt  run_instance.log
    <report_dir>/<model>.<run_id>.json          (the run report, SWE-bench's keys)

`test_output.txt` carries SWE-bench's markers around the test command's output
(`>>>>> Start Test Output`, `>>>>> End Test Output`, then `>>>>> Test Exit Code: N`, as its
harness writes them), so SWE-bench's own log parsers and `get_logs_eval` read it; a run that
timed out ends like SWE-bench's (`Timeout error: N seconds exceeded.`, no end marker), and a
run that never started the tests has no markers (SWE-bench reads that as "not applied").

`report.json` is written (atomically) only for an instance whose tests ran, so a re-run with
the same run id skips exactly those and retries errors. Empty patches are not run. On
Ctrl-C, no new instance starts, the grader containers of this evaluation are removed, the
run report is written for what finished, and KeyboardInterrupt propagates.

Why one module of this size (just over 400 lines): the run, its per-instance files and its run report are
SWE-bench's one layout, read back as a whole by its harness (`tests/run/test_swebench_harness.py`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import docker.errors
import requests

from .. import endings
from ..build import store
from ..data.task import Task
from ..errors import GRADING_KINDS
from ..grading.grader import Grader, GradingReport
from ..importers.swebench import Prediction, Recipe, load_dataset, load_predictions
from ..runtime import engine
from . import ray_jobs
from .ray_jobs import RAY_RETRIES, Backend

SCHEMA_VERSION = 2
"""The `schema_version` SWE-bench writes into its run reports."""
START_TEST_OUTPUT = ">>>>> Start Test Output"
END_TEST_OUTPUT = ">>>>> End Test Output"
TEST_EXIT_CODE = ">>>>> Test Exit Code"
"""SWE-bench's markers in `test_output.txt` (its harness constants of the same names)."""
INFRA_STATUSES = tuple(sorted(status for status in GRADING_KINDS if endings.judge("grading", status=status).ours))
"""Grader statuses that say the environment broke, not the patch: SWE-bench's `infra_failure_ids`. The
grader's own rule (`errors.GRADING_KINDS`), so a report's `infrastructure_failure` and this list agree."""
VERDICT_STATUSES = ("graded", "timeout")
"""Grader statuses whose tests ran to a verdict on the model: resolved or unresolved, written to
`report.json` (a timeout is the code under test's failure, `errors.GRADING_KINDS`)."""
AMBIGUOUS_STATUSES = ("timeout",)
"""Statuses SWE-bench also lists in `ambiguous_failure_ids` (its own `tests_timed_out`), without leaving
their list (a timeout is unresolved here); so is a graded run that wrote no JUnit report."""
LOG_ROOT = Path("logs") / "run_evaluation"

Outcome = Literal["resolved", "unresolved", "empty_patch", "error", "skipped"]


@dataclass
class InstanceResult:
    """What happened to one prediction."""

    instance_id: str
    model: str
    outcome: Outcome
    """resolved / unresolved (tests ran), empty_patch (not run), error (could not decide), skipped (interrupted)."""
    status: str
    """The grader's status, `cached` for a finished instance of an earlier run, or `empty_patch` / `interrupted`."""
    seconds: float = 0.0
    error: str | None = None
    cached: bool = False


@dataclass
class Evaluation:
    """Results of `evaluate`: per-instance outcomes and one run report per model."""

    results: list[InstanceResult]
    reports: dict[str, dict]
    """Model name -> run report (SWE-bench's keys)."""
    report_paths: dict[str, Path]


def model_dir_name(model: str) -> str:
    """SWE-bench's folder name for a model: slashes become double underscores."""
    return model.replace("/", "__")


def instance_dir(report_dir: str | Path, run_id: str, model: str, instance_id: str) -> Path:
    return Path(report_dir) / LOG_ROOT / run_id / model_dir_name(model) / instance_id


def evaluate(
    dataset: str | Path | list[Task],
    predictions: str | Path | list[Prediction],
    run_id: str,
    max_workers: int = 4,
    report_dir: str | Path = ".",
    repo_mirror: str | Path | None = None,
    recipes: dict[str, dict[str, Recipe]] | None = None,
    instance_ids: list[str] | None = None,
    on_result: Callable[[InstanceResult], None] | None = None,
    grader: Grader | None = None,
    max_disk: int | str | None = None,
    *,
    backend: Backend = "thread",
    ray_address: str | None = None,
    ray_retries: int = RAY_RETRIES,
) -> Evaluation:
    """Grade every prediction against its task, `max_workers` at a time, and write SWE-bench-style reports.

    `dataset`: task files, a SWE-bench instances file, or tasks. `predictions`: a predictions
    file, "gold", "empty", or a list. `on_result` is called (from worker threads) per instance.
    `max_disk`: before building, remove the least recently used of swe-env's images until they fit (`EnvConfig.max_disk`).
    `backend="ray"` grades each instance as a Ray task on the cluster at `ray_address` (a local Ray when None),
    `max_workers` at a time; one whose worker or node was lost is graded again elsewhere (up to `ray_retries`
    times), and this process writes every instance's files, once.
    """
    if backend not in ("thread", "ray"):
        raise ValueError(f"backend must be thread or ray, not {backend!r}")
    store.prune_before_building(max_disk)
    if not run_id or "/" in run_id or run_id in (".", ".."):
        raise ValueError(f"run id {run_id!r}: must be a non-empty name without '/'")
    tasks = dataset if isinstance(dataset, list) else load_dataset(dataset, repo_mirror, recipes)
    preds = predictions if isinstance(predictions, list) else load_predictions(predictions, tasks)
    if instance_ids:
        unknown = sorted(set(instance_ids) - {t.id for t in tasks})
        if unknown:
            raise ValueError(f"instance ids not in the dataset: {', '.join(unknown)}")
        tasks = [t for t in tasks if t.id in set(instance_ids)]
    wanted = {t.id for t in tasks}
    preds = [p for p in preds if p.instance_id in wanted]
    by_id = {t.id: t for t in tasks}
    grader = grader or Grader(labels={"evaluation": run_id})
    if "evaluation" not in grader.labels:
        grader.labels["evaluation"] = run_id
    stop = threading.Event()
    results: dict[tuple[str, str], InstanceResult] = {}
    lock = threading.Lock()

    def one(prediction: Prediction) -> InstanceResult:
        if stop.is_set():
            return InstanceResult(prediction.instance_id, prediction.model_name_or_path, "skipped", "interrupted")
        try:
            result = _evaluate_one(grader, by_id[prediction.instance_id], prediction, run_id, Path(report_dir))
        except Exception as exc:  # noqa: BLE001 - one instance's failure (e.g. a full disk) must not end the run
            result = InstanceResult(
                prediction.instance_id, prediction.model_name_or_path, "error", "infra_error", error=f"{type(exc).__name__}: {exc}"
            )
        if stop.is_set() and result.outcome == "error":
            # Its container was removed because of Ctrl-C: not a verdict, so a re-run tries it again.
            result = InstanceResult(result.instance_id, result.model, "skipped", "interrupted", result.seconds)
        with lock:
            results[(result.model, result.instance_id)] = result
        if on_result is not None:
            on_result(result)
        return result

    if backend == "ray":
        try:
            _ray_evaluate(grader, by_id, preds, run_id, Path(report_dir), max_workers, ray_address, ray_retries, results, on_result)
        except BaseException:
            _write_run_reports(tasks, preds, results, run_id, Path(report_dir))
            raise
        return _evaluation(tasks, preds, results, run_id, Path(report_dir))
    pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="swe-env-eval")
    futures: list[Future] = [pool.submit(one, p) for p in preds]
    try:
        pending = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
    except BaseException:
        stop.set()
        for future in futures:
            future.cancel()
        # Again until every grading has ended: a grader may be creating its container at the
        # moment of the first removal (not listed yet), and a removal may fail under load.
        running = {future for future in futures if not future.done()}
        while running:
            _remove_own_graders(run_id)
            _done, running = wait(running, timeout=1.0)
        pool.shutdown(wait=True, cancel_futures=True)
        _write_run_reports(tasks, preds, results, run_id, Path(report_dir))
        raise
    pool.shutdown(wait=True)
    return _evaluation(tasks, preds, results, run_id, Path(report_dir))


def _evaluation(
    tasks: list[Task], preds: list[Prediction], results: dict[tuple[str, str], InstanceResult], run_id: str, report_dir: Path
) -> Evaluation:
    reports, paths = _write_run_reports(tasks, preds, results, run_id, report_dir)
    ordered = [results[(p.model_name_or_path, p.instance_id)] for p in preds if (p.model_name_or_path, p.instance_id) in results]
    return Evaluation(results=ordered, reports=reports, report_paths=paths)


def _ray_evaluate(
    grader: Grader,
    by_id: dict[str, Task],
    preds: list[Prediction],
    run_id: str,
    report_dir: Path,
    workers: int,
    ray_address: str | None,
    retries: int,
    results: dict[tuple[str, str], InstanceResult],
    on_result: Callable[[InstanceResult], None] | None,
) -> None:
    """Grade on Ray what needs grading; every result (and every file) is made here, on the driver."""

    def settle(result: InstanceResult) -> None:
        if (result.model, result.instance_id) in results:
            return  # each instance once, whatever the cluster hands back
        results[(result.model, result.instance_id)] = result
        if on_result is not None:
            on_result(result)

    jobs, by_key = [], {}
    for prediction in preds:
        task = by_id[prediction.instance_id]
        settled = _settled(task, prediction, run_id, report_dir)
        if settled is not None:
            settle(settled)
        else:
            by_key[(prediction.model_name_or_path, task.id)] = prediction
            jobs.append(
                ray_jobs.Job(
                    (prediction.model_name_or_path, task.id),
                    task.id,
                    (ray_jobs.portable_grader(grader), task.id, prediction.model_patch),
                    cpus=task.limits.cpus,
                )
            )

    def done(job: ray_jobs.Job, report: GradingReport, _node: str) -> None:
        model, instance_id = job.key
        if job.key not in results:  # a second answer for an instance writes nothing
            settle(_record(by_id[instance_id], by_key[job.key], report, run_id, report_dir))

    def lost(job: ray_jobs.Job, cause: Exception) -> None:
        model, instance_id = job.key
        settle(InstanceResult(instance_id, model, "error", "infra_error", error=f"{type(cause).__name__}: {cause}"))

    ray_jobs.run_jobs(
        ray_jobs.grade_on_node,
        list(by_id.values()),
        jobs,
        done,
        lost,
        workers=workers,
        ray_address=ray_address,
        images_mode=grader.builder.images,
        retries=retries,
    )


def _evaluate_one(grader: Grader, task: Task, prediction: Prediction, run_id: str, report_dir: Path) -> InstanceResult:
    settled = _settled(task, prediction, run_id, report_dir)
    if settled is not None:
        return settled
    return _record(task, prediction, grader.grade(task, prediction.model_patch), run_id, report_dir)


def _settled(task: Task, prediction: Prediction, run_id: str, report_dir: Path) -> InstanceResult | None:
    """The result of an instance that needs no grading (an empty patch, or a verdict an earlier run wrote), else None."""
    model, patch = prediction.model_name_or_path, prediction.model_patch or ""
    if not patch.strip():
        return InstanceResult(task.id, model, "empty_patch", "empty_patch")
    cached = _read_instance_report(instance_dir(report_dir, run_id, model, task.id) / "report.json", task.id)
    if cached is None:
        return None
    outcome: Outcome = "resolved" if cached.get("resolved") else "unresolved"
    details = cached.get("swe_env")
    error = details.get("error") if isinstance(details, dict) else None
    return InstanceResult(task.id, model, outcome, "cached", error=error if isinstance(error, str) else None, cached=True)


def _record(task: Task, prediction: Prediction, report: GradingReport, run_id: str, report_dir: Path) -> InstanceResult:
    """Write one instance's files from its grading (on the driver, whichever node graded it); `report.json`
    last and only for a verdict, so a re-run skips exactly the instances that have one."""
    model = prediction.model_name_or_path
    folder = instance_dir(report_dir, run_id, model, task.id)
    report_file = folder / "report.json"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patch.diff").write_text(prediction.model_patch or "", encoding="utf-8", errors="surrogateescape")
    (folder / "test_output.txt").write_text(render_test_output(report, task.limits.grading_timeout), encoding="utf-8")
    log = [f"instance {task.id}, model {model}, run {run_id}", *report.log]
    if report.error:
        log.append(f"error: {report.error}")
    (folder / "run_instance.log").write_text("\n".join(log) + "\n", encoding="utf-8")
    if report.status not in VERDICT_STATUSES:
        report_file.unlink(missing_ok=True)
        return InstanceResult(task.id, model, "error", report.status, report.seconds, report.error)
    _write_json(report_file, {task.id: instance_report(report)})
    return InstanceResult(task.id, model, "resolved" if report.resolved else "unresolved", report.status, report.seconds, report.error)


def render_test_output(report: GradingReport, timeout: float) -> str:
    """`test_output.txt` as SWE-bench's harness lays it out, around the test command's output.

    Tests that ran: start marker, output, end marker, `>>>>> Test Exit Code: N` (after the end
    marker, outside the parsed region, as SWE-bench's `record_test_exit_code`). A timeout:
    start marker, output, SWE-bench's `Timeout error` line and no end marker. Tests that
    never ran (patch failed, test patch failed, container died): the output as it is.
    """
    if report.status == "timeout":
        return f"{START_TEST_OUTPUT}\n{report.output}\n\nTimeout error: {timeout:g} seconds exceeded."
    if report.test_exit_code is None:
        return report.output
    output = report.output if not report.output or report.output.endswith("\n") else report.output + "\n"
    return f"{START_TEST_OUTPUT}\n{output}{END_TEST_OUTPUT}\n{TEST_EXIT_CODE}: {report.test_exit_code}\n"


def instance_report(report: GradingReport) -> dict:
    """One instance's entry in `report.json`, in SWE-bench's shape, plus swe-env's details."""
    return {
        "patch_is_None": False,
        "patch_exists": not report.patch_is_empty,
        "patch_successfully_applied": report.patch_applied or report.patch_is_empty,
        "resolved": report.resolved,
        # SWE-bench 5 flags a run whose tests gave no verdict because the environment broke; this file is
        # written for verdicts only (`VERDICT_STATUSES`), so never here (the run report lists ours).
        "infra_failure": False,
        "tests_status": {
            "FAIL_TO_PASS": report.tests_status["FAIL_TO_PASS"].model_dump(),
            "PASS_TO_PASS": report.tests_status["PASS_TO_PASS"].model_dump(),
            "FAIL_TO_FAIL": {"success": [], "failure": []},
            "PASS_TO_FAIL": {"success": [], "failure": []},
        },
        "swe_env": {
            "status": report.status,
            "patch_method": report.patch_method,
            "restored": report.restored,
            "report_source": report.report_source,
            "tampering": report.tampering,
            "test_results": report.test_results,
            "ignored_ids": report.ignored_ids,
            "test_exit_code": report.test_exit_code,
            "error": report.error,
            "seconds": report.seconds,
        },
    }


def _read_instance_report(path: Path, instance_id: str) -> dict | None:
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))[instance_id]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return entry if isinstance(entry, dict) and "resolved" in entry else None


def run_report(tasks: list[Task], predictions: list[Prediction], results: dict[tuple[str, str], InstanceResult], model: str) -> dict:
    """The run report of one model, with SWE-bench's keys and meanings.

    incomplete: no prediction, or not attempted (interrupted); empty_patch: not run;
    completed: tests ran (resolved or unresolved); error: attempted, but no verdict.
    Like SWE-bench 5, the non-resolved ones are also classified, without leaving their list:
    infra_failure (`INFRA_STATUSES`: the environment broke) and ambiguous_failure (a timeout,
    or tests that ran without writing a JUnit report). `failure_reasons`: instance id -> the
    grader's error, one line, for every non-resolved instance that has one (SWE-bench names a
    log signature there, for its classified ids only; ours is the grader's own text).
    """
    mine = {p.instance_id: p for p in predictions if p.model_name_or_path == model}
    ids: dict[str, set[str]] = {key: set() for key in ("completed", "resolved", "unresolved", "error", "empty_patch", "incomplete")}
    statuses, reasons = {}, {}
    infra, ambiguous = set(), set()
    for task in tasks:
        prediction = mine.get(task.id)
        result = results.get((model, task.id))
        if prediction is None:
            ids["incomplete"].add(task.id)
        elif not (prediction.model_patch or "").strip():
            ids["empty_patch"].add(task.id)
        elif result is None:  # a patch, not attempted
            ids["incomplete"].add(task.id)
        elif result.outcome in ("resolved", "unresolved"):
            ids["completed"].add(task.id)
            ids[result.outcome].add(task.id)
        elif result.outcome == "skipped":
            ids["incomplete"].add(task.id)
        else:
            ids["error"].add(task.id)
            statuses[task.id] = result.status + (f": {result.error}" if result.error else "")
        if result is None or result.outcome not in ("unresolved", "error"):
            continue
        if result.status in INFRA_STATUSES:
            infra.add(task.id)
        elif result.status in AMBIGUOUS_STATUSES or (result.outcome == "unresolved" and result.error):
            ambiguous.add(task.id)
        if result.error:
            reasons[task.id] = _one_line(result.error)
    return {
        "total_instances": len(tasks),
        "submitted_instances": len(mine),
        "completed_instances": len(ids["completed"]),
        "resolved_instances": len(ids["resolved"]),
        "unresolved_instances": len(ids["unresolved"]),
        "infra_failure_instances": len(infra),
        "ambiguous_failure_instances": len(ambiguous),
        "empty_patch_instances": len(ids["empty_patch"]),
        "error_instances": len(ids["error"]),
        "completed_ids": sorted(ids["completed"]),
        "incomplete_ids": sorted(ids["incomplete"]),
        "empty_patch_ids": sorted(ids["empty_patch"]),
        "submitted_ids": sorted(mine),
        "resolved_ids": sorted(ids["resolved"]),
        "unresolved_ids": sorted(ids["unresolved"]),
        "infra_failure_ids": sorted(infra),
        "ambiguous_failure_ids": sorted(ambiguous),
        "failure_reasons": dict(sorted(reasons.items())),
        "error_ids": sorted(ids["error"]),
        "schema_version": SCHEMA_VERSION,
        "error_details": statuses,
    }


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _write_run_reports(tasks, predictions, results, run_id: str, report_dir: Path) -> tuple[dict[str, dict], dict[str, Path]]:
    reports, paths = {}, {}
    for model in dict.fromkeys(p.model_name_or_path for p in predictions):
        reports[model] = run_report(tasks, predictions, results, model)
        paths[model] = report_dir / f"{model_dir_name(model)}.{run_id}.json"
        report_dir.mkdir(parents=True, exist_ok=True)
        _write_json(paths[model], reports[model])
    return reports, paths


def _write_json(path: Path, data: dict) -> None:
    # Write then rename: an interrupted write never leaves a half report that a re-run would trust.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(data, indent=4) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _remove_own_graders(run_id: str) -> None:
    """Remove this process's grader containers of this evaluation, so in-flight gradings end now."""
    owner = engine.managed_labels("grader")["swe_env.owner"]
    try:
        engine.collect_garbage(everything=True, labels={"evaluation": run_id, "owner": owner})
    except (docker.errors.DockerException, requests.RequestException, engine.EngineUnavailable):
        return  # best effort: the caller tries again while gradings are still running
