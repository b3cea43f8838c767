"""The validation rule, the task writer's file fields and the procedural mutations: pure logic, no engine."""

from __future__ import annotations

import ast
import subprocess
import textwrap
from pathlib import Path

import pytest

from swe_env.data.task import TaskSpecError, load_task_file
from swe_env.grading import rule
from swe_env.synth import procedural
from swe_env.synth.hiding import _without
from swe_env.synth.judge import normalised_diff
from swe_env.synth.make_task import file_chunks
from swe_env.synth.refs import is_test_path

P, F = "passed", "failed"


def test_a_valid_task_has_no_violation():
    judged = rule.check(["t::a"], ["t::b"], [{"t::a": F, "t::b": P}], [{"t::a": P, "t::b": P}])
    assert judged.valid and not judged.warnings and not judged.flaky


def test_fail_to_pass_that_already_passes_before_the_fix_is_a_violation():
    judged = rule.check(["t::a", "t::c"], [], [{"t::a": P, "t::c": F}], [{"t::a": P, "t::c": P}])
    assert judged.violations == ["t::a: FAIL_TO_PASS already passes without the fix"]


def test_an_id_in_both_lists_is_a_violation():
    judged = rule.check(["t::a"], ["t::a", "t::b"], [{"t::a": F, "t::b": P}], [{"t::a": P, "t::b": P}])
    assert judged.violations == ["t::a: listed in both FAIL_TO_PASS and PASS_TO_PASS"]


def test_pass_to_pass_must_pass_on_both_sides_and_missing_counts_as_not_passing():
    judged = rule.check(["t::a"], ["t::b"], [{"t::a": F}], [{"t::a": P, "t::b": "error"}])
    assert judged.violations == [
        "t::b: PASS_TO_PASS does not pass without the fix (missing)",
        "t::b: PASS_TO_PASS does not pass with the fix (error)",
    ]


def test_a_test_is_called_flaky_only_from_two_runs_that_disagree():
    one_run = rule.check(["t::a"], [], [{"t::a": P}], [{"t::a": P}])
    assert not one_run.flaky and one_run.violations
    two_runs = rule.check(["t::a"], [], [{"t::a": P}, {"t::a": F}], [{"t::a": P}, {"t::a": P}])
    assert two_runs.flaky == ["t::a"]
    assert two_runs.violations == ["t::a: flaky (statuses failed/passed in runs of the same side)"]


def test_fuzz_is_a_warning_and_a_gold_patch_that_does_not_apply_a_violation():
    fuzzy = rule.check(["t::a"], [], [{"t::a": F}], [{"t::a": P}], gold_method="patch --fuzz=5")
    assert fuzzy.valid and "patch --fuzz=5" in fuzzy.warnings[0]
    assert rule.check(["t::a"], [], [{"t::a": F}], [{"t::a": P}], gold_method=None).violations == ["the gold patch does not apply"]


def test_derive_makes_lists_the_rule_accepts_and_leaves_flaky_and_broken_tests_out():
    without = [{"a": F, "b": P, "c": F, "d": P}, {"a": F, "b": P, "c": F, "d": F}]
    with_fix = [{"a": P, "b": P, "c": F, "d": P}, {"a": P, "b": P, "c": F, "d": P}]
    fail_to_pass, pass_to_pass, flaky = rule.derive(without, with_fix)
    assert (fail_to_pass, pass_to_pass, flaky) == (["a"], ["b"], ["d"])
    assert rule.check(fail_to_pass, pass_to_pass, without, with_fix).valid


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout


def test_patch_files_are_read_relative_to_the_task_file(tmp_path):
    (tmp_path / "gold.patch").write_text("diff --git a/x b/x\n")
    (tmp_path / "tests.patch").write_text("diff --git a/t b/t\n")
    path = tmp_path / "task.yaml"
    path.write_text(
        textwrap.dedent("""\
        id: t1
        repo: r.bundle
        base_commit: abcdef1
        problem_statement: p
        gold_patch_file: gold.patch
        tests: {fail_to_pass: [a], test_patch_file: tests.patch}
    """)
    )
    task = load_task_file(path)
    assert task.gold_patch == "diff --git a/x b/x\n" and task.tests.test_patch == "diff --git a/t b/t\n"
    path.write_text(path.read_text().replace("gold.patch", "nowhere.patch"))
    with pytest.raises(TaskSpecError, match=r"task 't1': field 'gold_patch_file': cannot read .*nowhere.patch"):
        load_task_file(path)
    path.write_text(path.read_text().replace("gold_patch_file: nowhere.patch", "gold_patch_file: gold.patch\ngold_patch: x"))
    with pytest.raises(TaskSpecError, match="give gold_patch or gold_patch_file, not both"):
        load_task_file(path)


SOURCE = """\
def window(items, start, size=3, strict=False):
    if size <= 0:
        raise ValueError("size must be positive")
    if not items:
        return []
    out = []
    for index in range(start, start + size):
        if index >= len(items) and strict:
            break
        out.append(items[index % len(items)])
    total = sum(out) - 1
    text = str(total)
    label = text.strip()
    if label:
        return out
    else:
        return out[1:]
"""


def test_every_kind_yields_a_minimal_valid_mutation_of_a_reached_function():
    found = procedural.mutations("pkg/m.py", SOURCE, {"window"})
    kinds = {m.kind for m in found}
    assert len(procedural.KINDS) >= 12
    assert kinds == set(procedural.KINDS), set(procedural.KINDS) - kinds
    for mutation in found:
        ast.parse(mutation.source)
        changed = [line for line in mutation.patch.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        assert changed and mutation.function == "window" and mutation.path == "pkg/m.py"
        assert len(changed) <= 4 or mutation.kind == "remove_branch", mutation.patch
    assert procedural.mutations("pkg/m.py", SOURCE, {"other"}) == []
    flipped = next(m for m in found if m.kind == "flip_comparison" and "size <= 0" in m.patch)
    assert "+    if size > 0:" in flipped.patch


def test_qualified_names_follow_cpython():
    tree = ast.parse("class A:\n    def f(self):\n        def g():\n            pass\n")
    assert [name for name, _ in procedural.functions_of(tree)] == ["A.f", "A.f.<locals>.g"]


def test_hiding_removes_the_test_functions_and_keeps_classes_valid():
    source = "import pytest\n\n@pytest.mark.x\ndef test_a():\n    pass\n\n\ndef test_b():\n    pass\n\n\nclass TestC:\n    def test_d(self):\n        pass\n"
    hidden = _without(source, {("test_a",), ("TestC", "test_d")})
    assert hidden is not None and "test_a" not in hidden and "test_d" not in hidden and "def test_b" in hidden
    ast.parse(hidden)


def test_paths_diffs_and_chunks():
    assert is_test_path("tests/test_x.py") and is_test_path("pkg/test_y.py") and not is_test_path("pkg/core.py")
    assert is_test_path("spec/a.py", ["spec"]) and not is_test_path("tests/a.py", ["spec"])
    diff = procedural.file_diff("a.py", "x = 1\n", "x = 2\n") + procedural.file_diff("tests/t.py", "y\n", "z\n")
    assert [path for path, _ in file_chunks(diff)] == ["a.py", "tests/t.py"]
    assert "".join(chunk for _, chunk in file_chunks(diff)) == diff
    assert normalised_diff("--- a/x\n+++ b/x\n-x  =  1\n+x = 2\n context\n") == "-x=1\n+x=2"


def test_a_second_run_that_could_not_decide_is_an_env_error_not_valid():
    # The first runs broke the rule, so both sides were graded again, and the second empty run was the engine's
    # failure: the task is not proven, whatever the first runs said.
    from swe_env.grading.verdict import GradingReport
    from swe_env.run.validation import InstanceValidation, _verdict

    gold = GradingReport(task_id="t", status="graded", resolved=True, test_results={"a": "passed", "b": "passed"})
    empty = GradingReport(task_id="t", status="graded", resolved=False, test_results={"a": "failed", "b": "passed"})
    broken = GradingReport(task_id="t", status="infra_error", error="ShellError: the shell did not answer")
    result = InstanceValidation(task_id="t", repo="r", version=None, verdict="valid")
    _verdict(result, [gold, gold], [empty, broken], None)
    assert result.verdict == "env_error" and "infra_error: ShellError" in (result.cause or "")
