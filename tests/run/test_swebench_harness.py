"""Our `evaluate` read back by SWE-bench's own harness (the real `swebench` package, pinned in the `dev` extra).

`evaluate` grades bundled tasks on the real engine (a gold patch, a patch that applies and fixes
nothing, an empty patch, a task with no prediction); then swebench's `get_logs_eval` and
`get_eval_report` read our `test_output.txt` with its pytest parser and must reach our verdict,
test by test, and its `make_run_report`, run over our log folder, must write the run report we wrote.
Predictions files in the shapes its `get_predictions_from_file` reads load through our `load_predictions`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from swebench.harness.constants import EvalType, ResolvedStatus
from swebench.harness.grading import get_eval_report, get_logs_eval, get_resolution_status
from swebench.harness.reporting import make_run_report
from swebench.harness.utils import get_predictions_from_file, make_test_spec

from swe_env import evaluate
from swe_env.importers.swebench import Prediction, load_predictions
from swe_env.run.evaluate import END_TEST_OUTPUT, START_TEST_OUTPUT, instance_dir

from ..helpers import swebench_records

MODEL = "org/model"
RUN_ID = "swebench-reads-us"
NO_FIX = """\
diff --git a/NOTES.txt b/NOTES.txt
new file mode 100644
--- /dev/null
+++ b/NOTES.txt
@@ -0,0 +1 @@
+applies, fixes nothing
"""


def _instance(record: dict, task) -> dict:
    """A SWE-bench 5 dataset row for one bundled task: the hub's fields plus the ones `make_test_spec` reads
    (its pytest parser, pass-and-fail grading, an eval script with its markers around our test command;
    `image` is not read by grading, ours is built by swe-env)."""
    script = "\n".join(["#!/bin/bash", "set -uxo pipefail", f"echo '{START_TEST_OUTPUT}'", task.tests.command, f"echo '{END_TEST_OUTPUT}'"])
    return {
        **record,
        "image": f"swe-env/{task.id}",
        "log_parser": "parse_log_pytest",
        "eval_type": EvalType.PASS_AND_FAIL.value,
        "eval_script": script,
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory, tasks):
    chosen = tasks[:4]  # gold, no fix, empty patch, no prediction
    predictions = [
        Prediction(instance_id=chosen[0].id, model_name_or_path=MODEL, model_patch=chosen[0].gold_patch),
        Prediction(instance_id=chosen[1].id, model_name_or_path=MODEL, model_patch=NO_FIX),
        Prediction(instance_id=chosen[2].id, model_name_or_path=MODEL, model_patch=""),
    ]
    report_dir = tmp_path_factory.mktemp("swebench-harness")
    outcome = evaluate(chosen, predictions, RUN_ID, max_workers=2, report_dir=report_dir)
    instances = [_instance(record, task) for record, task in zip(swebench_records(chosen), chosen, strict=True)]
    return outcome, predictions, instances, report_dir


@pytest.mark.docker
def test_swebench_grades_our_test_output_as_we_did(run):
    outcome, predictions, instances, report_dir = run
    ours = {result.instance_id: result for result in outcome.results}
    assert [ours[p.instance_id].outcome for p in predictions] == ["resolved", "unresolved", "empty_patch"]
    for prediction, instance in zip(predictions[:2], instances, strict=False):  # the two graded ones
        folder = instance_dir(report_dir, RUN_ID, MODEL, prediction.instance_id)
        spec = make_test_spec(instance)
        status_map, found = get_logs_eval(spec, str(folder / "test_output.txt"))
        assert found, (folder / "test_output.txt").read_text()[-2000:]
        assert set(spec.FAIL_TO_PASS + spec.PASS_TO_PASS) <= set(status_map)
        theirs = get_eval_report(spec, prediction.model_dump(), str(folder / "test_output.txt"), include_tests_status=True)
        entry = json.loads((folder / "report.json").read_text())[prediction.instance_id]
        mine = theirs[prediction.instance_id]
        assert mine["resolved"] == entry["resolved"] == (ours[prediction.instance_id].outcome == "resolved")
        expected = ResolvedStatus.FULL.value if entry["resolved"] else ResolvedStatus.NO.value
        assert get_resolution_status(mine["tests_status"]) == get_resolution_status(entry["tests_status"]) == expected
        for kind in ("FAIL_TO_PASS", "PASS_TO_PASS", "FAIL_TO_FAIL", "PASS_TO_FAIL"):
            for side in ("success", "failure"):
                assert sorted(entry["tests_status"][kind][side]) == sorted(mine["tests_status"][kind][side]), (kind, side)
        # Every key its report.json has, ours has with the same value (ours adds `swe_env`, its details).
        assert {key: entry[key] for key in mine if key != "tests_status"} == {k: v for k, v in mine.items() if k != "tests_status"}


@pytest.mark.docker
def test_swebench_make_run_report_over_our_logs_writes_our_run_report(run, monkeypatch):
    outcome, predictions, instances, report_dir = run
    monkeypatch.chdir(report_dir)  # its log root (`logs/run_evaluation`) is relative to the working directory
    theirs_path = make_run_report({p.instance_id: p.model_dump() for p in predictions}, instances, RUN_ID, report_dir=str(report_dir / "theirs"))
    theirs = json.loads(Path(theirs_path).read_text())
    ours = json.loads(outcome.report_paths[MODEL].read_text())
    assert Path(theirs_path).name == outcome.report_paths[MODEL].name
    assert set(ours) - set(theirs) == {"error_details"}  # ours adds the grader's error per errored instance
    assert {key: ours[key] for key in theirs} == theirs
    assert theirs["resolved_ids"] == [predictions[0].instance_id]
    assert theirs["unresolved_ids"] == [predictions[1].instance_id]
    assert theirs["empty_patch_ids"] == [predictions[2].instance_id]
    assert theirs["incomplete_ids"] == [instances[3]["instance_id"]]


@pytest.mark.parametrize("name", ["preds.json", "preds.jsonl", "by_id.json"])
def test_predictions_files_swebench_reads_load_the_same_here(tmp_path, tasks, name):
    rows = [{"instance_id": task.id, "model_name_or_path": MODEL, "model_patch": task.gold_patch} for task in tasks[:3]]
    rows[2]["model_patch"] = None
    path = tmp_path / name
    if name == "preds.jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif name == "by_id.json":  # SWE-agent's shape, which its reader also takes
        path.write_text(json.dumps({row["instance_id"]: row for row in rows}))
    else:
        path.write_text(json.dumps(rows))
    theirs = get_predictions_from_file(str(path), "unused", "test")
    ours = load_predictions(path, tasks)
    assert [p.model_dump() for p in ours] == [{key: row[key] for key in ("instance_id", "model_name_or_path", "model_patch")} for row in theirs]
