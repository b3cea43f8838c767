"""The grader's verdict on one patch (`GradingReport`), its bounds, and the listed tests decided from the results.

Pure: what a grading found becomes the report here (`record_statuses`), and every field derived from the
patch or the run is cut to its bound before the report leaves the grader (`bound_report`).
"""

from __future__ import annotations

import difflib
import time
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import GradingStatus
from . import suspicion, testlogs

OUTPUT_LIMIT = 2_000_000
"""Characters of test output kept (the tail) for `GradingReport.output`."""
MAX_ERROR_CHARS = 4000
"""Characters of `GradingReport.error` kept (an exception's message may carry a command's whole output)."""
MAX_LOG_LINES = 400
MAX_LOG_LINE_CHARS = 2000
"""`GradingReport.log`: lines kept (the first and the last halves), and characters of each."""
MAX_LISTED = 2000
"""Entries of a list derived from the patch (`restored`) kept; one more says how many were left out."""

Status = GradingStatus
ReportSource = Literal["sealed", "recorder", "reward", "log", "none"]


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
"""Missing ids a report looks up a near match for."""
_NEAREST_CANDIDATES = 2000
"""Reported ids of the same file a near match is looked for among (difflib's cost grows with their number, and
the number is the run's to choose)."""


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


def record_statuses(
    report: GradingReport,
    fail_to_pass: list[str],
    pass_to_pass: list[str],
    junit: testlogs.JUnitResults | testlogs.RecordedResults | None,
    log: str,
    known_files: frozenset[str] | None = None,
) -> None:
    """Decide every listed test from the JUnit report (or the log): test_results, tests_status, ignored_ids, resolved.

    Matching is `testlogs.statuses_for`'s (exact node id, then SWE-bench's cut id, then its
    path alias); only `passed` (an xfail included) counts as a success. Ids no report can
    produce are dropped, except when that would drop every FAIL_TO_PASS id.
    """
    report.test_results, report.ignored_ids = {}, []
    by_file: dict[str, list[str]] | None = None
    for group, ids in (("FAIL_TO_PASS", fail_to_pass), ("PASS_TO_PASS", pass_to_pass)):
        statuses = testlogs.statuses_for(ids, junit, log, allow_all_ignored=group != "FAIL_TO_PASS", known_files=known_files)
        for test_id in ids:
            status = statuses[test_id]
            if status == testlogs.IGNORED:
                if test_id not in report.ignored_ids:
                    report.ignored_ids.append(test_id)
                continue
            report.test_results[test_id] = status
            if status == testlogs.MISSING and junit is not None and len(report.nearest_ids) < _NEAREST_IDS:
                if by_file is None:
                    by_file = _ids_by_file(junit.by_id)
                candidates = by_file.get(_file_of(test_id), [])
                near = difflib.get_close_matches(test_id, candidates, n=1, cutoff=0.8)
                if near:
                    report.nearest_ids[test_id] = near[0]
            passed = status == testlogs.PASSED
            (report.tests_status[group].success if passed else report.tests_status[group].failure).append(test_id)
    report.resolved = report.status == "graded" and all(status == testlogs.PASSED for status in report.test_results.values())


def note(report: GradingReport, started: float, message: str) -> None:
    """One line of `report.log`: the message with the seconds since the grading `started` (`time.monotonic`)."""
    report.log.append(f"[{time.monotonic() - started:7.2f} s] {message}")


def _file_of(test_id: str) -> str:
    return test_id.split("::", 1)[0]


def _ids_by_file(reported: dict[str, str]) -> dict[str, list[str]]:
    """Reported ids by their file, at most `_NEAREST_CANDIDATES` each: a near match is a neighbour in the same file."""
    table: dict[str, list[str]] = {}
    for test_id in reported:
        kept = table.setdefault(_file_of(test_id), [])
        if len(kept) < _NEAREST_CANDIDATES:
            kept.append(test_id)
    return table


def expected_failures_among(
    test_ids: list[str], results: testlogs.JUnitResults | testlogs.RecordedResults | None, known_files: frozenset[str] | None = None
) -> list[str]:
    """The ids among `test_ids` (the FAIL_TO_PASS tests) that passed only as expected failures (xfailed), matched as
    `record_statuses` matches. A fix makes such a test pass; an expected failure the patch's code can bring about
    through objects no hook attributes to it (a `functools.partial` of `pytest.xfail` put where the library's
    methods were, an xfail marker set on the tests during collection: red team rt4, x1 and b2), so the grader flags
    it (`Grader` adds it to `report.tampering`: withheld under `strict`, still a pass under `lenient`, as SWE-bench)."""
    if not isinstance(results, testlogs.JUnitResults) or not results.expected_failures or not test_ids:
        return []
    table = testlogs.JUnitResults()
    for node_id in results.expected_failures:
        testlogs.add_node_status(table, node_id, testlogs.PASSED)
    found = testlogs.statuses_for(test_ids, table, "", allow_all_ignored=True, known_files=known_files)
    return [test_id for test_id in test_ids if found.get(test_id) == testlogs.PASSED]
