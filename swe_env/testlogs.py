"""Reading test results: JUnit XML reports first, pytest's text summary only as a fallback.

Statuses are one of: passed, failed, error, skipped (and "missing" is decided by the
grader for listed tests that appear nowhere).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

PASSED, FAILED, ERROR, SKIPPED, MISSING = "passed", "failed", "error", "skipped", "missing"
_RANK = {ERROR: 4, FAILED: 3, SKIPPED: 1, PASSED: 0}

_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\s+(\S+)")


class ReportError(ValueError):
    """The JUnit report is not readable XML."""


def junit_key(test_id: str) -> tuple[str, str]:
    """The (classname, name) pytest's JUnit writer gives a node id.

    `tests/test_a.py::TestX::test_y` -> ("tests.test_a.TestX", "test_y").
    """
    parts = test_id.split("::")
    path = re.sub(r"\.py$", "", parts[0].replace("/", ".").replace("\\", "."))
    return ".".join([path, *parts[1:-1]]), parts[-1]


def parse_junit(xml_text: str) -> dict[tuple[str, str], str]:
    """Map (classname, name) to a status for every testcase in a JUnit XML report."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ReportError(f"JUnit report is not valid XML: {exc}") from None
    results: dict[tuple[str, str], str] = {}
    for case in root.iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        status = PASSED
        for child in case:
            if child.tag == "failure":
                status = FAILED
            elif child.tag == "error":
                status = ERROR
            elif child.tag == "skipped" and status == PASSED:
                status = SKIPPED
        # A test can be reported twice (a failure in the call, an error in teardown): keep the worst.
        if key not in results or _RANK[status] > _RANK[results[key]]:
            results[key] = status
    return results


def parse_pytest_summary(log: str) -> dict[str, str]:
    """Node id -> status from pytest's `-rA` short summary lines (fallback only)."""
    results: dict[str, str] = {}
    for line in log.splitlines():
        match = _SUMMARY.match(line.strip())
        if not match:
            continue
        word, test_id = match.groups()
        status = {"PASSED": PASSED, "XPASS": PASSED, "FAILED": FAILED, "ERROR": ERROR}.get(word, SKIPPED)
        results[test_id] = status
    return results


def statuses_for(test_ids: list[str], junit: dict[tuple[str, str], str] | None, log: str) -> dict[str, str]:
    """The status of each listed test id: from the JUnit report when there is one, else the log."""
    if junit is not None:
        return {test_id: junit.get(junit_key(test_id), MISSING) for test_id in test_ids}
    summary = parse_pytest_summary(log)
    return {test_id: summary.get(test_id, MISSING) for test_id in test_ids}
