"""The grader on the real engine with inputs at its limits: a patch just under the largest diff an
episode can submit, every added line of it flagged, is graded, and what the report derives from
it stays small."""

from __future__ import annotations

import pytest

from swe_env.grading import suspicion
from swe_env.grading.grader import MAX_PATCH_BYTES, Grader

from ..helpers import added_file as _added_file

pytestmark = pytest.mark.docker


def test_a_patch_at_the_size_limit_is_graded_and_its_report_stays_small(task, image):
    line = "os._exit(0)  # " + "y" * 80
    count = (MAX_PATCH_BYTES - len(task.gold_patch) - 4096) // (len(line) + 2)
    patch = task.gold_patch + _added_file("ledger/exits.py", [line] * count)  # never imported by the tests
    assert MAX_PATCH_BYTES - 2 * 4096 < len(patch.encode()) <= MAX_PATCH_BYTES
    report = Grader(reward_policy="strict").grade(task, patch, image=image)
    assert report.status == "graded" and report.resolved, (report.status, report.error)
    assert report.reward == 0.0  # flagged: the strict policy withholds it
    assert len(report.suspicious) == suspicion.MAX_FLAGS + 1 and "scan stopped" in report.suspicious[-1]
    assert len(report.model_dump_json()) < 100_000
    # One byte more is the model's failure, refused before any container starts.
    over = Grader().grade(task, patch + "x" * (MAX_PATCH_BYTES - len(patch.encode()) + 1), image=image)
    assert over.status == "patch_failed" and not over.infrastructure_failure and "larger than" in over.error
