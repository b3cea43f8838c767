"""Grading a patch in a fresh container: the hidden tests decide, the agent never sees them.

In a new container from the task's instance image: apply the patch (git apply, then
git apply --3way, then patch --fuzz), restore the files the test patch touches and the
protected files to base_commit, apply the test patch, run the test command with a
JUnit XML report written outside the repository, and decide every listed test.
"""

from __future__ import annotations

import fnmatch
import shlex
import time
from typing import Literal

from pydantic import BaseModel, Field

from . import diffs, testlogs
from .images import ImageBuilder
from .sandbox import Sandbox, SandboxError
from .task import Task

GRADER_DIR = "/run/swe-env-grader"
"""Where the grader keeps patches and the JUnit report: outside the repository."""
JUNIT_PATH = f"{GRADER_DIR}/junit.xml"

RewardMode = Literal["binary", "signed", "fraction"]
Status = Literal["graded", "patch_failed", "test_patch_failed", "timeout", "infra_error"]

_APPLY_METHODS = [
    ("git apply", "git apply --whitespace=nowarn {patch}"),
    ("git apply --3way", "git apply --3way --whitespace=nowarn {patch}"),
    ("patch --fuzz=5", "patch --batch --fuzz=5 -p1 -i {patch}"),
]


class TestGroup(BaseModel):
    success: list[str] = []
    failure: list[str] = []


class GradingReport(BaseModel):
    """The grader's verdict on one patch; keys follow SWE-bench's report where they overlap."""

    task_id: str
    status: Status
    """graded, or why grading could not decide (patch_failed is the model's; the others are not)."""
    patch_is_empty: bool = False
    patch_applied: bool = False
    patch_method: str | None = None
    """Which application method worked."""
    resolved: bool = False
    """All FAIL_TO_PASS and PASS_TO_PASS tests passed."""
    reward: float = 0.0
    tests_status: dict[str, TestGroup] = Field(default_factory=lambda: {"FAIL_TO_PASS": TestGroup(), "PASS_TO_PASS": TestGroup()})
    test_results: dict[str, str] = {}
    """Status of each listed test: passed, failed, error, skipped or missing."""
    report_source: Literal["junit", "log", "none"] = "none"
    infrastructure_failure: bool = False
    """True when the verdict says nothing about the model (container died, timeout of the harness, bad task)."""
    error: str | None = None
    log_tail: str = ""
    seconds: float = 0.0


def compute_reward(report: GradingReport, mode: RewardMode) -> float:
    """Reward for RL from a report: binary (default), signed (+1/-1) or fraction of listed tests."""
    if mode == "binary":
        return 1.0 if report.resolved else 0.0
    if mode == "signed":
        return 1.0 if report.resolved else -1.0
    total = len(report.test_results)
    if total == 0 or report.tests_status["PASS_TO_PASS"].failure:
        return 0.0
    return sum(status == testlogs.PASSED for status in report.test_results.values()) / total


class Grader:
    """Grades patches for tasks, each in a fresh container that is always removed."""

    def __init__(self, reward_mode: RewardMode = "binary", builder: ImageBuilder | None = None):
        self.reward_mode = reward_mode
        self.builder = builder or ImageBuilder()

    def grade(self, task: Task, patch: str, image: str | None = None) -> GradingReport:
        started = time.monotonic()
        report = GradingReport(task_id=task.id, status="graded", patch_is_empty=not patch.strip())
        try:
            image = image or self.builder.ensure(task)
            with Sandbox(image, task.limits, task.environment.workdir, task.environment.env, kind="grader",
                         labels={"task": task.id}) as box:
                self._grade_in(box, task, patch, report)
        except SandboxError as exc:
            report.status, report.infrastructure_failure, report.error = "infra_error", True, str(exc)
        except Exception as exc:  # noqa: BLE001 - an engine fault must become a labelled report, not a crash
            report.status, report.infrastructure_failure = "infra_error", True
            report.error = f"{type(exc).__name__}: {exc}"
        report.reward = compute_reward(report, self.reward_mode) if report.status in ("graded", "patch_failed") else 0.0
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def _grade_in(self, box: Sandbox, task: Task, patch: str, report: GradingReport) -> None:
        box.exec(["mkdir", "-p", GRADER_DIR])
        if not report.patch_is_empty:
            box.write_file(f"{GRADER_DIR}/model.patch", patch.encode("utf-8", errors="surrogateescape"))
            method, error = self._apply(box, f"{GRADER_DIR}/model.patch")
            if method is None:
                report.status, report.error = "patch_failed", error
                return
            report.patch_applied, report.patch_method = True, method

        self._restore_protected(box, task)

        if task.tests.test_patch.strip():
            box.write_file(f"{GRADER_DIR}/test.patch", task.tests.test_patch.encode())
            applied = box.exec(f"git apply --whitespace=nowarn {GRADER_DIR}/test.patch")
            if applied.exit_code != 0:
                report.status, report.infrastructure_failure = "test_patch_failed", True
                report.error = f"the task's test patch does not apply: {applied.output.strip()[-300:]}"
                return

        env = {"PYTEST_ADDOPTS": f"--junitxml={JUNIT_PATH} -o junit_family=xunit1 -p no:cacheprovider"}
        run_started = time.monotonic()
        run = box.exec(["bash", "-c", task.tests.command], timeout=task.limits.grading_timeout, env=env)
        report.log_tail = run.output[-4000:]
        if run.exit_code in (124, 137) and time.monotonic() - run_started >= task.limits.grading_timeout:
            report.status, report.infrastructure_failure = "timeout", True
            report.error = f"the test run exceeded {task.limits.grading_timeout:g} s"
        junit = None
        try:
            xml_bytes, _ = box.read_file(JUNIT_PATH)
            junit = testlogs.parse_junit(xml_bytes.decode("utf-8", errors="replace"))
            report.report_source = "junit"
        except (FileNotFoundError, testlogs.ReportError):
            report.report_source = "log"
        listed = [*task.tests.fail_to_pass, *task.tests.pass_to_pass]
        report.test_results = testlogs.statuses_for(listed, junit, run.output)
        for group, ids in (("FAIL_TO_PASS", task.tests.fail_to_pass), ("PASS_TO_PASS", task.tests.pass_to_pass)):
            for test_id in ids:
                passed = report.test_results[test_id] == testlogs.PASSED
                (report.tests_status[group].success if passed else report.tests_status[group].failure).append(test_id)
        report.resolved = report.status == "graded" and all(
            status == testlogs.PASSED for status in report.test_results.values()
        )

    def _apply(self, box: Sandbox, patch_path: str) -> tuple[str | None, str]:
        errors = []
        for name, template in _APPLY_METHODS:
            result = box.exec(template.format(patch=shlex.quote(patch_path)))
            if result.exit_code == 0:
                return name, ""
            errors.append(f"{name}: {result.output.strip()[-300:]}")
            # Leave the tree as the image had it before the next method tries.
            box.exec("git reset --hard -q && git clean -fdq")
        return None, "the patch does not apply: " + " | ".join(errors)

    def _restore_protected(self, box: Sandbox, task: Task) -> None:
        """Put the test patch's files and protected files back to their base_commit state."""
        touched = diffs.touched_paths(task.tests.test_patch) if task.tests.test_patch else []
        listing = box.exec("git ls-files -co --exclude-standard -z")
        present = [p for p in listing.stdout.split("\0") if p]
        protected = [p for p in present if _matches(p, task.tests.protected)]
        paths = list(dict.fromkeys([*touched, *protected]))
        if not paths:
            return
        in_base = box.exec(["git", "ls-tree", "-r", "--name-only", "-z", task.base_commit, "--", *paths])
        tracked = {p for p in in_base.stdout.split("\0") if p}
        script = []
        if tracked:
            script.append("git checkout -q " + shlex.quote(task.base_commit) + " -- " + " ".join(map(shlex.quote, sorted(tracked))))
        untracked = [p for p in paths if p not in tracked]
        if untracked:
            script.append("rm -rf -- " + " ".join(map(shlex.quote, untracked)))
        result = box.exec(" && ".join(script))
        if result.exit_code != 0:
            raise SandboxError(f"restoring protected files failed: {result.output.strip()[-300:]}")


def _matches(path: str, patterns: list[str]) -> bool:
    # fnmatch's "*" crosses "/", so "**/conftest.py" matches at any depth and "conftest.py" only at the root.
    return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)
