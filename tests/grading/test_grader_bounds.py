"""The grader on the real engine with inputs at its limits: a patch just under the largest diff an
episode can submit, every added line of it flagged, is graded, and what the report derives from
it stays small."""

from __future__ import annotations

import pytest

from swe_env.grading import diffs, suspicion
from swe_env.grading.grader import MAX_PATCH_BYTES, Grader

from ..helpers import added_file as _added_file
from ..helpers import git_binary_patch, git_delta

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


def test_a_patch_inflating_past_the_disk_limit_is_the_models_failure_and_a_small_binary_still_applies(task, image):
    # rt4 g4: 64 MiB of zeros in a ~90 KB binary hunk, for a task whose disk limit is 16 MiB; and a delta whose
    # header promises 2 GiB in a few hundred bytes, past the cap whatever the limit. Refused unapplied, signed -1.
    small_disk = task.model_copy(update={"limits": task.limits.model_copy(update={"disk": "16m"})})
    zeros = task.gold_patch + git_binary_patch("ledger/blob.dat", bytes(64 * 1024 * 1024))
    bomb = task.gold_patch + git_binary_patch("ledger/seed.bin", b"", old=b"s" * 64, delta=git_delta(64, 2 * 1024**3, b"\x80"))
    for graded, patch in ((small_disk, zeros), (task, bomb)):
        report = Grader(reward_mode="signed").grade(graded, patch, image=image)
        assert report.status == "patch_failed" and not report.infrastructure_failure, (report.status, report.error)
        assert report.reward == -1.0 and not report.patch_applied
        assert "binary hunks would write" in report.error and "refused before it is applied" in report.error
    # A small binary file beside the fix (an icon, a fixture) applies as before, and the fix resolves.
    icon = git_binary_patch("ledger/icon.bin", bytes(range(256)) * 16)
    report = Grader(reward_mode="signed").grade(small_disk, task.gold_patch + icon, image=image)
    assert report.status == "graded" and report.resolved and report.reward == 1.0, (report.status, report.error)
    assert report.patch_method == "git apply"


def test_a_patch_copying_a_file_past_the_disk_limit_is_refused_and_a_small_copy_still_applies(task, image):
    # GNU patch (the last method) copies a file the patch itself created: 1 MiB of text and twenty `copy from`
    # headers of ~90 bytes would write 21 MiB, past a 16 MiB limit. Refused before any method runs.
    small_disk = task.model_copy(update={"limits": task.limits.model_copy(update={"disk": "16m"})})
    copies = "".join(
        f"diff --git a/ledger/grown.txt b/ledger/copy{i}.txt\nsimilarity index 100%\ncopy from ledger/grown.txt\ncopy to ledger/copy{i}.txt\n"
        for i in range(20)
    )
    patch = task.gold_patch + _added_file("ledger/grown.txt", ["x" * 1023] * 1024) + copies
    report = Grader(reward_mode="signed").grade(small_disk, patch, image=image)
    assert report.status == "patch_failed" and not report.infrastructure_failure, (report.status, report.error)
    assert report.reward == -1.0 and not report.patch_applied and "20 file(s) as copies" in report.error
    # One copy of a module of the repository beside the fix applies with git, and the fix resolves.
    source = diffs.Patch.read(task.gold_patch).paths[0]
    one = f"diff --git a/{source} b/{source}.orig\nsimilarity index 100%\ncopy from {source}\ncopy to {source}.orig\n"
    report = Grader(reward_mode="signed").grade(small_disk, one + task.gold_patch, image=image)
    assert report.status == "graded" and report.resolved and report.reward == 1.0, (report.status, report.error)
