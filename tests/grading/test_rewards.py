"""Reward shapes (pure logic, no Docker): execution modes, SWE-RL's patch similarity, the combined mode."""

from __future__ import annotations

import difflib
import time

import pytest

from swe_env.grading import rewards, verdict
from swe_env.grading.rewards import compute_reward, patch_similarity
from swe_env.grading.verdict import GradingReport


def file_diff(path: str, old: str, new: str, index: str = "1111111..2222222") -> str:
    """A git diff of one file whose one line `old` becomes `new`."""
    return (
        f"diff --git a/{path} b/{path}\nindex {index} 100644\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -1,3 +1,3 @@\n def f():\n-    {old}\n+    {new}\n     pass\n"
    )


GOLD = file_diff("pkg/a.py", "return 1", "return 2") + file_diff("pkg/b.py", "x = 1", "x = 2")


def hunk(old: str, new: str) -> str:
    """The change text a file's diff is compared by: its hunks, header lines left out."""
    return f"@@ -1,3 +1,3 @@\n def f():\n-    {old}\n+    {new}\n     pass"


def test_identical_and_empty_patches():
    assert patch_similarity(GOLD, GOLD) == 1.0
    # index lines (blob hashes) are not part of a file's change
    rehashed = file_diff("pkg/a.py", "return 1", "return 2", "abc..def") + file_diff("pkg/b.py", "x = 1", "x = 2", "0..9")
    assert patch_similarity(rehashed, GOLD) == 1.0
    assert patch_similarity("", GOLD) == 0.0  # an empty change scores 0
    assert patch_similarity(None, GOLD) == patch_similarity(GOLD, None) == 0.0
    assert patch_similarity("", "") == 0.0


def test_mean_over_the_union_of_changed_files():
    agent = file_diff("pkg/a.py", "return 1", "return 3") + file_diff("pkg/c.py", "y = 1", "y = 2")
    expected_a = difflib.SequenceMatcher(None, hunk("return 1", "return 3"), hunk("return 1", "return 2"), autojunk=False).ratio()
    # a.py compared, b.py (gold only) and c.py (agent only) score 0
    assert patch_similarity(agent, GOLD) == pytest.approx(expected_a / 3)
    assert 0.9 < expected_a < 1
    assert patch_similarity(file_diff("pkg/a.py", "return 1", "return 2"), GOLD) == pytest.approx(0.5)


def test_plain_diffs_renames_and_no_newline_markers():
    plain = (
        "--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ -1,3 +1,3 @@\n def f():\n-    return 1\n+    return 2\n     pass\n"
        "--- pkg/b.py\n+++ pkg/b.py\n@@ -1,3 +1,3 @@\n def f():\n-    x = 1\n+    x = 2\n     pass\n"
    )
    assert patch_similarity(plain, GOLD) == 1.0
    rename = "diff --git a/old.py b/new.py\nsimilarity index 100%\nrename from old.py\nrename to new.py\n"
    assert rewards._file_changes(rename) == {"new.py": "rename from old.py to new.py"}
    assert patch_similarity(rename, rename) == 1.0
    assert patch_similarity(rename.replace("new.py", "other.py"), rename) == 0.0  # another path
    no_newline = "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1,2 @@\n-a\n\\ No newline at end of file\n+a\n+b\n"
    assert rewards._file_changes(no_newline)["a.txt"].endswith("-a\n\\ No newline at end of file\n+a\n+b")
    binary = "diff --git a/i.png b/i.png\nindex 1..2 100644\nBinary files a/i.png and b/i.png differ\n"
    assert rewards._file_changes(binary) == {} and patch_similarity(binary, binary) == 0.0
    # a removed line that reads like a header stays in its hunk
    tricky = "diff --git a/t.md b/t.md\n--- a/t.md\n+++ b/t.md\n@@ -1,2 +1,2 @@\n--- a/x\n-diff --git\n+++ b/y\n+z\n"
    assert list(rewards._file_changes(tricky)) == ["t.md"]


def test_cost_is_bounded():
    # repetitive text: the character match is worse than quadratic (tens of seconds at 2,000 characters)
    repetitive = "@@ -1 +1 @@\n" + "+\n" * 5_000
    other = "@@ -1 +1 @@\n" + "+x\n" * 3_000
    started = time.monotonic()
    score = rewards._change_ratio(repetitive, other)
    assert time.monotonic() - started < 5 and 0.0 <= score <= 1.0
    # past the budget: the same ratio over lines
    lines = difflib.SequenceMatcher(None, repetitive.splitlines(), other.splitlines(), autojunk=False).ratio()
    assert score == pytest.approx(lines)
    # each side is cut to SIMILARITY_MAX_CHARS characters, and a huge change ends at the multiset of lines
    huge = "@@ -1 +1 @@\n" + "".join(f"+line {n % 977}\n" for n in range(200_000))
    started = time.monotonic()
    assert rewards._change_ratio(huge, huge) == 1.0
    assert time.monotonic() - started < 10
    # a small change gets SWE-RL's exact character ratio
    a, b = hunk("return 1", "return 22"), hunk("return 1", "return 2")
    assert rewards._change_ratio(a, b) == difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def test_budget_falls_back_to_lines_then_to_multisets(monkeypatch):
    a, b = "x = 1\ny = 2\nz = 3", "y = 2\nx = 1\nz = 3"
    exact = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    by_lines = difflib.SequenceMatcher(None, a.splitlines(), b.splitlines(), autojunk=False).ratio()
    assert rewards._change_ratio(a, b) == exact
    monkeypatch.setattr(rewards, "SIMILARITY_BUDGET", 20)  # the character match needs 91 comparisons, lines 5
    assert rewards._change_ratio(a, b) == by_lines != exact
    monkeypatch.setattr(rewards, "SIMILARITY_BUDGET", 0)
    assert rewards._change_ratio(a, b) == 1.0  # the same lines, in another order


RESOLVED = GradingReport(task_id="t", status="graded", resolved=True, test_results={"a": "passed", "b": "passed"})
HALF = GradingReport(task_id="t", status="graded", test_results={"a": "passed", "b": "failed"})


def test_execution_modes_are_unchanged():
    groups = {"FAIL_TO_PASS": verdict.TestGroup(), "PASS_TO_PASS": verdict.TestGroup(failure=["b"])}
    regressed = HALF.model_copy(update={"tests_status": groups})
    assert compute_reward(RESOLVED, "binary") == 1.0 and compute_reward(HALF, "binary") == 0.0
    assert compute_reward(RESOLVED, "signed") == 1.0 and compute_reward(HALF, "signed") == -1.0
    assert compute_reward(HALF, "fraction") == 0.5 and compute_reward(regressed, "fraction") == 0.0
    # the patches change nothing in these modes
    assert compute_reward(HALF, "binary", GOLD, GOLD) == 0.0 and compute_reward(HALF, "fraction", "", GOLD) == 0.5


def test_similarity_modes():
    close = file_diff("pkg/a.py", "return 1", "return 2")  # half of the gold patch's files
    assert compute_reward(HALF, "similarity", close, GOLD) == pytest.approx(0.5)
    assert compute_reward(RESOLVED, "similarity", close, GOLD) == pytest.approx(0.5)  # tests do not count
    assert compute_reward(HALF, "similarity", close, None) == 0.0  # no gold patch
    assert compute_reward(RESOLVED, "execution_then_similarity", "", GOLD) == 1.0
    assert compute_reward(HALF, "execution_then_similarity", close, GOLD) == pytest.approx(0.25)
    # an unresolved patch identical to the gold one stays below every resolved one
    assert compute_reward(HALF, "execution_then_similarity", GOLD, GOLD) == rewards.SIMILARITY_WEIGHT == 0.5
    assert compute_reward(HALF, "execution_then_similarity", "", GOLD) == 0.0
