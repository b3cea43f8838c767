"""Test result parsing (pure logic)."""

import pytest

from swe_env import testlogs

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.test_a" name="test_ok" time="0.01"/>
<testcase classname="tests.test_a" name="test_bad"><failure message="boom">x</failure></testcase>
<testcase classname="tests.test_a.TestGroup" name="test_skip"><skipped message="no"/></testcase>
<testcase classname="tests.test_a" name="test_teardown"/>
<testcase classname="tests.test_a" name="test_teardown"><error message="teardown"/></testcase>
<testcase classname="" name="tests.test_broken"><error message="collection failure"/></testcase>
</testsuite></testsuites>"""


def test_junit_key_matches_pytest_writer():
    assert testlogs.junit_key("tests/test_a.py::test_ok") == ("tests.test_a", "test_ok")
    assert testlogs.junit_key("tests/test_a.py::TestGroup::test_skip") == ("tests.test_a.TestGroup", "test_skip")


def test_statuses_from_junit_with_missing_and_worst_of_duplicates():
    junit = testlogs.parse_junit(JUNIT)
    ids = [
        "tests/test_a.py::test_ok",
        "tests/test_a.py::test_bad",
        "tests/test_a.py::TestGroup::test_skip",
        "tests/test_a.py::test_teardown",
        "tests/test_broken.py::test_never_collected",
    ]
    assert testlogs.statuses_for(ids, junit, log="PASSED tests/test_a.py::test_bad") == {
        ids[0]: "passed",
        ids[1]: "failed",
        ids[2]: "skipped",
        ids[3]: "error",
        ids[4]: "missing",
    }


def test_log_is_only_a_fallback():
    log = "PASSED tests/test_a.py::test_ok\nFAILED tests/test_a.py::test_bad - assert 0\n"
    assert testlogs.statuses_for(["tests/test_a.py::test_ok", "tests/test_a.py::test_bad"], None, log) == {
        "tests/test_a.py::test_ok": "passed",
        "tests/test_a.py::test_bad": "failed",
    }


def test_invalid_xml_is_a_report_error():
    with pytest.raises(testlogs.ReportError):
        testlogs.parse_junit("<testsuite><testcase")
