"""Grading a patch in a fresh container: the hidden tests decide, the agent never sees them.

In a new container from the task's instance image:

1. apply the patch (git apply, then git apply --3way, then patch --fuzz; the tree is reset
   between tries);
2. restore to base_commit every changed file that could change how tests are collected or
   reported: the files the test patch touches, the task's `protected` globs (test files,
   conftest.py, sitecustomize.py, pytest.ini ...), and `protected_config` files
   (pyproject.toml, setup.cfg, tox.ini) whose pytest section changed, and the runner's own
   files (tox.ini when tox runs the tests, Django's runtests.py, sympy's bin/test ...): the
   pure decision is `protection.paths_to_restore`;
3. apply the hidden test patch;
4. run the test command as written (`Sandbox.exec_to_end`): its output is one stream to the
   host, and its runner (`runners`) writes machine-readable results to the other, through a
   path that is that stream (pytest a JUnit XML report, Django and sympy the grader's
   recorder), so they leave the container as they are written; when the command ends every
   process left in the container is stopped, and nothing the run leaves in the container is
   read but Harbor's reward file (through the engine, after that stop); meanwhile a watcher
   checks the container's disk every DISK_CHECK_SECONDS (`Sandbox.check_disk`: the writable
   layer's size, the engine's host files mounted in it, plus 16 KiB per file the layer holds,
   measured by this host with the container frozen, or the engine's figures for a remote
   engine) and, past `limits.disk`, stops every process in it, and the disk is checked once
   more after the run (milliseconds): a run over the limit is the code under test's doing,
   graded with nothing it wrote believed;
5. decide every listed test from those results (pytest: by its node id or by the id
   SWE-bench's log parsers would have cut from pytest's summary, `testlogs`): a test that is
   not in them failed; ids no report can produce (progress-line fragments in some datasets)
   are dropped.

Every outcome is a report with a status; nothing here raises out of `Grader.grade`.

Why one module of this size: the grading's steps and the report they fill; the pure
decisions already live in protection, runners, testlogs and suspicion.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import itertools
import json
import re
import shlex
import threading
import time
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from . import diffs, native, protection, runner_probe, runners, seal, suspicion, testlogs
from ..build.images import ImageBuilder
from ..build.repos import cache_dir
from .protection import GIT as _GIT
from .protection import matches, pytest_section_changed  # noqa: F401 - public here too, as before
from ..config import RewardMode  # noqa: F401 - defined with the env's options, imported from here too
from .. import endings
from ..errors import GradingStatus, clip
from ..runtime.disk import DISK_CHECK_SECONDS, DiskWatch
from ..runtime.sandbox import DEADLINE_GRACE, MAX_DIFF_BYTES, Sandbox, SandboxError
from ..runtime.streams import Framed, FramedRun
from ..data.task import Task

PROBE_OUTPUT = 8 * 1024 * 1024
"""Bytes of each answer of the runner probe kept (`Grader.runner_facts`); a longer answer is not used."""
GRADER_DIR = "/run/swe-env-grader"
"""Where the grader keeps patches, output and the runner's results: outside the repository."""
OUTPUT_LIMIT = 2_000_000
"""Characters of test output kept (the tail) for `GradingReport.output`."""
MAX_PATCH_BYTES = MAX_DIFF_BYTES
"""A patch larger than this is refused unread (patch_failed, the model's): the largest diff an episode can submit."""
MAX_ERROR_CHARS = 4000
"""Characters of `GradingReport.error` kept (an exception's message may carry a command's whole output)."""
MAX_LOG_LINES = 400
MAX_LOG_LINE_CHARS = 2000
"""`GradingReport.log`: lines kept (the first and the last halves), and characters of each."""
MAX_LISTED = 2000
"""Entries of a list derived from the patch (`restored`) kept; one more says how many were left out."""
_RESULTS_FD = 3
"""The test run's descriptor for its results stream (the exec's stderr; the output goes to its stdout)."""
_RESULTS_MARK = "\0results\0"
"""Stands for the results path in a runner's environment values (the path is known to the shell only)."""

Status = GradingStatus
ReportSource = Literal["sealed", "recorder", "reward", "log", "none"]

_RESTORE_FAILED = 97
_APPLY_METHODS = [
    ("git apply", f"{_GIT} apply --whitespace=nowarn {{patch}}"),
    ("git apply --3way", f"{_GIT} apply --3way --whitespace=nowarn {{patch}}"),
    ("patch --fuzz=5", "patch --batch --fuzz=5 -p1 -i {patch}"),
]


class TestGroup(BaseModel):
    success: list[str] = []
    failure: list[str] = []


class GradingReport(BaseModel):
    """The grader's verdict on one patch; keys follow SWE-bench's report where they overlap."""

    task_id: str
    status: Status
    """graded, or why not: patch_failed and timeout are the model's failures (scored as unresolved),
    test_patch_failed and infra_error ours (`errors.GRADING_KINDS`)."""
    patch_is_empty: bool = False
    patch_applied: bool = False
    patch_method: str | None = None
    """Which application method worked: git apply, git apply --3way or patch --fuzz=5."""
    restored: list[str] = []
    """Changed files the grader put back to base_commit before the test patch (protected paths)."""
    suspicious: list[str] = []
    """What in the patch looks like tampering with the test machinery at run time, one `path:line: why: line`
    each (`suspicion.flags`; the restored files are not looked at). Reported always; with the grader's
    `reward_policy="strict"` a flagged patch gets the unresolved reward (`resolved` still says what the tests said)."""
    resolved: bool = False
    """All FAIL_TO_PASS and PASS_TO_PASS tests passed."""
    reward: float = 0.0
    tests_status: dict[str, TestGroup] = Field(default_factory=lambda: {"FAIL_TO_PASS": TestGroup(), "PASS_TO_PASS": TestGroup()})
    test_results: dict[str, str] = {}
    """Status of each listed test: passed, failed, error, skipped or missing."""
    nearest_ids: dict[str, str] = {}
    """For a listed test the run did not report (missing): the closest id it did report, when one is close
    (a misspelt id in the task file: `validate` names it)."""
    report_source: ReportSource = "none"
    """Where the statuses came from: the grader's plugin's sealed records (pytest), the grader's sealed recorder
    (django, sympy), a Harbor verifier's reward file (harbor), the log (`log_fallback`); `none`: no results that
    can be believed were written (none, a broken chain, no end record, a Python without audit hooks), so every
    listed test is missing."""
    tampering: list[str] = []
    """What the code under test was seen doing to the test machinery during the run (the sealed hook's flags:
    frame and `gc` walks, ctypes, tracers, signals, /proc memory, changed runner internals, a skip or xfail raised
    from a patched file ...) and bytes on the results stream the hook did not write; at most `seal.MAX_FLAGS`.
    Recorded by the run itself, not read from the patch; with `reward_policy="strict"` any gets the unresolved reward."""
    seal: Literal["native", "python"] | None = None
    """Which hook sealed the results (sealed runners): `native`, the C audit hook (`grading/reporter/_seal.c`) that
    holds the key in C memory only; `python`, the weaker pure-Python hook (no C compiler on the host, or a Python the
    shared object does not load in: the grading log says why), whose key a signal handler or finalizer running
    inside it can take; None when no sealed record was read."""
    ignored_ids: list[str] = []
    """Listed ids dropped from the verdict (in neither success nor failure, not in `test_results`): ids
    no JUnit report can produce (`testlogs.unproducible`: no `::` and not ending in `.py`, e.g. `[100%]`,
    fragments of pytest's progress lines in some SWE-bench PASS_TO_PASS lists, or naming a file that
    base_commit and the test patch do not have) that match nothing in the report. Never all of
    FAIL_TO_PASS: then they count as missing."""
    test_run_seconds: float | None = None
    """Wall-clock seconds of the test command alone (the rest of `seconds` is the grader's own work); None when it did not run."""
    test_exit_code: int | None = None
    """The test command's exit status; None when it did not run or did not finish (timeout, container died)."""
    infrastructure_failure: bool = False
    """True when the verdict says nothing about the model (the engine failed, the container was stopped
    from outside, the task's test patch does not apply): `errors.grading_is_infrastructure(status)`."""
    error: str | None = None
    log_tail: str = ""
    seconds: float = 0.0
    output: str = Field(default="", exclude=True)
    """The test command's output (tail of OUTPUT_LIMIT characters); left out of dumps and trajectories."""
    log: list[str] = Field(default_factory=list, exclude=True)
    """What the grader did, one line per step with its time; left out of dumps."""


_NEAREST_IDS = 20
"""Missing ids a report looks up a near match for (each lookup reads every reported id)."""


def bound_report(report: GradingReport) -> GradingReport:
    """`report` with every field derived from the patch or the run cut to its bound (in place; returned).

    `suspicious` is bounded where it is made (`suspicion.MAX_FLAGS`), `output` and `log_tail` where the
    run's output is read; `test_results`, `tests_status` and `ignored_ids` hold only the task's listed
    ids, whatever the run wrote."""
    if report.error is not None and len(report.error) > MAX_ERROR_CHARS:
        report.error = report.error[:MAX_ERROR_CHARS] + f"... [{len(report.error) - MAX_ERROR_CHARS} characters cut]"
    report.restored = _bounded_list(report.restored, MAX_LISTED)
    report.suspicious = _bounded_list(report.suspicious, suspicion.MAX_FLAGS + 1)
    log = [line if len(line) <= MAX_LOG_LINE_CHARS else line[:MAX_LOG_LINE_CHARS] + "..." for line in report.log]
    if len(log) > MAX_LOG_LINES:
        half = MAX_LOG_LINES // 2
        log = [*log[:half], f"... {len(log) - 2 * half} lines cut ...", *log[-half:]]
    report.log = log
    return report


def _bounded_list(items: list[str], limit: int) -> list[str]:
    if len(items) <= limit:
        return items
    return [*items[:limit], f"... and {len(items) - limit} more"]


def record_statuses(report: GradingReport, fail_to_pass: list[str], pass_to_pass: list[str],
                    junit: testlogs.JUnitResults | testlogs.RecordedResults | None, log: str, known_files: frozenset[str] | None = None) -> None:
    """Decide every listed test from the JUnit report (or the log): test_results, tests_status, ignored_ids, resolved.

    Matching is `testlogs.statuses_for`'s (exact node id, then SWE-bench's cut id, then its
    path alias); only `passed` (an xfail included) counts as a success. Ids no report can
    produce are dropped, except when that would drop every FAIL_TO_PASS id.
    """
    report.test_results, report.ignored_ids = {}, []
    for group, ids in (("FAIL_TO_PASS", fail_to_pass), ("PASS_TO_PASS", pass_to_pass)):
        statuses = testlogs.statuses_for(ids, junit, log, allow_all_ignored=group != "FAIL_TO_PASS",
                                         known_files=known_files)
        for test_id in ids:
            status = statuses[test_id]
            if status == testlogs.IGNORED:
                if test_id not in report.ignored_ids:
                    report.ignored_ids.append(test_id)
                continue
            report.test_results[test_id] = status
            if status == testlogs.MISSING and junit is not None and len(report.nearest_ids) < _NEAREST_IDS:
                near = difflib.get_close_matches(test_id, list(junit.by_id), n=1, cutoff=0.8)
                if near:
                    report.nearest_ids[test_id] = near[0]
            passed = status == testlogs.PASSED
            (report.tests_status[group].success if passed else report.tests_status[group].failure).append(test_id)
    report.resolved = report.status == "graded" and all(
        status == testlogs.PASSED for status in report.test_results.values()
    )


def compute_reward(report: GradingReport, mode: RewardMode, patch: str | diffs.Patch | None = None,
                   gold_patch: str | None = None) -> float:
    """Reward for RL from a report (and, for the similarity modes, the agent's and the gold patch).

    - `binary` (default): 1.0 if resolved, else 0.0.
    - `signed`: 1.0 if resolved, else -1.0.
    - `fraction`: the fraction of listed tests that passed; 0.0 if a PASS_TO_PASS test failed.
    - `similarity`: `patch_similarity(patch, gold_patch)`, in [0, 1], whatever the tests say
      (SWE-RL's reward without its format penalty).
    - `execution_then_similarity`: 1.0 if resolved, else
      `SIMILARITY_WEIGHT * patch_similarity(patch, gold_patch)`, in [0, 0.5]: execution
      decides first and similarity only ranks the unresolved, so every resolved patch
      outranks every unresolved one by at least 0.5, even an unresolved patch identical to
      the gold one (CWM's SWE RL instead gives a fixed bonus past a similarity threshold).

    The similarity modes score 0.0 without a gold patch. The grader gives 0.0 in every mode
    when grading could not decide (`errors.grading_is_infrastructure`: test_patch_failed, infra_error).
    """
    if mode == "binary":
        return 1.0 if report.resolved else 0.0
    if mode == "signed":
        return 1.0 if report.resolved else -1.0
    if mode == "similarity":
        return patch_similarity(patch, gold_patch)
    if mode == "execution_then_similarity":
        return 1.0 if report.resolved else SIMILARITY_WEIGHT * patch_similarity(patch, gold_patch)
    total = len(report.test_results)
    if total == 0 or report.tests_status["PASS_TO_PASS"].failure:
        return 0.0
    return sum(status == testlogs.PASSED for status in report.test_results.values()) / total


# ---------------------------------------------------------------- patch similarity (reward modes)

SIMILARITY_WEIGHT = 0.5
"""`execution_then_similarity`: an unresolved patch's reward is this times its similarity."""
SIMILARITY_MAX_CHARS = 200_000
"""Characters of one file's change that are compared; each side is cut to this many."""
SIMILARITY_BUDGET = 30_000_000
"""Element comparisons one sequence match may make (1-3 s of pure Python) before a cheaper measure is used instead."""


def patch_similarity(patch: str | diffs.Patch | None, gold_patch: str | None) -> float:
    """How close a patch is to the gold patch, in [0, 1]: SWE-RL's per-file sequence-match ratio.

    Both patches are split per file (git or plain unified diffs); a file's change is its hunks
    (the `@@` lines and the lines under them, stripped), after a `rename from A to B` line
    for a rename; header lines (index, modes) are left out and binary files ignored. The
    score is the mean, over the union of the files either patch changes, of
    `difflib.SequenceMatcher(None, agent_change, gold_change, autojunk=False).ratio()`; a
    file only one patch changes scores 0, and so does a patch pair with no change at all.

    Cost: each change is cut to SIMILARITY_MAX_CHARS characters, and a match that would make
    more than SIMILARITY_BUDGET comparisons (counted before each step of difflib's search) is
    replaced by the same ratio over lines, and that, past the same budget, by the ratio of
    the two multisets of lines (`quick_ratio` over lines, linear). A size limit alone does
    not bound the character match: on repetitive text it is worse than quadratic (about 50 s
    for 2,000 characters of "+\\n" against "+x\\n" on a busy 2-core machine), while code
    changes up to about 8,000 characters a side stay within the budget and get the exact
    character ratio. The budget counts comparisons, not time, so the reward of a patch pair
    never depends on the machine's load.
    """
    agent = patch.derived("similarity", lambda read: _file_changes(read.text)) if isinstance(patch, diffs.Patch) \
        else _file_changes(patch or "")
    gold = _file_changes(gold_patch or "")
    paths = agent.keys() | gold.keys()
    if not paths:
        return 0.0
    return sum(_change_ratio(agent.get(p, ""), gold.get(p, "")) for p in paths) / len(paths)


def _file_changes(patch: str) -> dict[str, str]:
    """Path (the new one; the old one for a deletion) -> that file's change, as `patch_similarity` compares it."""
    sections: list[list[str]] = []
    old_left = new_left = 0
    has_hunk = False
    for line in patch.splitlines():
        if old_left > 0 or new_left > 0:
            tag = line[:1]
            if tag in (" ", "-", "+", "\\") or not line:  # an empty line: a context line whose space was lost
                old_left -= tag in (" ", "-", "")
                new_left -= tag in (" ", "+", "")
                sections[-1].append(line)
                continue
            old_left = new_left = 0  # a hunk shorter than its header says: this line is not part of it
        if line.startswith("diff --git ") or (line.startswith("--- ") and (not sections or has_hunk)):
            sections.append([line])
            has_hunk = False
        elif sections:
            sections[-1].append(line)
            if match := _SIMILARITY_HUNK.match(line):
                old_left, new_left, has_hunk = int(match[1] or 1), int(match[2] or 1), True
    changes: dict[str, str] = {}
    for section in sections:
        try:
            files = diffs.parse("\n".join(section) + "\n")
        except diffs.DiffError:
            continue
        if len(files) != 1 or files[0].binary or not files[0].path:
            continue
        file = files[0]
        first_hunk = next((n for n, l in enumerate(section) if l.startswith("@@")), len(section))
        renamed = file.old_path and file.new_path and file.old_path != file.new_path
        text = (f"rename from {file.old_path} to {file.new_path}\n" if renamed else "") + "\n".join(section[first_hunk:])
        changes[file.path] = (changes[file.path] + "\n" + text.strip()) if file.path in changes else text.strip()
    return changes


_SIMILARITY_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


class _OverBudget(Exception):
    pass


class _BudgetedMatcher(difflib.SequenceMatcher):
    """SequenceMatcher (autojunk off) that raises _OverBudget before its comparisons pass a budget."""

    def __init__(self, a, b, budget: int):
        super().__init__(None, a, b, autojunk=False)
        self.budget = budget
        # Scanning a[i] in find_longest_match visits every position of b that holds the same element.
        # b2j is made by set_seq2 (typeshed does not declare it).
        self.cost = list(itertools.accumulate((len(self.b2j.get(x, ())) for x in a), initial=0))  # type: ignore[attr-defined]

    def find_longest_match(self, alo=0, ahi=None, blo=0, bhi=None):
        ahi = len(self.a) if ahi is None else ahi
        self.budget -= self.cost[ahi] - self.cost[alo]
        if self.budget < 0:
            raise _OverBudget
        return super().find_longest_match(alo, ahi, blo, bhi)


def _change_ratio(agent: str, gold: str) -> float:
    if not agent or not gold:
        return 0.0
    agent, gold = agent[:SIMILARITY_MAX_CHARS], gold[:SIMILARITY_MAX_CHARS]
    for a, b in ((agent, gold), (agent.splitlines(), gold.splitlines())):
        try:
            return _BudgetedMatcher(a, b, SIMILARITY_BUDGET).ratio()
        except _OverBudget:
            continue
    return difflib.SequenceMatcher(None, agent.splitlines(), gold.splitlines(), autojunk=False).quick_ratio()


class Grader:
    """Grades patches for tasks, each in a fresh container that is always removed."""

    def __init__(self, reward_mode: RewardMode = "binary", builder: ImageBuilder | None = None,
                 labels: dict[str, str] | None = None, reward_policy: suspicion.RewardPolicy = "lenient"):
        self.reward_mode = reward_mode
        self.reward_policy: suspicion.RewardPolicy = reward_policy
        """lenient: suspicious patches (`GradingReport.suspicious`) are only reported; strict: they score as unresolved."""
        self.builder = builder or ImageBuilder()
        self.labels = dict(labels or {})
        """Extra `swe_env.<key>` labels on grader containers (evaluate finds its own by them)."""
        self._facts: dict[str, runner_probe.RunnerFacts] = {}
        """Probe key (`_facts_key`) -> what the installed runner reads (`runner_probe`), asked once per image."""
        self._facts_locks: dict[str, threading.Lock] = {}
        self._facts_lock = threading.Lock()

    def grade(self, task: Task, patch: str | None, image: str | None = None) -> GradingReport:
        """Grade `patch` (a unified diff; empty or None for no change) against the task's hidden tests.

        Never raises (MemoryError included): a patch larger than MAX_PATCH_BYTES is the model's
        failure (patch_failed), any other failure of the grader itself an infra_error; every field
        derived from the patch or the run is bounded (`bound_report`)."""
        started = time.monotonic()
        patch = patch or ""
        try:
            # Characters first: a string longer than the limit is too large in bytes without encoding it.
            if len(patch) > MAX_PATCH_BYTES or len(patch.encode("utf-8", errors="surrogateescape")) > MAX_PATCH_BYTES:
                why = f"the patch is larger than {MAX_PATCH_BYTES} bytes, more than the grader takes"
                report = GradingReport(task_id=task.id, status="patch_failed", error=why)
                report.reward = -1.0 if self.reward_mode == "signed" else 0.0  # the unresolved reward, as compute_reward's
                _note(report, started, "patch refused: " + why)
            else:
                report = self._grade(task, patch, image, started)
        except Exception as exc:  # noqa: BLE001 - MemoryError too: past the size check, the grader's own failure
            del patch  # what may have exhausted memory; the report below needs little
            report = GradingReport(task_id=task.id, status="infra_error", infrastructure_failure=True,
                                   error=f"the grader failed: {type(exc).__name__}: {str(exc)[:MAX_ERROR_CHARS]}")
            _note(report, started, report.error or "")
        report.seconds = round(time.monotonic() - started, 3)
        return bound_report(report)

    def _grade(self, task: Task, text: str, image: str | None, started: float) -> GradingReport:
        patch = diffs.Patch.read(text)  # read once: applying, restoring, suspicion and similarity share it
        report = GradingReport(task_id=task.id, status="graded", patch_is_empty=not text.strip())
        try:
            image = image or self.builder.ensure(task)
            _note(report, started, f"image {image}")
            facts = self.runner_facts(task, image, functools.partial(_note, report, started))
            # As root, as SWE-bench's harness runs the tests (the agent's user matters only in its episode).
            with Sandbox.for_task(task, image, "grader", labels=self.labels, user=None) as box:
                _note(report, started, f"container {box.name} started")
                try:
                    self._grade_in(box, task, patch, report, started, facts)
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
            report.reward = -1.0 if self.reward_mode == "signed" else 0.0
            _note(report, started, f"reward withheld (strict policy): {len(report.suspicious)} suspicious line(s), "
                                   f"{len(report.tampering)} tampering flag(s)")
        report.seconds = round(time.monotonic() - started, 3)
        _note(report, started, f"status {report.status}, resolved {report.resolved}" + (f": {report.error}" if report.error else ""))
        return report

    def _grade_in(self, box: Sandbox, task: Task, patch: diffs.Patch, report: GradingReport, started: float,
                  facts: runner_probe.RunnerFacts = runner_probe.RunnerFacts()) -> None:
        """Apply the patch; restore protected files and apply the test patch; run the tests; read the results.

        Each step returns what it found (and adds to the log); the report is written here only.
        """
        # A folder name no one can know in advance: a hard-coded path cannot pre-write a report.
        workspace = f"{GRADER_DIR}/{uuid.uuid4().hex}"
        runner = runners.runner_named(task.tests.runner)
        note = functools.partial(_note, report, started)
        written: list[str] = []  # files an application method wrote that the patch text may not show
        if not report.patch_is_empty:
            method, error, written = self._apply_patch(box, patch, workspace)
            if method is None:
                report.status, report.error = "patch_failed", error
                return
            report.patch_applied, report.patch_method = True, method
            note(f"patch applied with {method}")

        plan, in_base = self._restore_plan(box, task, runner, [*patch.paths, *written], facts)
        report.restored = plan.reported
        test_patch_error = self._restore_and_apply_test_patch(box, task, plan.script, workspace)
        if test_patch_error:
            report.status, report.infrastructure_failure, report.error = "test_patch_failed", True, test_patch_error
            return
        if report.restored:
            note(f"restored to base_commit: {', '.join(report.restored)}")
        note("test patch applied" if task.tests.test_patch.strip() else "no test patch")

        key = seal.new_key()
        patched = sorted(set([*patch.paths, *written]) - set(report.restored))
        run, elapsed, watch = self._run_tests(box, task, runner, workspace, key, patched,
                                              _changed_lines(patch, patched, written))
        report.test_run_seconds = round(elapsed, 3)
        timeout = task.limits.grading_timeout
        if run.overran:
            # Still running at the host's deadline although the engine answered: the code under test
            # stopped its own processes (`kill -STOP -1` stops the in-container `timeout` too) or hung.
            note(f"test command still running at the host's deadline after {elapsed:.2f} s; "
                 "every process in the container was stopped through the engine")
            self._timed_out(report, task, run, timeout, "it was still running at the host's deadline "
                            f"({timeout:g} s plus {DEADLINE_GRACE:g} s), so the host stopped every process in the container")
            return
        note(f"test command exited {run.exit_code} after {elapsed:.2f} s")
        late = run.stdout.late + run.stderr.late
        if late:
            note(f"{late} bytes written after the test command ended, by processes it left behind, were dropped")
        if not box.alive():
            raise SandboxError(f"the grader's container {box.name} died during the test run")
        over = watch.reckon()
        report.test_exit_code = None if watch.over else run.exit_code  # stopped by the watcher: not the tests' status
        report.output = run.stdout.data.decode("utf-8", errors="replace")[-OUTPUT_LIMIT:]
        if run.stdout.cut:
            note(f"{run.stdout.cut} bytes from the middle of the test output were dropped")
        report.log_tail = report.output[-4000:]
        if over:
            # The code under test wrote it (the grader's own files are a few KB): the model's failure,
            # and nothing the run wrote is believed, as when it stops the container.
            stopped = "the run was stopped" if watch.over else "seen after the run"
            note(f"disk over the limit ({stopped}): {over}")
            report.error = (f"the code under test went over the disk limit during the test run ({over}); "
                            f"{stopped}, and nothing it wrote is believed")
            report.report_source = "none"
            record_statuses(report, task.tests.fail_to_pass, task.tests.pass_to_pass, None, "")
            return
        if run.exit_code in (124, 137) and elapsed >= timeout - 1:
            self._timed_out(report, task, run, timeout, "its timeout stopped it")
            return

        results, report.report_source, results_error = self._results(box, task, runner, workspace, run.stderr, key,
                                                                     report, run.exit_code)
        report.error = report.error or results_error
        if len(patched) > seal.MAX_WATCHED_FILES:  # the hooks watch that many; code in the others would go unjudged
            report.tampering = [*report.tampering, f"the patch changes {len(patched)} files, more than the sealed hook "
                                f"watches ({seal.MAX_WATCHED_FILES}): what code in the others does is not judged"]
        log = report.output if report.report_source == "log" else ""
        # The files an id may name: base_commit's and the test patch's (never the agent's tree).
        known_files = testlogs.known_paths([*in_base, *_paths_of(task.tests.test_patch)])
        record_statuses(report, task.tests.fail_to_pass, task.tests.pass_to_pass, results, log, known_files)
        if report.ignored_ids:
            note(f"ignored {len(report.ignored_ids)} listed ids no JUnit report can produce: "
                 + ", ".join(report.ignored_ids[:10]) + (" ..." if len(report.ignored_ids) > 10 else ""))

    def _timed_out(self, report: GradingReport, task: Task, run: FramedRun, timeout: float, how: str) -> None:
        """The test run did not end within the grading timeout: the code under test hung or ran too long,
        which the patch can cause (`errors.GRADING_KINDS`: the model's failure, not ours). Nothing an
        unfinished run wrote is believed: every listed test is missing."""
        report.status = "timeout"
        report.error = (f"the test run exceeded the grading timeout of {timeout:g} s ({how}): the code under test "
                        "hung or ran too long, which counts as a failure, and nothing it wrote is believed")
        report.test_exit_code = None  # the harness's kill, not the tests' own status
        report.report_source = "none"
        report.output = run.stdout.data.decode("utf-8", errors="replace")[-OUTPUT_LIMIT:]
        report.log_tail = report.output[-4000:]
        record_statuses(report, task.tests.fail_to_pass, task.tests.pass_to_pass, None, "")

    def _apply_patch(self, box: Sandbox, patch: diffs.Patch, workspace: str) -> tuple[str | None, str, list[str]]:
        """Write the patch into the workspace and apply it (`_apply`'s answer), unless it is refused: (None, why, [])."""
        patch_path = f"{workspace}/model.patch"
        box.write_file(patch_path, patch.text.encode("utf-8", errors="surrogateescape"))
        # What the patch changes is git's reading of it; ours must cover it, or the restore step
        # could miss a file git writes (ours also names a rename's old path, which git's list leaves out).
        ours = patch.paths
        git_paths = self._paths_git_reads(box, patch_path)
        if git_paths is not None and set(git_paths) - set(ours):
            return None, ("git and swe-env read this patch differently (git: "
                          f"{', '.join(sorted(git_paths))[:300]}; swe-env: {', '.join(sorted(ours))[:300]}); it is refused"), []
        unsafe = [path for path in [*ours, *(git_paths or [])] if _unsafe_path(path)]
        if unsafe:
            return None, f"the patch writes inside .git/ or outside the repository ({unsafe[0]}), which is not allowed", []
        return self._apply(box, patch_path, patch, workspace)

    def _restore_and_apply_test_patch(self, box: Sandbox, task: Task, restore: str, workspace: str) -> str | None:
        """Run the restore script, then apply the hidden test patch: None, or why the test patch does not apply.

        Both share one exec (each exec is a round trip to the engine); a restore that fails is a SandboxError.
        """
        script = [f"{{ {restore}; }} || exit {_RESTORE_FAILED}"] if restore else []
        if task.tests.test_patch.strip():
            box.write_file(f"{workspace}/test.patch", task.tests.test_patch.encode())
            script.append(f"{_GIT} apply --whitespace=nowarn {workspace}/test.patch")
        if not script:
            return None
        applied = box.exec("\n".join(script))
        if applied.exit_code == _RESTORE_FAILED:
            raise SandboxError(f"restoring protected files failed: {clip(applied.output, keep='tail')}")
        if applied.exit_code != 0:
            return f"the task's test patch does not apply: {clip(applied.output, keep='tail')}"
        return None

    def _run_tests(self, box: Sandbox, task: Task, runner: runners.Runner, workspace: str,
                   key: bytes, patched: list[str], changed_lines: dict[str, list[tuple[int, int]]] | None = None,
                   ) -> tuple[FramedRun, float, DiskWatch]:
        """Run the test command as written (`Sandbox.exec_to_end`: once it has ended, nothing it
        started runs on) under a `runtime.disk.DiskWatch`: the run, its seconds and the watch (what it found).

        Its output (stdout and stderr) is the run's first stream; the sealed hook writes its records
        to the second, through `/proc/<this shell>/fd/3`: a path, so it reaches pytest under tox
        too, which closes inherited descriptors; the command itself does not inherit the descriptor.
        The key waits at an unguessable path in the workspace; the hook reads and unlinks it."""
        for path, data in runner.files(workspace).items():
            box.write_file(path, data)
        key_path = f"{workspace}/{uuid.uuid4().hex}.key"
        workdir = task.environment.workdir.rstrip("/")
        box.write_file(key_path, seal.key_file(key, [f"{workdir}/{path}" for path in patched],
                                               runner.runner_is_repo(patched),
                                               {f"{workdir}/{path}": ranges for path, ranges in (changed_lines or {}).items()}))
        results = f"/proc/$$/fd/{_RESULTS_FD}"
        exports = "".join(f"export {name}={_with_results(value, results)}\n"
                          for name, value in runner.environment(_RESULTS_MARK, key_path, workspace).items())
        prelude = runner.prelude(workspace)
        # The runner's settings go through the environment so the task's command stays as written.
        script = (f"mkdir -p {shlex.quote(workspace)} && exec {_RESULTS_FD}>&2 2>&1 </dev/null\n" + exports
                  + (prelude + "\n" if prelude else "") + "(\n" + task.tests.command + f"\n) {_RESULTS_FD}>&-")
        run_started = time.monotonic()
        with DiskWatch(box.disk, DISK_CHECK_SECONDS) as watch:
            run = box.exec_to_end(["/bin/bash", "-c", script], timeout=task.limits.grading_timeout,
                                  max_stdout=OUTPUT_LIMIT, max_stderr=runners.RESULTS_LIMIT)
        return run, time.monotonic() - run_started, watch

    def _results(self, box: Sandbox, task: Task, runner: runners.Runner, workspace: str, stream: Framed, key: bytes,
                 report: GradingReport, exit_code: int) -> tuple[testlogs.JUnitResults | testlogs.RecordedResults | None, ReportSource, str | None]:
        """The runner's results (from the run's sealed results stream, or the files of a runner that
        writes its own, read through the engine), where the statuses come from
        (`GradingReport.report_source`), and why none were read; the stream's tamper flags go to
        `report.tampering`."""
        try:
            if runner.streams_results:
                if not stream.complete or stream.cut:  # a cut stream is not believed (nor parsed)
                    raise runners.ResultsError(f"the results were larger than {runners.RESULTS_LIMIT} bytes"
                                               if stream.cut else "the results stream did not end with the run")
                sealed = seal.read(stream.data, key, runner.name)
                report.tampering, report.seal = sealed.flags, sealed.seal
                if sealed.seal == "python":  # never silently: the log says why the native seal was not used
                    built = native.shared_object()
                    why = "; ".join(sealed.notes) or built.reason or "the start-up module did not load it"
                    report.log.append(f"sealed by the weaker pure-Python hook, not the native one: {why}")
                if sealed.results is None:
                    raise runners.ResultsError(sealed.error or "no sealed results")
                if exit_code > 128:  # an abort or a kill after the end record: an abnormal end is never believed
                    raise runners.ResultsError(f"the test command was ended by signal {exit_code - 128}")
                return sealed.results, runner.source, None
            else:
                found = _read_results(box, runner.results_paths(workspace))
            return runner.read_results(found), runner.source, None
        except (FileNotFoundError, IsADirectoryError, runners.ResultsError) as exc:
            if task.tests.log_fallback:
                return None, "log", None
            # Without results nothing is believed: the output is the agent's code talking.
            detail = str(exc) if isinstance(exc, runners.ResultsError) else type(exc).__name__
            return None, "none", f"no readable {runner.results_label} was written ({detail})"
        except OSError as exc:  # a link or a device where the file should be: put there by the code under test
            return None, "none", f"no readable {runner.results_label} was written ({exc})"

    def _paths_git_reads(self, box: Sandbox, patch_path: str) -> list[str] | None:
        """Every path git's own reading of the patch names (old and new), or None when git cannot read it."""
        result = box.exec(f"{_GIT} apply --numstat -z {shlex.quote(patch_path)}", idempotent=True)
        if result.exit_code != 0:
            return None
        entries, paths = result.stdout.split("\0"), []
        index = 0
        while index < len(entries):
            fields = entries[index].split("\t", 2)
            if len(fields) == 3 and fields[2]:
                paths.append(fields[2])
            elif len(fields) == 3:  # a rename or copy: the old and new names follow as entries of their own
                paths.extend(entries[index + 1:index + 3])
                index += 2
            index += 1
        return [path for path in dict.fromkeys(paths) if path]

    def _apply(self, box: Sandbox, patch_path: str, patch: diffs.Patch, workspace: str) -> tuple[str | None, str, list[str]]:
        """Apply with the first method that works: (its name, "", files it wrote) or (None, why, [])."""
        created = patch.created
        reset = f"{_GIT} reset --hard -q && {_GIT} clean -fdq"
        if created:  # files a failed try created may be ignored by git, which `clean` leaves alone
            reset += " && rm -rf -- " + " ".join(map(shlex.quote, created))
        marker = shlex.quote(f"{workspace}/before-patch")
        errors = []
        for name, template in _APPLY_METHODS:
            git_method = name.startswith("git")
            if not git_method:  # GNU patch reads names its own way: see afterwards what it wrote
                _checked(box.exec(f"mkdir -p {shlex.quote(workspace)} && touch {marker} && sleep 0.01"),
                         "marking the time before the patch")
            result = box.exec(template.format(patch=shlex.quote(patch_path)))
            if result.exit_code == 0 and git_method:
                return name, "", []
            if result.exit_code == 0:
                written = box.exec(f"find . -path ./.git -prune -o \\( -type f -o -type l \\) -newer {marker} -print0; "
                                   f"printf '\\0--\\0'; find .git -newer {marker} -print -quit", idempotent=True)
                _checked(written, "listing what the patch wrote")
                tree, _, in_git = written.stdout.partition("\0--\0")
                if not in_git.strip():
                    return name, "", [path.removeprefix("./") for path in tree.split("\0") if path]
                failure = "it wrote inside .git/"
            else:
                failure = clip(result.output, keep="tail")
            errors.append(f"{name}: {failure}")
            # Every method starts from the tree the image had: a half-applied try leaves nothing behind.
            _checked(box.exec(reset), "resetting the tree after a failed patch method")
        return None, "the patch does not apply: " + " | ".join(errors), []

    def _restore_plan(self, box: Sandbox, task: Task, runner: runners.Runner, named: list[str],
                      facts: runner_probe.RunnerFacts) -> tuple[protection.Restore, set[str]]:
        """What goes back to base_commit (`protection.paths_to_restore`) and base_commit's files.

        Changed files are the ones the patch names (git reads the same ones, or the patch was
        refused), the ones GNU patch wrote when it applied the patch (both in `named`), and the
        ones git sees changed. HEAD is base_commit in a grader's container.
        """
        # One exec for both listings: status entries are never empty, so the first empty entry separates them.
        # The command's own `-c FILE` and `-p NAME` are what the runner reads too, wherever they point.
        named_files, named_plugins = runner_probe.named_in_command(task.tests.command, task.environment.workdir)
        if not task.tests.ask_runner:
            named_files, named_plugins = [], frozenset()
        listing = box.exec(f"{_GIT} status --porcelain=v1 -z --untracked-files=all --no-renames && printf '\\0' && "
                           "git ls-tree -r --name-only -z HEAD", idempotent=True)
        _checked(listing, "listing changed and tracked files")
        entries = listing.stdout.split("\0")
        boundary = entries.index("")
        changed = [entry[3:] for entry in entries[:boundary] if len(entry) > 3]
        in_base = {entry for entry in entries[boundary + 1:] if entry}
        plan = protection.paths_to_restore(
            named, changed, in_base=in_base,
            protected=[*task.tests.protected, *runner.protected_files(task.tests.command), *facts.protected(),
                       *(path for path in named_files if "*" not in path and "?" not in path)],  # globs otherwise
            protected_config=[*task.tests.protected_config, *facts.protected_config()],
            protect_imports=task.tests.protect_imports,
            test_patch_paths=_paths_of(task.tests.test_patch), config_changed=functools.partial(self._pytest_section_changed, box, task),
            base_commit=task.base_commit, importable=facts.shadowable | named_plugins)
        return plan, in_base

    def runner_facts(self, task: Task, image: str, note=lambda _message: None) -> runner_probe.RunnerFacts:
        """What the installed runner reads (`runner_probe`), asked once per image, command and workdir in
        a fresh container from `image` (no patch), then kept in memory and in a file of the host cache.

        Empty when the task says not to ask (`tests.ask_runner`). A probe that fails is noted and not
        kept: the grading goes on with the task's own lists, and the next one asks again."""
        if not task.tests.ask_runner:
            return runner_probe.RunnerFacts()
        key = _facts_key(image, task)
        with self._facts_lock:
            lock = self._facts_locks.setdefault(key, threading.Lock())
        with lock:  # one probe per image at a time; the others wait for its answer
            known = self._facts.get(key)
            if known is None:
                known = _read_facts(key)
            if known is None:
                known = self._probe(task, image)
                note("asked the installed runner what it reads"
                     + (f" (not all of it: {'; '.join(known.notes)})" if known.notes else ""))
                if not known.notes:
                    _write_facts(key, known)
            if not known.notes:
                self._facts[key] = known
        return known

    def _probe(self, task: Task, image: str) -> runner_probe.RunnerFacts:
        notes: list[str] = []
        workdir = task.environment.workdir
        python = 'cd / && P=$(command -v python || command -v python3) && exec "$P" -I -c "$0" "$1"'

        def answer(result, what: str) -> str:
            if result.exit_code != 0 or result.cut:
                notes.append(f"{what} failed (exit {result.exit_code}): {result.output.strip()[-200:]}")
                return ""
            return result.stdout

        try:
            with Sandbox.for_task(task, image, "probe", labels=self.labels, user=None) as box:
                importable = answer(box.exec(["/bin/sh", "-c", python, runner_probe.IMPORTABLE_PROBE, workdir],
                                             timeout=120, max_output=PROBE_OUTPUT), "listing importable modules")
                configs = answer(box.exec(["/bin/sh", "-c", python, runner_probe.CONFIG_PROBE,
                                           json.dumps(runner_probe.CONFIG_CANDIDATES)], timeout=600, max_output=PROBE_OUTPUT),
                                 "asking pytest for its config files")
                site = f"{GRADER_DIR}/probe-{uuid.uuid4().hex}"
                box.write_file(f"{site}/sitecustomize.py", runner_probe.IMPORTS_SITE.encode())
                # The task's command as written, with no patch: what it imports is the project's own doing.
                script = (f'export PYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}" SWE_ENV_PROBE_OUT={site}/tried\n'
                          f"( {task.tests.command}\n) >/dev/null 2>&1 </dev/null\ncat {site}/tried")
                tried = answer(box.exec(["/bin/bash", "-c", script], timeout=task.limits.grading_timeout,
                                        max_output=PROBE_OUTPUT), "a clean run of the test command")
        except SandboxError as exc:
            return runner_probe.RunnerFacts(notes=(f"the probe's container failed: {str(exc)[:200]}",))
        return runner_probe.RunnerFacts(config_names=runner_probe.config_names(configs),
                                        importable=runner_probe.module_names(importable),
                                        failed_imports=runner_probe.module_names(tried), notes=tuple(notes))

    def _pytest_section_changed(self, box: Sandbox, task: Task, path: str) -> bool:
        quoted = shlex.quote(path)
        if box.exec(f"test -L {quoted}").exit_code == 0:
            return True
        before = box.exec(["git", "cat-file", "-p", f"{task.base_commit}:{path}"], idempotent=True)
        now = box.exec(f"cat -- {quoted}", idempotent=True)
        old_text = before.stdout if before.exit_code == 0 else None
        new_text = now.stdout if now.exit_code == 0 else None
        return pytest_section_changed(path, old_text, new_text)


def _facts_key(image: str, task: Task) -> str:
    """What a probe's answer depends on: the image (tags are content hashes), the command, the workdir and the probe."""
    probe = [runner_probe.CONFIG_PROBE, runner_probe.IMPORTABLE_PROBE, runner_probe.IMPORTS_SITE,
             json.dumps(runner_probe.CONFIG_CANDIDATES)]
    text = "\0".join([image, task.tests.command, task.environment.workdir, *probe])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _facts_path(key: str) -> Path:
    return cache_dir() / "runner-facts" / f"{key}.json"


def _read_facts(key: str) -> runner_probe.RunnerFacts | None:
    try:
        with open(_facts_path(key), "rb") as handle:
            return runner_probe.RunnerFacts.from_json(handle.read(PROBE_OUTPUT * 3).decode())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_facts(key: str, facts: runner_probe.RunnerFacts) -> None:
    path = _facts_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        temporary.write_text(facts.to_json())
        temporary.replace(path)  # whole or not at all, for gradings in other processes
    except OSError:
        pass  # a cache that cannot be written only costs the next process one more probe


def _paths_of(patch: str) -> list[str]:
    try:
        return diffs.touched_paths(patch) if patch.strip() else []
    except diffs.DiffError:
        return []


def _unsafe_path(path: str) -> bool:
    """A path inside .git/ or outside the work tree (absolute, or through `..`)."""
    parts = path.split("/")
    return path.startswith("/") or ".git" in parts or ".." in parts


def _read_results(box: Sandbox, paths: list[str]) -> list[tuple[str, bytes]]:
    """Each of the runner's results files that exists, in order: (its path, its bytes), read
    through the engine (the code under test may have replaced any binary in the container).

    FileNotFoundError when none does; ResultsError for one larger than RESULTS_LIMIT."""
    found = []
    for path in paths:
        try:
            content = box.read_from_engine(path, max_bytes=runners.RESULTS_LIMIT)
        except FileNotFoundError:
            continue
        if content.truncated:
            raise runners.ResultsError(f"{path} is larger than {runners.RESULTS_LIMIT} bytes")
        found.append((path, content.data))
    if not found:
        raise FileNotFoundError(paths[0] if paths else "results")
    return found


def _with_results(value: str, results: str) -> str:
    """`value` as one shell word, `_RESULTS_MARK` in it replaced by `results` (expanded by the shell)."""
    return f'"{results}"'.join(shlex.quote(part) for part in value.split(_RESULTS_MARK))


def _checked(result, what: str):
    if result.exit_code != 0:
        raise SandboxError(f"{what} failed (exit {result.exit_code}): {clip(result.output, keep='tail')}")
    return result


def _note(report: GradingReport, started: float, message: str) -> None:
    report.log.append(f"[{time.monotonic() - started:7.2f} s] {message}")


def _changed_lines(patch: diffs.Patch, patched: list[str], written: list[str]) -> dict[str, list[tuple[int, int]]]:
    """The new side of each hunk (context lines included, so a deletion is inside one) of every patched file the
    patch changes by hunks; created, binary or otherwise written files are left out (changed as a whole)."""
    keep = set(patched) - set(written)
    found: dict[str, list[tuple[int, int]]] = {}
    for file in patch.files:
        if file.old_path is None or not file.new_path or file.binary or not file.hunks or file.new_path not in keep:
            continue
        found[file.new_path] = [(hunk.new_start, hunk.new_start + max(1, len(hunk.new.splitlines())) - 1)
                                for hunk in file.hunks]
    return found
