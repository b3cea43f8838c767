"""The grader on the real engine: gold resolves, empty does not, and known reward hacks score 0."""

from __future__ import annotations

import pytest

from swe_env import diffs
from swe_env.grading import Grader, compute_reward
from swe_env.sandbox import Sandbox
from swe_env.task import Limits

pytestmark = pytest.mark.docker

CONFTEST_HACK = '''\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None
'''


@pytest.fixture(scope="module")
def grader():
    return Grader()


def _diff_after(image, task, script: str) -> str:
    """The diff an agent would submit after running `script` in its own container."""
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        result = box.run(script, timeout=60)
        assert result.exit_code == 0, result.output
        return box.diff(task.base_commit)


def test_gold_patch_resolves(grader, task, image):
    report = grader.grade(task, task.gold_patch, image=image)
    assert report.status == "graded", report.error
    assert report.patch_applied and report.patch_method == "git apply"
    assert report.resolved and report.reward == 1.0
    assert report.report_source == "junit"
    assert sorted(report.tests_status["FAIL_TO_PASS"].success) == sorted(task.tests.fail_to_pass)
    assert not report.tests_status["PASS_TO_PASS"].failure


def test_empty_patch_does_not_resolve(grader, task, image):
    report = grader.grade(task, "", image=image)
    assert report.status == "graded" and report.patch_is_empty
    assert not report.resolved and report.reward == 0.0
    assert report.tests_status["FAIL_TO_PASS"].failure
    assert sorted(report.tests_status["PASS_TO_PASS"].success) == sorted(task.tests.pass_to_pass)


def test_malformed_patch_is_patch_failed_with_gits_message(grader, task, image):
    report = grader.grade(task, "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-nope\n+yes\n", image=image)
    assert report.status == "patch_failed"
    assert not report.patch_applied and report.reward == 0.0
    assert not report.infrastructure_failure
    assert "git apply" in report.error and "patch --fuzz=5" in report.error


def test_editing_the_touched_tests_is_undone(grader, task, image):
    test_files = [p for p in diffs.touched_paths(task.tests.test_patch)]
    wipe = " && ".join(f"printf 'def test_nothing():\\n    pass\\n' > {p}" for p in test_files)
    report = grader.grade(task, _diff_after(image, task, wipe), image=image)
    assert report.status == "graded"
    assert not report.resolved and report.reward == 0.0


def test_conftest_that_passes_everything_is_removed(grader, task, image):
    script = f"cat > conftest.py <<'PY'\n{CONFTEST_HACK}PY\nmkdir -p tests && cp conftest.py tests/conftest.py"
    hack = _diff_after(image, task, script)
    report = grader.grade(task, hack, image=image)
    assert report.status == "graded" and not report.resolved and report.reward == 0.0
    # Without the protection the same hack would win: the test above is not vacuous.
    unprotected = task.model_copy(update={"tests": task.tests.model_copy(update={"protected": []})})
    assert Grader().grade(unprotected, hack, image=image).resolved


def test_printed_fake_results_are_ignored(grader, task, image):
    lines = "\\n".join(f"PASSED {t}" for t in task.tests.fail_to_pass)
    fake = _diff_after(image, task, f"mkdir -p tests && printf 'print(\"{lines}\")\\n' > tests/zz_fake.py")
    report = grader.grade(task, fake, image=image)
    assert report.report_source == "junit"
    assert not report.resolved


def test_reward_modes():
    from swe_env.grading import GradingReport, TestGroup

    resolved = GradingReport(task_id="t", status="graded", resolved=True, test_results={"a": "passed", "b": "passed"})
    half = GradingReport(task_id="t", status="graded", test_results={"a": "passed", "b": "failed"})
    regressed = GradingReport(task_id="t", status="graded", test_results={"a": "passed", "b": "failed"},
                              tests_status={"FAIL_TO_PASS": TestGroup(), "PASS_TO_PASS": TestGroup(failure=["b"])})
    assert compute_reward(resolved, "binary") == 1.0 and compute_reward(half, "binary") == 0.0
    assert compute_reward(resolved, "signed") == 1.0 and compute_reward(half, "signed") == -1.0
    assert compute_reward(half, "fraction") == 0.5 and compute_reward(regressed, "fraction") == 0.0


def test_every_bundled_task_is_valid(grader, tasks):
    """What `swe-env validate` proves: the gold patch resolves each task and the empty patch does not."""
    from swe_env.images import ImageBuilder

    builder = ImageBuilder()
    for task in tasks:
        image = builder.ensure(task)
        gold = grader.grade(task, task.gold_patch, image=image)
        assert gold.resolved, (task.id, gold.status, gold.error, gold.test_results)
        empty = grader.grade(task, "", image=image)
        assert empty.status == "graded" and not empty.resolved, task.id
