"""SWE-bench ids in the grader's verdict, and the logs and run report evaluate writes (pure logic, no engine)."""

from __future__ import annotations

import json
import re

from swe_env.grading import testlogs
from swe_env.grading.verdict import GradingReport, record_statuses
from swe_env.importers.swebench import Prediction
from swe_env.run.evaluate import evaluate, instance_dir

REPORT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" tests="4">
<testcase classname="tests.test_fields.TestErrorMessages" name="test_make_error[required-Missing data]" file="tests/test_fields.py" line="40" time="0.001" />
<testcase classname="tests.test_fields" name="test_xfail" file="tests/test_fields.py" line="50" time="0.001"><skipped type="pytest.xfail" message="known" /></testcase>
<testcase classname="tests.test_fields" name="test_skip" file="tests/test_fields.py" line="60" time="0.001"><skipped type="pytest.skip" message="why">tests/test_fields.py:61: why</skipped></testcase>
<testcase classname="tests.test_fields" name="test_ok" file="tests/test_fields.py" line="70" time="0.001" />
</testsuite></testsuites>"""


def _graded(fail_to_pass: list[str], pass_to_pass: list[str]) -> GradingReport:
    report = GradingReport(task_id="t", status="graded")
    record_statuses(report, fail_to_pass, pass_to_pass, testlogs.parse_junit(REPORT), "")
    return report


def test_swebench_ids_resolve_and_fragments_are_dropped_with_a_note():
    cut = "tests/test_fields.py::TestErrorMessages::test_make_error[required-Missing"
    report = _graded([cut, "tests/test_fields.py::test_xfail"], ["tests/test_fields.py::test_ok", "[100%]"])
    assert report.resolved
    assert report.tests_status["FAIL_TO_PASS"].success == [cut, "tests/test_fields.py::test_xfail"]
    assert report.tests_status["PASS_TO_PASS"].model_dump() == {"success": ["tests/test_fields.py::test_ok"], "failure": []}
    assert report.ignored_ids == ["[100%]"] and "[100%]" not in report.test_results


def test_a_skipped_or_missing_listed_test_fails():
    report = _graded(["tests/test_fields.py::test_skip"], ["tests/test_fields.py::test_gone"])
    assert not report.resolved
    assert report.test_results == {"tests/test_fields.py::test_skip": "skipped", "tests/test_fields.py::test_gone": "missing"}
    assert report.tests_status["FAIL_TO_PASS"].failure == ["tests/test_fields.py::test_skip"]


def test_dropping_never_empties_fail_to_pass():
    report = _graded(["[100%]"], ["tests/test_fields.py::test_ok"])
    assert not report.resolved and report.ignored_ids == []
    assert report.test_results["[100%]"] == "missing"
    # PASS_TO_PASS may lose them all: an empty PASS_TO_PASS is normal in SWE-bench.
    report = _graded(["tests/test_fields.py::test_ok"], ["[100%]", "[2]"])
    assert report.resolved and report.ignored_ids == ["[100%]", "[2]"]


# ---------------------------------------------------------------- evaluate: SWE-bench's log layout and run report


class ScriptedGrader:
    """Hands back prepared reports: evaluate's writing is tested without an engine."""

    def __init__(self, reports: dict[str, GradingReport]):
        self.reports, self.labels = reports, {}

    def grade(self, task, patch):
        return self.reports[task.id]


OUTPUT = "============ test session starts ============\nPASSED tests/test_a.py::test_ok\n1 passed in 0.01s\n"


def _swebench_reads(content: str) -> tuple[str | None, int | None]:
    """What SWE-bench's get_logs_eval takes from test_output.txt: the marked region and the exit code."""
    start, end = ">>>>> Start Test Output", ">>>>> End Test Output"
    if not (start in content and end in content):
        return None, None
    match = re.search(r">>>>> Test Exit Code:\s*(-?\d+)", content)
    return content.split(start)[1].split(end)[0], int(match.group(1)) if match else None


def test_evaluate_writes_swebench_markers_and_failure_classes(tmp_path, tasks):
    chosen = tasks[:5]
    ids = [t.id for t in chosen]
    reports = {
        ids[0]: GradingReport(task_id=ids[0], status="graded", resolved=True, output=OUTPUT, test_exit_code=0),
        ids[1]: GradingReport(
            task_id=ids[1], status="graded", output="Killed\n", test_exit_code=137, error="no readable JUnit report was written (FileNotFoundError)"
        ),
        ids[2]: GradingReport(
            task_id=ids[2],
            status="timeout",
            infrastructure_failure=True,
            output="collected 3 items\n",
            error="the test run exceeded the grading timeout of 600 s",
        ),
        ids[3]: GradingReport(
            task_id=ids[3], status="infra_error", infrastructure_failure=True, error="the grader's container x died during the test run"
        ),
        ids[4]: GradingReport(task_id=ids[4], status="patch_failed", error="the patch does not apply:\ngit apply: no"),
    }
    predictions = [Prediction(instance_id=i, model_name_or_path="org/m", model_patch="diff --git a/x b/x\n") for i in ids]
    result = evaluate(chosen, predictions, "layout", max_workers=2, report_dir=tmp_path, grader=ScriptedGrader(reports))
    folder = {i: instance_dir(tmp_path, "layout", "org/m", i) for i in ids}
    text = {i: (folder[i] / "test_output.txt").read_text() for i in ids}

    assert _swebench_reads(text[ids[0]]) == ("\n" + OUTPUT, 0)
    assert text[ids[0]].endswith(">>>>> End Test Output\n>>>>> Test Exit Code: 0\n")
    assert _swebench_reads(text[ids[1]])[1] == 137
    # A timeout ends as SWE-bench's does: no end marker, its timeout line.
    assert text[ids[2]].startswith(">>>>> Start Test Output\ncollected 3 items\n")
    assert ">>>>> End Test Output" not in text[ids[2]] and "Timeout error: 600 seconds exceeded." in text[ids[2]]
    assert ">>>>>" not in text[ids[3]] + text[ids[4]]  # the tests never ran

    entry = json.loads((folder[ids[1]] / "report.json").read_text())[ids[1]]["swe_env"]
    assert entry["test_exit_code"] == 137 and entry["ignored_ids"] == [] and "JUnit" in entry["error"]

    run = json.loads((tmp_path / "org__m.layout.json").read_text())
    assert run == result.reports["org/m"]
    assert run["resolved_ids"] == [ids[0]] and run["unresolved_ids"] == [ids[1], ids[2]]  # a timeout is the model's: unresolved
    assert run["infra_failure_ids"] == [ids[3]] and run["infra_failure_instances"] == 1
    assert run["ambiguous_failure_ids"] == sorted([ids[1], ids[2]]) and run["ambiguous_failure_instances"] == 2
    assert run["failure_reasons"] == {
        ids[1]: "no readable JUnit report was written (FileNotFoundError)",
        ids[2]: "the test run exceeded the grading timeout of 600 s",
        ids[3]: "the grader's container x died during the test run",
        ids[4]: "the patch does not apply: git apply: no",
    }
    assert list(run).index("infra_failure_ids") == list(run).index("unresolved_ids") + 1  # SWE-bench's key order

    # A re-run takes the finished instances from report.json, reasons included.
    again = evaluate(chosen, predictions, "layout", max_workers=2, report_dir=tmp_path, grader=ScriptedGrader(reports))
    assert again.reports["org/m"]["ambiguous_failure_ids"] == run["ambiguous_failure_ids"]
    assert again.reports["org/m"]["failure_reasons"][ids[1]] == run["failure_reasons"][ids[1]]


def test_ids_of_files_the_repository_never_had_are_dropped_but_a_deleted_files_tests_fail():
    # `test_capsysbinary.py::test_hello` is printed by an inner pytest run in pytest's own suite.
    known = testlogs.known_paths(["tests/test_fields.py", "testing/test_capture.py", "src/sub/tests/test_deep.py"])
    report = GradingReport(task_id="t", status="graded")
    listed = ["test_capsysbinary.py::test_hello", "tests/test_fields.py::test_ok"]
    record_statuses(report, ["tests/test_fields.py::test_ok"], listed, testlogs.parse_junit(REPORT), "", known)
    assert report.resolved and report.ignored_ids == ["test_capsysbinary.py::test_hello"]
    # A file of base_commit that the run did not report (the agent deleted or broke it) is a failure,
    # however the id is written: relative to a sub-folder too (`tests/test_deep.py` is a tail of a known path).
    gone = ["testing/test_capture.py::test_x", "tests/test_deep.py::test_y"]
    report = GradingReport(task_id="t", status="graded")
    record_statuses(report, ["tests/test_fields.py::test_ok"], gone, testlogs.parse_junit(REPORT), "", known)
    assert not report.resolved and report.ignored_ids == []
    assert report.test_results["testing/test_capture.py::test_x"] == "missing"
    assert testlogs.unproducible("test_capsysbinary.py::test_hello") is False  # without the file list: conservative
