"""Grading a patch in a fresh container: the hidden tests decide, the agent never sees them.

In a new container from the task's instance image (`Grader.grade`, the steps in `Grader._grade_in`):

1. apply the patch (git apply, then git apply --3way, then patch --fuzz; the tree is reset
   between tries: `prepare.apply_patch`);
2. restore to base_commit every changed file that could change how tests are collected or
   reported: the files the test patch touches, the task's `protected` globs (test files,
   conftest.py, sitecustomize.py, pytest.ini ...), and `protected_config` files
   (pyproject.toml, setup.cfg, tox.ini) whose pytest section changed, the runner's own
   files (tox.ini when tox runs the tests, Django's runtests.py, sympy's bin/test ...) and what
   the installed runner was seen to read (`facts`): the pure decision is `protection.paths_to_restore`;
3. apply the hidden test patch (`prepare.restore_and_apply_test_patch`);
4. run the test command as written, its results sealed and streamed to the host, under the
   grader's disk watch (`testrun.run_tests`), then check the disk once more (milliseconds): a run
   over the limit is the code under test's doing, graded with nothing it wrote believed;
5. decide every listed test from those results (`testrun.read_results`, `report.record_statuses`:
   pytest by its node id or by the id SWE-bench's log parsers would have cut from pytest's summary,
   `testlogs`): a test that is not in them failed; ids no report can produce are dropped;
6. the reward (`rewards.compute_reward`), withheld under the strict policy when the patch looks like
   tampering (`suspicion`) or the run was seen tampering (the seal's flags).

Every outcome is a report with a status; nothing here raises out of `Grader.grade`. This module is the
orchestration and the verdicts only it makes (timeouts, the disk limit, the container's failures).
"""

from __future__ import annotations

import functools
import time
import uuid
from typing import cast

from .. import endings
from ..build.images import ImageBuilder
from ..data.task import Task
from ..runtime import engine
from ..runtime.pool import WarmPool
from ..runtime.sandbox import DEADLINE_GRACE, MAX_DIFF_BYTES, Sandbox, SandboxError, SandboxSpec
from ..runtime.streams import FramedRun
from . import diffs, inflation, prepare, runner_probe, runners, seal, suspicion, testlogs, testrun
from .facts import RunnerFactsCache

# The names code imported from this module before it was split (the public surface is `Grader` and `GradingReport`).
from .protection import matches, pytest_section_changed  # noqa: F401
from .rewards import (
    RewardMode,
    compute_reward,
    patch_similarity,  # noqa: F401
    unresolved_reward,
)
from .verdict import (  # noqa: F401
    MAX_ERROR_CHARS,
    OUTPUT_LIMIT,
    GradingReport,
    ReportSource,
    Status,
    TestGroup,
    bound_report,
    expected_failures_among,
    note,
    record_statuses,
)

MAX_PATCH_BYTES = MAX_DIFF_BYTES
"""A patch larger than this is refused unread (patch_failed, the model's): the largest diff an episode can submit."""
_TTL_MARGIN = 600.0
"""Seconds of a kept container's time-to-live left over after a grading's longest wait (`Grader.warm_pool`)."""


def refusal(task: Task, patch: str) -> str | None:
    """Why a patch is refused unapplied (the model's `patch_failed`), or None: it is larger than `MAX_PATCH_BYTES`,
    or its binary hunks would write more than the task's disk limit allows (`inflation.refusal`). Decided on the
    host before any container starts, for every patch `Grader.grade` takes (the env's submit among them)."""
    # Characters first: a string longer than the limit is too large in bytes without encoding it.
    if len(patch) > MAX_PATCH_BYTES or len(patch.encode("utf-8", errors="surrogateescape")) > MAX_PATCH_BYTES:
        return f"the patch is larger than {MAX_PATCH_BYTES} bytes, more than the grader takes"
    return inflation.refusal(patch, task.limits.disk)


def _longest_grading(task: Task) -> float:
    """The longest a grading's container is needed, and a margin: the preparation counts too (the patch's content can
    hold every way of applying it to its timeout), then the test run and its deadlines."""
    return (
        task.limits.grading_timeout
        + 2 * DEADLINE_GRACE
        + _TTL_MARGIN
        + len(prepare.APPLY_METHODS) * (prepare.APPLY_TIMEOUT + 5)
        + prepare.STEP_TIMEOUT
    )


def grading_ttl(task: Task) -> int:
    """The time to live of a grading's container: the engine's default, or more when the grading may take longer (its
    TTL ending mid-grading would be judged ours: red team rt6b, T1)."""
    return max(engine.DEFAULT_TTL_SECONDS, int(_longest_grading(task)) + 1)


class Grader:
    """Grades patches for tasks, each in a fresh container that is always removed."""

    def __init__(
        self,
        reward_mode: RewardMode = "binary",
        builder: ImageBuilder | None = None,
        labels: dict[str, str] | None = None,
        reward_policy: suspicion.RewardPolicy = "lenient",
        warm_pool: int = 0,
    ):
        self.reward_mode = reward_mode
        self.reward_policy: suspicion.RewardPolicy = reward_policy
        """lenient: suspicious patches (`GradingReport.suspicious`) are only reported; strict: they score as unresolved."""
        self.builder = builder or ImageBuilder()
        self.labels = dict(labels or {})
        """Extra `swe_env.<key>` labels on grader containers (evaluate finds its own by them)."""
        self._facts = RunnerFactsCache()
        """What the installed runner reads (`runner_probe`), asked once per image."""
        self.warm_pool = warm_pool
        """Grading containers kept started ahead per instance image (and labels), each with its private shell
        open (0: every grading starts its own). A grading takes a ready one, so the container's start (~0.3 s on
        a quiet engine, seconds on a loaded one) is off its path, and hands it back to be removed in the
        background. A kept container is as fresh as a new one: nothing but its start and that shell ran in it.
        For loops that grade the same tasks again (RL); `close()` removes what is kept."""
        self._pool = WarmPool(warm_pool, opener=prepare.open_container) if warm_pool else None

    def close(self) -> None:
        """Remove the grading containers kept started ahead (`warm_pool`) and wait for those being removed;
        the grader can be used again."""
        if self._pool is not None:
            self._pool.close()

    def grade(self, task: Task, patch: str | None, image: str | None = None) -> GradingReport:
        """Grade `patch` (a unified diff; empty or None for no change) against the task's hidden tests.

        Never raises (MemoryError included): a patch refused unapplied (`refusal`: larger than MAX_PATCH_BYTES,
        or inflating past the disk limit) is the model's failure (patch_failed), any other failure of the grader itself an infra_error; every field
        derived from the patch or the run is bounded (`bound_report`)."""
        started = time.monotonic()
        patch = patch or ""
        try:
            why = refusal(task, patch)
            if why is not None:
                report = GradingReport(task_id=task.id, status="patch_failed", error=why)
                report.reward = unresolved_reward(self.reward_mode)
                note(report, started, "patch refused: " + why)
            else:
                report = self._grade(task, patch, image, started)
        except Exception as exc:  # noqa: BLE001 - MemoryError too: past the size check, the grader's own failure
            del patch  # what may have exhausted memory; the report below needs little
            report = GradingReport(
                task_id=task.id,
                status="infra_error",
                infrastructure_failure=True,
                error=f"the grader failed: {type(exc).__name__}: {str(exc)[:MAX_ERROR_CHARS]}",
            )
            note(report, started, report.error or "")
        report.seconds = round(time.monotonic() - started, 3)
        return bound_report(report)

    def _grade(self, task: Task, text: str, image: str | None, started: float) -> GradingReport:
        patch = diffs.Patch.read(text)  # read once: applying, restoring, suspicion and similarity share it
        report = GradingReport(task_id=task.id, status="graded", patch_is_empty=not text.strip())
        try:
            image = image or self.builder.ensure(task)
            note(report, started, f"image {image}")
            facts = self.runner_facts(task, image, functools.partial(note, report, started))
            # As root, as SWE-bench's harness runs the tests (the agent's user matters only in its episode).
            spec = SandboxSpec.for_task(task, image, "grader", labels=self.labels, user=None, ttl_seconds=grading_ttl(task))
            box = self._container(spec, task)
            try:
                note(report, started, f"container {box.name} started")
                try:
                    self._grade_in(box, task, patch, report, started, facts)
                except prepare.StepFailed as exc:
                    self._step_failed(exc, spec, task, report, started)
                except SandboxError as exc:
                    ending = endings.judge("grading", exc, evidence=functools.partial(box.life.evidence, programs=False))
                    if ending.ours:  # stopped from outside, or no record says otherwise
                        raise
                    # The engine's record says the code under test stopped the container (or its
                    # processes): the model's failure, not an infrastructure one, and nothing it
                    # wrote is believed.
                    report.status = "graded"
                    report.error = ending.cause
                    report.report_source, report.test_exit_code = "none", None
                    record_statuses(report, task.tests.fail_to_pass, task.tests.pass_to_pass, None, "")
            finally:
                if self._pool is not None:
                    self._pool.release(box)  # removed in the background
                else:
                    box.close()
        except SandboxError as exc:
            report.status, report.infrastructure_failure, report.error = "infra_error", True, str(exc)
        except Exception as exc:  # noqa: BLE001 - an engine fault must become a labelled report, not a crash
            report.status, report.infrastructure_failure = "infra_error", True
            report.error = f"{type(exc).__name__}: {exc}"
        if report.status != "graded":
            report.resolved = False
        report.infrastructure_failure = endings.judge("grading", status=report.status).ours  # errors.GRADING_KINDS
        decided = not report.infrastructure_failure
        if decided and not report.patch_is_empty:
            report.suspicious = suspicion.flags(patch, restored_anyway=set(report.restored).__contains__)
        report.reward = compute_reward(report, self.reward_mode, patch, task.gold_patch) if decided else 0.0
        if decided and (report.suspicious or report.tampering) and self.reward_policy == "strict":
            report.reward = unresolved_reward(self.reward_mode)
            note(
                report,
                started,
                f"reward withheld (strict policy): {len(report.suspicious)} suspicious line(s), {len(report.tampering)} tampering flag(s)",
            )
        report.seconds = round(time.monotonic() - started, 3)
        note(report, started, f"status {report.status}, resolved {report.resolved}" + (f": {report.error}" if report.error else ""))
        return report

    def _container(self, spec: SandboxSpec, task: Task) -> Sandbox:
        """A started grading container of `spec`: a new one, or one the warm pool kept with enough of its
        time-to-live left for this grading (an older one is removed and a new one started)."""
        if self._pool is None:
            return Sandbox.of(spec).start()
        box = self._pool.acquire(spec)
        if box.life.started_at is None or time.monotonic() - box.life.started_at > spec.ttl_seconds - _longest_grading(task):
            self._pool.release(box)
            return prepare.open_container(spec)
        return box

    def _grade_in(
        self,
        box: Sandbox,
        task: Task,
        patch: diffs.Patch,
        report: GradingReport,
        started: float,
        facts: runner_probe.RunnerFacts = runner_probe.RunnerFacts(),
    ) -> None:
        """Apply the patch; restore protected files and apply the test patch; run the tests; read the results.

        Each step returns what it found (and adds to the log); the report is written here only.
        """
        # A folder name no one can know in advance: a hard-coded path cannot pre-write a report.
        workspace = f"{prepare.GRADER_DIR}/{uuid.uuid4().hex}"
        runner = runners.runner_named(task.tests.runner)
        log = functools.partial(note, report, started)
        test_patch = diffs.Patch.read(task.tests.test_patch)  # read once: the restore step and the ids' files
        written: list[str] = []  # files an application method wrote that the patch text may not show
        if not report.patch_is_empty:
            method, error, written = prepare.apply_patch(box, patch, workspace, task.limits.disk)
            if method is None:
                report.status, report.error = "patch_failed", error
                return
            report.patch_applied, report.patch_method = True, method
            log(f"patch applied with {method}")

        plan, in_base = prepare.restore_plan(box, task, runner, [*patch.paths, *written], facts, test_patch)
        report.restored = plan.reported
        test_patch_error = prepare.restore_and_apply_test_patch(box, task, plan, workspace)
        if test_patch_error:
            raise prepare.StepFailed(test_patch_error, test_patch=True)
        if report.restored:
            log(f"restored to base_commit: {', '.join(report.restored)}")
        log("test patch applied" if task.tests.test_patch.strip() else "no test patch")

        key = seal.new_key()
        patched = sorted(set([*patch.paths, *written]) - set(report.restored))
        run, elapsed, watch = testrun.run_tests(
            box, task, runner, workspace, key, patched, prepare.changed_lines(box, task, workspace, patch, set(patched) - set(written)), facts
        )
        report.test_run_seconds = round(elapsed, 3)
        timeout = task.limits.grading_timeout
        if run.overran:
            # Still running at the host's deadline although the engine answered: the code under test
            # stopped its own processes (`kill -STOP -1` stops the in-container `timeout` too) or hung.
            log(
                f"test command still running at the host's deadline after {elapsed:.2f} s; "
                "every process in the container was stopped through the engine"
            )
            self._timed_out(
                report,
                task,
                run,
                timeout,
                "it was still running at the host's deadline "
                f"({timeout:g} s plus {DEADLINE_GRACE:g} s), so the host stopped every process in the container",
            )
            return
        log(f"test command exited {run.exit_code} after {elapsed:.2f} s")
        late = run.stdout.late + run.stderr.late
        if late:
            log(f"{late} bytes written after the test command ended, by processes it left behind, were dropped")
        if not box.alive():
            raise SandboxError(f"the grader's container {box.name} died during the test run")
        over = watch.reckon()
        report.test_exit_code = None if watch.over else run.exit_code  # stopped by the watcher: not the tests' status
        report.output = run.stdout.data.decode("utf-8", errors="replace")[-OUTPUT_LIMIT:]
        if run.stdout.cut:
            log(f"{run.stdout.cut} bytes from the middle of the test output were dropped")
        report.log_tail = report.output[-4000:]
        if over:
            # The code under test wrote it (the grader's own files are a few KB): the model's failure,
            # and nothing the run wrote is believed, as when it stops the container.
            stopped = "the run was stopped" if watch.over else "seen after the run"
            log(f"disk over the limit ({stopped}): {over}")
            report.error = f"the code under test went over the disk limit during the test run ({over}); {stopped}, and nothing it wrote is believed"
            report.report_source = "none"
            record_statuses(report, task.tests.fail_to_pass, task.tests.pass_to_pass, None, "")
            return
        if run.exit_code in (124, 137) and elapsed >= timeout - 1:
            self._timed_out(report, task, run, timeout, "its timeout stopped it")
            return

        results, report.report_source, results_error = testrun.read_results(box, task, runner, workspace, run.stderr, key, report, run.exit_code)
        report.error = report.error or results_error
        if len(patched) > seal.MAX_WATCHED_FILES:  # the hooks watch that many; code in the others would go unjudged
            report.tampering = [
                *report.tampering,
                f"the patch changes {len(patched)} files, more than the sealed hook "
                f"watches ({seal.MAX_WATCHED_FILES}): what code in the others does is not judged",
            ]
        output = report.output if report.report_source == "log" else ""
        # The files an id may name: base_commit's and the test patch's (never the agent's tree).
        known_files = testlogs.known_paths([*in_base, *test_patch.paths])
        record_statuses(report, task.tests.fail_to_pass, task.tests.pass_to_pass, results, output, known_files)
        expected = [
            test_id
            for test_id in expected_failures_among(task.tests.fail_to_pass, results, known_files)
            if report.test_results.get(test_id) == testlogs.PASSED
        ]
        if expected:
            report.tampering = [
                *report.tampering,
                f"{len(expected)} FAIL_TO_PASS test(s) passed only as expected "
                f"failures (xfail), which the patch's code can raise or mark unattributed: " + ", ".join(expected[:5])[:300],
            ]
        if report.ignored_ids:
            log(
                f"ignored {len(report.ignored_ids)} listed ids no JUnit report can produce: "
                + ", ".join(report.ignored_ids[:10])
                + (" ..." if len(report.ignored_ids) > 10 else "")
            )

    def _step_failed(self, exc: prepare.StepFailed, spec: SandboxSpec, task: Task, report: GradingReport, started: float) -> None:
        """One of the grader's own steps before the tests ran and failed (the test patch did not apply, the restore
        or a listing failed): whose failure it is, by whether a fresh container of the same image does the task's
        steps now (asked only when a patch reached the tree; red team rt6b, A3). Ours: `test_patch_failed` for the
        test patch, else the SandboxError goes on (`infra_error`)."""
        clean = None
        if not report.patch_is_empty:
            clean = prepare.clean_base_takes_test_patch(spec, task)
            answer = {True: "works", False: "fails too", None: "no answer"}[clean]
            note(report, started, f"{exc}; the task's clean base, asked in a fresh container: {answer}")
        ending = endings.judge("grading", exc, evidence=endings.Evidence(alive=True, clean_base=clean))
        if not ending.ours:
            report.status, report.error = cast(Status, ending.name), ending.cause
        elif exc.test_patch:
            report.status, report.error = "test_patch_failed", str(exc)
        else:
            raise exc

    def _timed_out(self, report: GradingReport, task: Task, run: FramedRun, timeout: float, how: str) -> None:
        """The test run did not end within the grading timeout: the code under test hung or ran too long,
        which the patch can cause (`errors.GRADING_KINDS`: the model's failure, not ours). Nothing an
        unfinished run wrote is believed: every listed test is missing."""
        report.status = "timeout"
        report.error = (
            f"the test run exceeded the grading timeout of {timeout:g} s ({how}): the code under test "
            "hung or ran too long, which counts as a failure, and nothing it wrote is believed"
        )
        report.test_exit_code = None  # the harness's kill, not the tests' own status
        report.report_source = "none"
        report.output = run.stdout.data.decode("utf-8", errors="replace")[-OUTPUT_LIMIT:]
        report.log_tail = report.output[-4000:]
        record_statuses(report, task.tests.fail_to_pass, task.tests.pass_to_pass, None, "")

    def runner_facts(self, task: Task, image: str, note=lambda _message: None) -> runner_probe.RunnerFacts:
        """What the installed runner reads (`runner_probe`), asked once per image, command and workdir in
        a fresh container from `image` (no patch), then kept in memory and in a file of the host cache
        (`facts.RunnerFactsCache`). Empty when the task says not to ask (`tests.ask_runner`)."""
        return self._facts.ask(task, image, self.labels, note)
