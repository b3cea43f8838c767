"""`submit(patch=...)`: the grader grades the patch given, not the working tree's diff (real engine)."""

from __future__ import annotations

import json

import pytest

from swe_env import tools
from swe_env.grading import diffs
from swe_env.tools.actions import parse

from ..helpers import git_binary_patch, git_delta

pytestmark = pytest.mark.docker


def test_the_argument_is_optional_and_documented():
    assert parse({"tool": "submit"}).args.patch is None
    assert parse({"tool": "submit", "patch": "diff --git a/x b/x\n"}).args.patch == "diff --git a/x b/x\n"
    call = parse({"name": "submit", "arguments": json.dumps({"patch": ""})})
    assert call.tool == "submit" and call.args.patch == ""
    (schema,) = tools.schemas(["submit"])
    properties = schema["function"]["parameters"]["properties"]
    assert set(properties) == {"patch"} and "instead of the working tree" in properties["patch"]["description"]
    assert "patch" not in schema["function"]["parameters"].get("required", [])


def test_a_submitted_patch_is_graded_on_an_untouched_tree(env, task):
    env.reset(options={"task_id": task.id})
    _, reward, terminated, _, info = env.step({"tool": "submit", "patch": task.gold_patch})
    assert terminated and reward == 1.0 and info["report"]["resolved"] and info["report"]["patch_applied"]
    assert env.get_trajectory().diff == task.gold_patch


def test_a_submitted_patch_leaves_the_trees_scratch_files_out(env, task):
    env.reset(options={"task_id": task.id})
    # The tree has the fix and a scratch file; the agent submits only the fix.
    env.step({"tool": "bash", "command": f"git apply <<'EOF'\n{task.gold_patch}EOF"})
    env.step({"tool": "create", "path": "scratch_notes.py", "content": "raise SystemExit('scratch')\n"})
    fix = env.sandbox.exec(["/usr/bin/git", "-C", "/testbed", "diff"], idempotent=True).stdout
    assert diffs.touched_paths(fix) == diffs.touched_paths(task.gold_patch)
    _, reward, _, _, info = env.step({"tool": "submit", "patch": fix})
    assert reward == 1.0 and info["report"]["resolved"]
    assert "scratch_notes.py" not in env.get_trajectory().diff


def test_an_empty_patch_grades_no_change_even_when_the_tree_is_fixed(env, task):
    env.reset(options={"task_id": task.id})
    env.step({"tool": "bash", "command": f"git apply <<'EOF'\n{task.gold_patch}EOF"})
    _, reward, terminated, _, info = env.step({"tool": "submit", "patch": ""})
    assert terminated and reward == 0.0 and info["report"]["patch_is_empty"] and not info["report"]["resolved"]


def test_without_a_patch_the_tree_is_graded_as_before(env, task):
    env.reset(options={"task_id": task.id})
    env.step({"tool": "bash", "command": f"git apply <<'EOF'\n{task.gold_patch}EOF"})
    _, reward, _, _, info = env.step({"tool": "submit"})
    assert reward == 1.0 and info["report"]["resolved"]
    assert diffs.touched_paths(env.get_trajectory().diff) == diffs.touched_paths(task.gold_patch)


def test_a_patch_that_does_not_apply_is_the_agents_failure(env, task):
    env.reset(options={"task_id": task.id})
    _, reward, terminated, _, info = env.step({"tool": "submit", "patch": "this is not a diff\n"})
    assert terminated and reward == 0.0 and info["report"]["status"] == "patch_failed"
    assert not info["report"].get("infrastructure_failure")


def test_a_submitted_patch_inflating_past_the_disk_limit_is_refused_as_the_agents(env, task):
    # rt4 g4 through the episode: the rule the grader applies holds for what the agent submits.
    env.reset(options={"task_id": task.id})
    bomb = task.gold_patch + git_binary_patch("ledger/seed.bin", b"", old=b"s" * 64, delta=git_delta(64, 2 * 1024**3, b"\x80"))
    observation, reward, terminated, _, info = env.step({"tool": "submit", "patch": bomb})
    report = info["report"]
    assert terminated and reward == 0.0 and report["status"] == "patch_failed" and not report["infrastructure_failure"]
    assert "binary hunks would write" in report["error"] and "binary hunks would write" in observation
