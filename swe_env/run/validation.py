"""Proving tasks by the one validation rule (`grading.rule`): FAIL_TO_PASS fails without the fix and passes
with it, PASS_TO_PASS passes on both sides, no id in both lists, the gold patch applies cleanly, no flaky test.

`validate_tasks` builds each task's image and grades both patches, on a few worker threads;
every outcome becomes an `InstanceValidation` with a verdict and, when the gold patch fails,
its cause in one line. A gold patch that fails says the environment is wrong (a recipe, a
Python version, a flaky or networked test), never that a model failed. `sample_tasks` draws a
sample stratified by repository; `summarize` makes the per-repository table.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Literal

from ..build.images import ImageBuilder, ImageBuildError, image_exists
from ..build.repos import RepoError
from ..data.task import Task
from ..errors import clip
from ..grading import rule
from ..grading.grader import Grader, GradingReport
from . import ray_jobs

Verdict = Literal["valid", "gold_failed", "empty_resolved", "invalid", "flaky", "env_error"]
"""`invalid`: the task breaks `rule.check` otherwise (a FAIL_TO_PASS test that passes before the fix, an id in
both lists); `flaky`: a deciding test changed status between two runs of one side."""

_NETWORK_SIGNS = re.compile(
    r"Temporary failure in name resolution|Name or service not known|Network is unreachable|"
    r"Failed to establish a new connection|ConnectionRefusedError|nodename nor servname|getaddrinfo failed"
)


_COLLECTION_ERRORS = re.compile(r"\d+ errors? during collection")
_FIRST_ERROR = re.compile(r"^E\s+(\w+(?:Error|Exception): .*)$", re.MULTILINE)


@dataclass
class InstanceValidation:
    """What validating one task found."""

    task_id: str
    repo: str
    version: str | None
    verdict: Verdict
    cause: str | None = None
    """For anything but `valid`: why, in one line."""
    python_requested: str | None = None
    python_used: str | None = None
    build_seconds: float = 0.0
    env_cached: bool = False
    """The env layer (Python, pinned packages) was already built, so only the instance layer was."""
    gold: GradingReport | None = None
    empty: GradingReport | None = None
    violations: list[str] = field(default_factory=list)
    """Every breach of the validation rule (`grading.rule.check`), one line each."""
    warnings: list[str] = field(default_factory=list)
    """What the rule notes without refusing (a gold patch that applies only with fuzz)."""

    @property
    def python_differs(self) -> bool:
        """The image's Python is not the one the benchmark used (results may differ)."""
        return self.python_requested is not None and self.python_requested != self.python_used

    @property
    def gold_seconds(self) -> float:
        return self.gold.seconds if self.gold else 0.0


def repo_of(task: Task) -> str:
    """The repository a task belongs to, for grouping: SWE-bench's `owner/name`, else the repo's name."""
    return task.meta.get("repo") or task.repo.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git").removesuffix(".bundle")


def sample_tasks(tasks: list[Task], size: int, seed: int = 0) -> list[Task]:
    """`size` tasks drawn with `seed`, spread over repositories in proportion (each gets at least one)."""
    if size >= len(tasks):
        return list(tasks)
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        groups.setdefault(repo_of(task), []).append(task)
    rng = random.Random(seed)
    names = sorted(groups)
    quota = {name: 1 for name in names} if size >= len(names) else {name: 0 for name in names}
    if size < len(names):
        for name in rng.sample(names, size):
            quota[name] = 1
    left = size - sum(quota.values())
    # The rest in proportion to each repository's size (largest remainders first).
    shares = {name: left * len(groups[name]) / len(tasks) for name in names}
    for name in names:
        quota[name] += int(shares[name])
    for name in sorted(names, key=lambda n: shares[n] - int(shares[n]), reverse=True)[: size - sum(quota.values())]:
        quota[name] += 1
    chosen = []
    for name in names:
        members = sorted(groups[name], key=lambda t: t.id)
        chosen += rng.sample(members, min(quota[name], len(members)))
    return sorted(chosen, key=lambda t: t.id)


def validate_task(task: Task, builder: ImageBuilder, grader: Grader) -> InstanceValidation:
    """Build the task's image, grade the gold and the empty patch and judge them by `rule.check`; never raises
    for the task's faults.

    Each side runs once; when the rule finds a violation both run again, so a test whose status differs
    between the runs is called flaky (and only then)."""
    result = InstanceValidation(
        task_id=task.id,
        repo=repo_of(task),
        version=task.meta.get("version"),
        verdict="valid",
        python_requested=task.meta.get("python_requested"),
        python_used=task.meta.get("python_used"),
    )
    if not task.gold_patch:
        result.verdict, result.cause = "env_error", "the task has no gold patch"
        return result
    started = time.monotonic()
    try:
        result.env_cached = image_exists(builder.env_tag(task.environment, builder.requirements_for(task)))
        image = builder.ensure(task)
    except (ImageBuildError, RepoError) as exc:
        result.verdict, result.cause = "env_error", f"build failure: {_one_line(str(exc))}"
        return result
    except Exception as exc:  # noqa: BLE001 - an engine fault on one instance must not end a long run
        result.verdict, result.cause = "env_error", f"infrastructure failure: {_one_line(f'{type(exc).__name__}: {exc}')}"
        return result
    finally:
        result.build_seconds = round(time.monotonic() - started, 1)
    golds = [grader.grade(task, task.gold_patch, image=image)]
    empties = [grader.grade(task, "", image=image)]
    result.gold, result.empty = golds[0], empties[0]
    judged = _judge(task, golds, empties)
    if judged is not None and not judged.valid:
        golds.append(grader.grade(task, task.gold_patch, image=image))
        empties.append(grader.grade(task, "", image=image))
        judged = _judge(task, golds, empties)
    if judged is not None:
        result.violations, result.warnings = judged.violations, judged.warnings
    _verdict(result, golds, empties, judged)
    return result


def _judge(task: Task, golds: list[GradingReport], empties: list[GradingReport]) -> rule.RuleResult | None:
    """The rule over graded runs; None when a run could not decide (the environment's fault)."""
    if any(report.status not in ("graded", "patch_failed") for report in [*golds, *empties]):
        return None
    if golds[0].status == "patch_failed":
        return rule.check([], [], [], [], gold_method=None)
    # Ids no report can produce (SWE-bench's fragments) were dropped from the verdicts; the rule drops them too.
    ignored = set(golds[0].ignored_ids) | set(empties[0].ignored_ids)
    return rule.check(
        [t for t in task.tests.fail_to_pass if t not in ignored],
        [t for t in task.tests.pass_to_pass if t not in ignored],
        [report.test_results for report in empties],
        [report.test_results for report in golds],
        gold_method=golds[0].patch_method,
    )


def _verdict(result: InstanceValidation, golds: list[GradingReport], empties: list[GradingReport], judged: rule.RuleResult | None) -> None:
    """The verdict and its one-line cause, from the first runs (and the rule's finding over all of them)."""
    gold, empty = golds[0], empties[0]
    if not gold.resolved and gold.status != "graded":
        result.verdict, result.cause = "env_error", gold_failure_cause(gold)
    elif empty.status != "graded":
        result.verdict, result.cause = "env_error", f"empty patch: {empty.status}: {_one_line(empty.error or '')}"
    elif judged is None:  # the first runs broke the rule and a second one could not decide: never "valid"
        failed = next(r for r in [*golds, *empties] if r.status not in ("graded", "patch_failed"))
        result.verdict = "env_error"
        result.cause = f"the second run of each side could not decide: {failed.status}: {_one_line(failed.error or '')}"
    elif judged.valid:
        result.verdict = "valid"
    elif judged.flaky:
        result.verdict = "flaky"
        result.cause = f"{len(judged.flaky)} deciding test(s) gave different statuses in two runs: {judged.flaky[0]}"
    elif not gold.resolved:
        result.verdict, result.cause = "gold_failed", gold_failure_cause(gold)
        if result.python_differs:
            result.cause += f" (on Python {result.python_used}; the benchmark uses {result.python_requested})"
    elif empty.resolved:
        result.verdict, result.cause = "empty_resolved", "the empty patch resolves the task: its FAIL_TO_PASS tests pass before any fix"
    else:
        result.verdict, result.cause = "invalid", judged.violations[0]


def gold_failure_cause(report: GradingReport) -> str:
    """Why a gold patch did not resolve its task, in one line."""
    if report.status != "graded":
        return f"{report.status}: {_one_line(report.error or 'no detail')}"
    if report.report_source == "none":
        return f"no test report: {_one_line(report.error or '')}; output ends: {_one_line(report.log_tail[-200:])}"
    failed = {
        **{t: "FAIL_TO_PASS" for t in report.tests_status["FAIL_TO_PASS"].failure},
        **{t: "PASS_TO_PASS" for t in report.tests_status["PASS_TO_PASS"].failure},
    }
    if not failed:
        return "unresolved with no failing listed test"
    network = " (the output shows a network error: a test that needs the network?)" if _NETWORK_SIGNS.search(report.output) else ""
    collection = _COLLECTION_ERRORS.search(report.output)
    if collection:
        error = _FIRST_ERROR.search(report.output)
        network += f"; {collection.group(0)}" + (f" (first: {_one_line(error.group(1))[:160]})" if error else "")
    first = next(iter(failed))
    statuses = {report.test_results.get(t, "missing") for t in failed}
    more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
    if statuses == {"skipped"}:
        network += "; all skipped here: a package or resource the benchmark's image had is missing?"
    # A listed id the run never reported is most often misspelt: name the nearest id the run did report.
    near = report.nearest_ids.get(first)
    hint = f" (did you mean {near!r}?)" if near else ""
    return f"{len(failed)} listed test(s) not passing ({'/'.join(sorted(statuses))}): {failed[first]} {first}{hint}{more}{network}"


def validate_tasks(
    tasks: list[Task],
    workers: int = 1,
    builder: ImageBuilder | None = None,
    grader: Grader | None = None,
    on_result: Callable[[InstanceValidation], None] | None = None,
    *,
    backend: ray_jobs.Backend = "thread",
    ray_address: str | None = None,
    ray_retries: int = ray_jobs.RAY_RETRIES,
) -> list[InstanceValidation]:
    """Validate every task, `workers` at a time; results in the order of `tasks`.

    `backend="ray"` validates each task as a Ray task on the cluster at `ray_address` (a local Ray when None);
    a task whose worker or node was lost is validated again elsewhere (up to `ray_retries` times) and
    reported once; one lost every time is an `env_error` naming the infrastructure failure."""
    if backend not in ("thread", "ray"):
        raise ValueError(f"backend must be thread or ray, not {backend!r}")
    builder = builder or ImageBuilder()
    grader = grader or Grader()
    results: dict[str, InstanceValidation] = {}
    lock = threading.Lock()

    def settle(outcome: InstanceValidation) -> None:
        with lock:
            if outcome.task_id in results:
                return  # each task once, whatever a backend hands back
            results[outcome.task_id] = outcome
        if on_result:
            on_result(outcome)

    if backend == "ray":
        portable = ray_jobs.portable_grader(grader, builder)

        def lost(job: ray_jobs.Job, cause: Exception) -> None:
            task = next(task for task in tasks if task.id == job.key)
            settle(
                InstanceValidation(
                    task_id=task.id,
                    repo=repo_of(task),
                    version=task.meta.get("version"),
                    verdict="env_error",
                    cause=f"infrastructure failure: {_one_line(f'{type(cause).__name__}: {cause}')}",
                )
            )

        ray_jobs.run_jobs(
            validate_on_node,
            tasks,
            [ray_jobs.Job(task.id, task.id, (portable, task.id), cpus=task.limits.cpus) for task in tasks],
            lambda _job, outcome, _node: settle(outcome),
            lost,
            workers=workers,
            ray_address=ray_address,
            images_mode=builder.images,
            retries=ray_retries,
        )
        return [results[task.id] for task in tasks]
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="validate") as pool:
        futures = {pool.submit(validate_task, task, builder, grader): task for task in tasks}
        try:
            for future in as_completed(futures):
                settle(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [results[task.id] for task in tasks]


def validate_on_node(tasks: list[Task], grader: dict, task_id: str) -> InstanceValidation:
    """One task's validation as a Ray job (`ray_jobs.run_jobs`), with a builder and grader made on this node."""
    made = ray_jobs.grader_from(grader)
    return validate_task(next(task for task in tasks if task.id == task_id), made.builder, made)


@dataclass
class RepoSummary:
    """One row of the per-repository table."""

    repo: str
    instances: int = 0
    gold_resolved: int = 0
    empty_unresolved: int = 0
    env_errors: int = 0
    other_python: int = 0
    """Instances whose image has another Python than the benchmark's."""
    build_seconds: list[float] = field(default_factory=list)
    test_seconds: list[float] = field(default_factory=list)


def summarize(results: list[InstanceValidation]) -> list[RepoSummary]:
    """Counts per repository, sorted by name."""
    rows: dict[str, RepoSummary] = {}
    for result in results:
        row = rows.setdefault(result.repo, RepoSummary(result.repo))
        row.instances += 1
        row.gold_resolved += bool(result.gold and result.gold.resolved)
        row.empty_unresolved += bool(result.empty and result.empty.status == "graded" and not result.empty.resolved)
        row.env_errors += result.verdict == "env_error"
        row.other_python += result.python_differs
        row.build_seconds.append(result.build_seconds)
        if result.gold:
            row.test_seconds.append(result.gold.seconds)
    return [rows[name] for name in sorted(rows)]


def _one_line(text: str) -> str:
    return clip(text, 300)  # between words: a cut cause must not read as a different word
